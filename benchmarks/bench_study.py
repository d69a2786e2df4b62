"""The real study end to end: examples/deribit-2026.toml on all 608 chains, timed.

Target (issue 6): every first-principles engine (black76-flat, svi, ssvi, essvi, sabr, heston,
bates) over the 608 BTC and ETH chains of deribit-svcj-snapshots, nowcast + forecast +
hedging, in <= 10 minutes on this machine. The study here is the example's with its stress
section kept; the store is built once first (ingest is timed apart, as ``bench_ingest.py``
times it). Prints the wall time, the cells, the per-engine median fit time (ms) and the share
of the fitting time each engine takes, and writes the study into ``--out`` (default: a fresh
temporary folder, so no cache is reused).

No peer library runs studies, so there is no ratio here; the engines' own fits are compared
with QuantLib in ``bench_heston_calibration.py``.

Run: ``.venv/bin/python benchmarks/bench_study.py [--workers 2] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from volguard.data.ingest import build_store
from volguard.lab.study import DATASETS, Study, run_study

EXAMPLE = Path(__file__).parents[1] / "examples" / "deribit-2026.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-stress", action="store_true", help="Drop the [stress] section.")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp()) / "study"
    study = Study.from_toml(EXAMPLE)
    if args.no_stress:
        study = replace(study, stress={})
    data = Path(os.environ.get("VOLGUARD_DATA", "../shared/data")) / study.data["dataset"]
    fmt, pattern = DATASETS[study.data["dataset"]]
    started = time.perf_counter()
    if not (out / "store" / "_manifest.json").exists():
        build_store(out / "store", [(fmt, f) for f in sorted(data.glob(pattern))])
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    card = run_study(study, out, workers=args.workers)
    study_s = time.perf_counter() - started
    cells = pd.read_parquet(out / "predictions.parquet", columns=["underlying", "ts"])
    fits = pd.concat(
        [pd.read_parquet(f) for f in sorted((out / "cache").glob("*.cells.parquet"))],
        ignore_index=True,
    )
    per_engine = fits.groupby("engine")["fit_ms"].agg(["median", "sum"])
    per_engine["share_%"] = 100 * per_engine["sum"] / per_engine["sum"].sum()
    print(
        f"study {study.name}: {study_s:.1f} s on {args.workers} workers (ingest {ingest_s:.1f} s)"
    )
    chains = cells.drop_duplicates().shape[0]
    print(f"chains with predictions: {chains}; fits: {len(fits)}; scorecard rows: {len(card)}")
    print(per_engine.round(1).to_string())
    print(f"out: {out}")


if __name__ == "__main__":
    main()
