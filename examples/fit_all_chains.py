"""Fit every registered engine to every (snapshot, currency) chain of deribit-svcj-snapshots.

Prints, per engine and regime, the median RMSE against the mid implied vol (vol points), the
median share of fitted vols inside the bid-ask, the chains with any static-arbitrage violation,
the median fit time, and the failures (exceptions or non-finite surfaces: there should be none).
Run: ``.venv/bin/python examples/fit_all_chains.py [--engines svi,ssvi] [--out fits.csv]``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from volguard.data import ingest, open_store
from volguard.models import ENGINES, make_engine

REGIMES = {  # (first day, last day) inclusive, UTC; the SOURCE.md regimes of the data set
    "calm January": ("2026-01-01", "2026-01-28"),
    "crash 29 Jan - 6 Feb": ("2026-01-29", "2026-02-06"),
    "June sell-off": ("2026-06-01", "2026-06-06"),
    "August rally": ("2026-08-18", "2026-08-21"),
}


def regime_of(ts: pd.Timestamp) -> str:
    day = ts.strftime("%Y-%m-%d")
    return next((name for name, (a, b) in REGIMES.items() if a <= day <= b), "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = Path(os.environ.get("VOLGUARD_DATA", Path(__file__).parents[2] / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--store", type=Path, default=Path("runs/svcj-store"))
    parser.add_argument("--engines", default=",".join(sorted(ENGINES)))
    parser.add_argument("--out", type=Path, default=Path("runs/fit_all_chains.csv"))
    args = parser.parse_args()
    files = sorted((args.data / "deribit-svcj-snapshots" / "snapshots").glob("*.csv.gz"))
    store = open_store(args.store)
    ingest(store, files, "deribit-snapshot", workers=2)
    records = []
    for underlying in ("BTC", "ETH"):
        for snap in store.snapshots(underlying):
            for name in args.engines.split(","):
                start = time.perf_counter()
                try:
                    result = make_engine(name).fit(snap).result_
                    ok = bool(np.all(np.isfinite(result.residuals_vol)))
                    row = {
                        "rmse_vol_pts": result.rmse_vol_pts,
                        "inside_spread_pct": result.inside_spread_pct,
                        "arbitrage": result.arbitrage.total,
                        "fit_ms": result.fit_ms,
                        "converged": result.converged,
                        "failed": not ok,
                    }
                except Exception as exc:  # a crash is a finding: count it, keep going
                    row = {"failed": True, "error": repr(exc)}
                records.append(
                    {
                        "engine": name,
                        "underlying": underlying,
                        "ts": snap.ts,
                        "regime": regime_of(snap.ts),
                        "wall_ms": (time.perf_counter() - start) * 1e3,
                        **row,
                    }
                )
    frame = pd.DataFrame(records)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    table = frame.groupby(["engine", "regime"]).agg(
        chains=("ts", "size"),
        median_rmse_vol_pts=("rmse_vol_pts", "median"),
        median_inside_spread_pct=("inside_spread_pct", "median"),
        chains_with_arbitrage=("arbitrage", lambda a: int((a > 0).sum())),
        median_fit_ms=("fit_ms", "median"),
        failures=("failed", "sum"),
    )
    with pd.option_context(
        "display.width", 160, "display.max_columns", 20, "display.float_format", "{:.2f}".format
    ):
        print(table)
    chains = len(frame.drop_duplicates(["underlying", "ts"]))
    print(f"{chains} (snapshot, currency) chains fitted; rows in {args.out}")


if __name__ == "__main__":
    main()
