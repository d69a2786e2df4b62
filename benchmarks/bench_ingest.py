"""Ingest of all 304 Deribit snapshot files (about 493k rows) into a fresh store.

Beside it, in the same run, the naive baseline a user would write without volguard: pandas
``read_csv`` of every file, one ``concat``, one ``to_parquet`` (no validation, no quarantine,
no atomicity, no idempotency). Run: ``.venv/bin/python benchmarks/bench_ingest.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from volguard.data import ingest, open_store


def _naive(files: list[Path], out: Path) -> int:
    frame = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    frame.to_parquet(out)
    return len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = Path(os.environ.get("VOLGUARD_DATA", Path(__file__).parents[2] / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = sorted((args.data / "deribit-svcj-snapshots" / "snapshots").glob("*.csv.gz"))
    print(
        f"{len(files)} files, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, best of {args.repeat}"
    )
    rows: dict[str, tuple[float, int]] = {}

    def volguard(workers: int) -> Callable[[Path], int]:
        return lambda d: (
            ingest(open_store(d / "s"), files, "deribit-snapshot", workers=workers).rows_read
        )

    runs: dict[str, Callable[[Path], int]] = {
        "naive pandas read_csv + to_parquet": lambda d: _naive(files, d / "all.parquet"),
        "volguard ingest, 1 process": volguard(1),
        "volguard ingest, 2 processes": volguard(2),
    }
    for label, run in runs.items():
        best = float("inf")
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                n = run(Path(tmp))
                best = min(best, time.perf_counter() - start)
        rows[label] = (best, n)
    base = rows["naive pandas read_csv + to_parquet"][0]
    print(f"{'pipeline':<36} {'rows':>8} {'seconds':>8} {'rows/s':>10} {'vs naive':>9}")
    for label, (seconds, n) in rows.items():
        print(f"{label:<36} {n:>8,} {seconds:>8.2f} {n / seconds:>10,.0f} {base / seconds:>8.2f}x")


if __name__ == "__main__":
    main()
