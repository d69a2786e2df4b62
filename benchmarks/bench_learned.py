"""Training time of the learned engines on the real calm period, on CPU.

The issue's bar: each learned engine trains on the calm period "in minutes, not hours" on this
machine (2 cores, no GPU). Trains ``gbm``, ``nn`` and ``hybrid`` (SSVI prior) with their
default settings on every BTC and ETH snapshot of calm January 2026 (30 Dec 2025 - 28 Jan
2026, deribit-svcj-snapshots), one underlying at a time, and times each training, best of
``--rounds``; then the fit (conditioning on one snapshot) of each trained engine and of the
``ensemble`` (ssvi, sabr, svi), median over the calm snapshots. No peer library trains such
engines, so there is no ratio.

Run: ``VOLGUARD_DATA=../shared/data .venv/bin/python benchmarks/bench_learned.py``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from volguard.data.ingest import build_store
from volguard.data.store import open_store
from volguard.models import ENGINES, make_engine

CALM = ("2025-12-30", "2026-01-28T23:59")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--store", type=Path, default=None)
    args = parser.parse_args()
    data = Path(os.environ.get("VOLGUARD_DATA", "../shared/data")) / "deribit-svcj-snapshots"
    store_dir = args.store
    if store_dir is None:
        store_dir = Path(tempfile.mkdtemp()) / "store"
        files = sorted((data / "snapshots").glob("*.csv.gz"))
        build_store(store_dir, [("deribit-snapshot", f) for f in files])
    store = open_store(store_dir)
    rows = []
    for underlying in ("BTC", "ETH"):
        stamps = store.timestamps(underlying)
        lo, hi = (pd.Timestamp(x, tz="UTC") for x in CALM)
        snaps = [
            store.snapshot_at(underlying, ts) for ts in stamps[(stamps >= lo) & (stamps <= hi)]
        ]
        for name in ("gbm", "nn", "hybrid"):
            seconds = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                model = ENGINES[name].train(snaps, seed=0)
                seconds.append(time.perf_counter() - started)
            fits = []
            for snap in snaps:
                started = time.perf_counter()
                make_engine(name, model=model).fit(snap)
                fits.append(time.perf_counter() - started)
            rows.append(
                {
                    "underlying": underlying,
                    "engine": name,
                    "snapshots": len(snaps),
                    "train_s": min(seconds),
                    "fit_ms_median": 1e3 * float(np.median(fits)),
                }
            )
        fits = []
        for snap in snaps:
            started = time.perf_counter()
            make_engine("ensemble").fit(snap)
            fits.append(time.perf_counter() - started)
        rows.append(
            {
                "underlying": underlying,
                "engine": "ensemble",
                "snapshots": len(snaps),
                "train_s": 0.0,
                "fit_ms_median": 1e3 * float(np.median(fits)),
            }
        )
    print(pd.DataFrame(rows).round(2).to_string(index=False))


if __name__ == "__main__":
    main()
