"""Replay all of deribit-svcj-snapshots (BTC and ETH, time order) through the guard.

The primary engine is fitted on the first snapshot (30 Dec 2025) and the calm reference of its
error rate on the next ten (to 9 Jan 2026); from then on the guard refits, watches, falls back
as its policy says. Prints, per underlying: every state change, how many snapshots after the
start of the 29 Jan 2026 crash it left NORMAL, the states it reached during the crash, the
alarms per month, and the conformal coverage in calm and stressed periods. Writes each run's
decisions.parquet, guarded.parquet and report.html under ``--out``.

Run: ``.venv/bin/python examples/guard_replay_deribit.py [--out runs/guard-deribit]``
(about 25 s per underlying on one core; the store is built once, ~10 s).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from volguard.data.ingest import build_store
from volguard.data.store import open_store
from volguard.guard.policy import State
from volguard.guard.replay import decisions_frame, guarded_frame, replay
from volguard.guard.runtime import Guard
from volguard.guard.summary import alarms_per_month, snapshots_to_leave_normal, transitions
from volguard.models import make_engine
from volguard.report.guard_report import write_guard_outputs

CRASH = ("2026-01-29T12:00", "2026-02-08T23:59")
CALM = {
    "calm January": ("2026-01-01", "2026-01-28T23:59"),
    "calm July-August": ("2026-07-01", "2026-08-17T23:59"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = Path(os.environ.get("VOLGUARD_DATA", Path(__file__).parents[2] / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--out", type=Path, default=Path("runs/guard-deribit"))
    parser.add_argument("--engine", default="ssvi")
    parser.add_argument("--fallback", default="black76-flat")
    args = parser.parse_args()
    store_dir = args.out / "store"
    if not (store_dir / "_manifest.json").exists():
        files = sorted((args.data / "deribit-svcj-snapshots" / "snapshots").glob("*.csv.gz"))
        build_store(store_dir, [("deribit-snapshot", p) for p in files])
    store = open_store(store_dir)
    for underlying in ("BTC", "ETH"):
        run = args.out / underlying
        replay(
            store,
            underlying,
            lambda: Guard(make_engine(args.engine), make_engine(args.fallback)),
            run,
        )
        d = decisions_frame(run)
        g = guarded_frame(run)
        write_guard_outputs(d, g, run, title=f"guard replay: {underlying}, {args.engine}")
        print(f"\n=== {underlying}: {len(d)} snapshots")
        with pd.option_context("display.width", 140, "display.max_rows", 200):
            print(transitions(d).round({"z": 2}).to_string(index=False))
        crash = d[
            (d["ts"] >= pd.Timestamp(CRASH[0], tz="UTC"))
            & (d["ts"] <= pd.Timestamp(CRASH[1], tz="UTC"))
        ]
        reached = sorted({State[s] for s in crash["state"]})
        print(
            f"crash: left NORMAL {snapshots_to_leave_normal(d, CRASH[0])} snapshot(s) after "
            f"its start; states reached: {[s.name for s in reached]}"
        )
        for name, (lo, hi) in CALM.items():
            print(f"{name}: alarms per month {alarms_per_month(d, lo, hi).to_dict()}")
        miss = d["aci_miss"].astype(float).where(d["reason"].ne("warmup"))
        for name, (lo, hi) in {**CALM, "crash": CRASH}.items():
            inside = d["ts"].between(pd.Timestamp(lo, tz="UTC"), pd.Timestamp(hi, tz="UTC"))
            print(
                f"ACI 90 % intervals, {name}: coverage {1 - np.nanmean(miss[inside]):.3f} "
                f"(mean over {int(miss[inside].notna().sum())} snapshots)"
            )
        # after the crash starts: snapshots until the 10-snapshot coverage is back within 2 points
        after = (1 - miss[d["ts"] >= pd.Timestamp(CRASH[0], tz="UTC")]).rolling(10).mean()
        back = np.flatnonzero((after.to_numpy() >= 0.88) & (after.to_numpy() <= 0.92))
        steps = int(back[0]) + 1 if back.size else None
        print(
            f"ACI back within 2 points of 90 % (10-snapshot mean) {steps} snapshots after the "
            "crash start"
        )


if __name__ == "__main__":
    main()
