"""A desk's nowcast of the real Deribit chains: hold-out accuracy of the engines per regime.

Per snapshot of one underlying, the quotes scored are the out-of-the-money two-sided quotes
(``QuoteVols``: puts below the forward, calls at and above it, both sides invert to a vol) of
the expiries at least 2 days out with at least 5 of them; the mid vol is the implied vol of the
mid PRICE. Two hold-outs:

- ``nowcast``: a seeded random 20 % of each expiry's quotes (at least one);
- ``wings``: every quote outside ``0.1 <= |delta| <= 0.9`` (Black-76 forward delta at the mid
  vol), on the expiries with at least 5 quotes inside that band.

Each engine (``volguard.models.registry.make_engine``) is fitted on a snapshot made of the
training quotes only, then its vol at each held-out ``(k, t)`` is compared with the mid vol
(RMSE, vol points) and with the quote's bid and ask vols (share inside ``[bid vol, ask vol]``).
``svi-plain`` (:class:`~volguard.models.parametric.svi_plain.PlainSVI`) is the naive reference:
raw SVI per expiry by unweighted least squares in vol, no
constraint beyond ``b >= 0``, ``|rho| < 1``, ``sigma > 0``. Printed per regime: the median
[q25, q75] over snapshots of both scores, the snapshots with a fallback, and the snapshots with
any static-arbitrage violation on the mesh ``k`` = -1.5..1.0 widened to 3 at-the-money standard
deviations of the longest expiry (butterfly and bounds on every fitted expiry, calendar between
them).

Run (about a minute per engine and mode for BTC):
``python examples/desk_nowcast.py --underlying BTC --engines svi-plain,svi --every 4``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _svcj import REGIMES, svcj_snapshots

from volguard.arbitrage.static import DEFAULT_K, check_static_arbitrage
from volguard.kernels.api import black76_greeks
from volguard.lab.regimes import range_labels
from volguard.market.clock import DAYS_PER_YEAR
from volguard.market.quotes import QuoteVols
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import FIT_ERRORS
from volguard.models.registry import make_engine

MIN_DAYS = 2.0
MIN_QUOTES = 5
TEST_SIZE = 0.2
WING_DELTA = (0.1, 0.9)

"""Model vols at ``(k, t)`` of the held-out quotes."""


def desk_quotes(snapshot: MarketSnapshot) -> pd.DataFrame:
    """The scored quotes: row in ``snapshot.quotes``, expiry, ``k``, ``t``, mid/bid/ask vols
    (:class:`~volguard.market.quotes.QuoteVols`: the mid vol from the mid price) and the
    Black-76 delta at the mid vol."""
    v = QuoteVols.from_snapshot(snapshot)
    delta = black76_greeks(v.forward, v.strike, v.t, v.mid_iv, v.is_call)["delta"]
    frame = pd.DataFrame(
        {
            "row": v.rows,
            "expiry": v.expiry,
            "k": v.k,
            "t": v.t,
            "mid_iv": v.mid_iv,
            "bid_iv": v.bid_iv,
            "ask_iv": v.ask_iv,
            "abs_delta": np.abs(delta),
        }
    )
    frame = frame[frame["t"] >= MIN_DAYS / DAYS_PER_YEAR]
    return frame[frame.groupby("expiry")["k"].transform("size") >= MIN_QUOTES]


def hold_out(quotes: pd.DataFrame, mode: str, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of the held-out quotes; in ``wings`` mode expiries with fewer than 5
    training quotes are dropped from both sides (NaN marks them)."""
    test = np.zeros(len(quotes), dtype=bool)
    if mode == "nowcast":
        for rows in quotes.groupby("expiry").indices.values():
            n_test = max(1, round(TEST_SIZE * rows.size))
            test[rng.choice(rows, n_test, replace=False)] = True
        return test
    d = quotes["abs_delta"].to_numpy()
    return ~((d >= WING_DELTA[0]) & (d <= WING_DELTA[1]))


def arbitrage_mesh(quotes: pd.DataFrame) -> np.ndarray:
    """The dense mesh, widened to 3 at-the-money sd of the longest expiry."""
    atm = quotes.loc[quotes.groupby("expiry")["k"].apply(lambda k: k.abs().idxmin())]
    reach = 3.0 * float(np.max(atm["mid_iv"] * np.sqrt(atm["t"])))
    lo, hi = min(DEFAULT_K[0], -reach), max(DEFAULT_K[-1], reach)
    return np.round(np.arange(np.floor(lo * 100) / 100, hi + 1e-9, 0.01), 10)


def score(
    engine_name: str, snapshot: MarketSnapshot, quotes: pd.DataFrame, test: np.ndarray
) -> dict[str, object]:
    """Fit ``engine_name`` on the training quotes and score the held-out ones."""
    train, held = quotes[~test], quotes[test]
    start = time.perf_counter()
    name, _, options = engine_name.partition(":")
    settings = dict(item.split("=", 1) for item in options.split(";") if item)
    engine = make_engine(name, **settings)
    engine.fit(MarketSnapshot.from_quotes(snapshot.quotes.iloc[train["row"].to_numpy()]))
    model = engine.implied_vol(held["k"].to_numpy(), held["t"].to_numpy())
    fallback = engine.result_.fallback is not None
    t_grid = np.unique(train["t"].to_numpy())
    report = check_static_arbitrage(engine.total_variance, t_grid, arbitrage_mesh(train))
    arbitrage = {
        "butterfly": report.butterfly_count,
        "calendar": report.calendar_count,
        "bounds": report.bounds_count,
    }
    err = model - held["mid_iv"].to_numpy()
    inside = (model >= held["bid_iv"].to_numpy()) & (model <= held["ask_iv"].to_numpy())
    return {
        "rmse_vp": float(np.sqrt(np.mean(err**2)) * 100),
        "inside_pct": float(np.mean(inside) * 100),
        "n_test": int(test.sum()),
        "fallback": fallback,
        **arbitrage,
        "fit_ms": (time.perf_counter() - start) * 1e3,
    }


def run(args: argparse.Namespace) -> pd.DataFrame:
    snapshots = svcj_snapshots(args.underlying, args.cache)[:: args.every]
    records = []
    for snapshot in snapshots:
        quotes = desk_quotes(snapshot)
        if quotes.empty:
            continue
        for mode in args.modes.split(","):
            rng = np.random.default_rng([args.seed, int(snapshot.ts.timestamp())])
            test = hold_out(quotes, mode, rng)
            scored = quotes
            if mode == "wings":  # expiries with at least 5 quotes in the delta band
                keep = (~pd.Series(test, index=quotes.index)).groupby(quotes["expiry"]).transform(
                    "sum"
                ) >= MIN_QUOTES
                scored, test = quotes[keep.to_numpy()], test[keep.to_numpy()]
            if not test.any():
                continue
            for name in args.engines.split(","):
                try:
                    row = score(name, snapshot, scored, test)
                except FIT_ERRORS as exc:  # a failure is a finding: count it, keep going
                    row = {"failed": repr(exc)}
                records.append({"engine": name, "mode": mode, "ts": snapshot.ts, **row})
    return pd.DataFrame(records)


def summarise(frame: pd.DataFrame, ranges: dict[str, tuple[str, str]]) -> pd.DataFrame:
    frame = frame.assign(regime=range_labels(frame["ts"], ranges).to_numpy())
    frame = frame[frame["regime"] != "other"]

    def spread(x: pd.Series, fmt: str) -> str:
        q = np.nanquantile(x, [0.5, 0.25, 0.75])
        return f"{q[0]:{fmt}} [{q[1]:{fmt}}, {q[2]:{fmt}}]"

    rows = []
    for (mode, regime, engine), g in frame.groupby(["mode", "regime", "engine"], sort=False):
        rows.append(
            {
                "mode": mode,
                "regime": regime,
                "engine": engine,
                "snapshots": len(g),
                "rmse_vp": spread(g["rmse_vp"], ".2f"),
                "inside_pct": spread(g["inside_pct"], ".0f"),
                "fallbacks": int(g["fallback"].sum()),
                **{
                    f"{kind}_snaps": int((g[kind] > 0).sum()) if kind in g else 0
                    for kind in ("butterfly", "calendar", "bounds")
                },
                "failed": int(g["failed"].notna().sum()) if "failed" in g else 0,
                "fit_ms": float(g["fit_ms"].median()),
            }
        )
    order = {name: i for i, name in enumerate(ranges)}
    table = pd.DataFrame(rows)
    return table.sort_values(
        ["mode", "regime", "engine"], key=lambda c: c.map(order) if c.name == "regime" else c
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--underlying", choices=("BTC", "ETH"), default="BTC")
    parser.add_argument(
        "--engines",
        default="svi-plain,svi",
        help="comma-separated registered names, with settings: svi:weighting=none",
    )
    parser.add_argument("--modes", default="nowcast,wings")
    parser.add_argument("--every", type=int, default=1, help="every n-th snapshot only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("runs"))
    parser.add_argument("--out", type=Path, help="per-snapshot scores (CSV)")
    args = parser.parse_args()
    ranges = REGIMES
    frame = run(args)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out, index=False)
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(summarise(frame, ranges).to_string(index=False))


if __name__ == "__main__":
    main()
