"""Wall time of ``volguard --help`` and ``volguard data summary`` (a fresh process each).

The command line imports the numerical stack only inside the commands that need it, so help
and the store summary answer without loading numba, scikit-learn, FastAPI or river. Each
command runs ``--runs`` times in a fresh interpreter; the best and the median wall time are
printed. ``--src`` times another checkout's sources (a baseline).

Run: ``PYTHONPATH=src:. python benchmarks/bench_cli.py [--src OTHER/src]``
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _store(root: Path) -> Path:
    from tests.guard.conftest import synthetic_market, write_store

    write_store(root / "store", synthetic_market(6, None))
    return root / "store"


def wall(args: list[str], src: Path, runs: int) -> tuple[float, float]:
    """Best and median seconds of ``python -m volguard ARGS`` over ``runs`` fresh processes."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "volguard", *args], env=env, capture_output=True, check=True
        )
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--src", type=Path, default=REPO / "src")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = _store(Path(tmp))
        for command in (["--help"], ["data", "summary", "--store", str(store)]):
            best, median = wall(command, args.src, args.runs)
            print(
                f"volguard {command[0]:8s} {command[1] if len(command) > 1 else '':8s} "
                f"best {best:5.2f} s  median {median:5.2f} s"
            )


if __name__ == "__main__":
    main()
