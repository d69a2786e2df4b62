"""Tune the guard's drift detectors on simulated calm streams (tuning seeds only).

The guard's standardized error rate ``z`` on simulated calm markets (``calm-2026-01``, a snapshot
every 2 h, 14 days, seeds 100-139: disjoint from the evaluation seeds 0-19 of
``examples/guard_shift_study.py``) is the stationary stream. For each detector and each value
of its shape parameter (CUSUM ``k``, Page-Hinkley ``delta``), :func:`tune_threshold` picks the
smallest threshold whose false-alarm rate on these streams is at most ``--target`` alarms per
update; the median detection delay of that setting on simulated calm -> crash runs (seeds
100-119, 6 + 2 days) breaks the tie between shapes. Also the smallest policy ``z_watch`` with
``P(z >= z_watch)`` at most the target. Prints the table of docs/guard.md::

    .venv/bin/python examples/guard_tune_detectors.py [--target 1e-3] [--cache FILE]
"""

from __future__ import annotations

import argparse
import functools
import pickle
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from volguard.guard.drift import (
    ADWIN,
    CUSUM,
    Detector,
    PageHinkley,
    detection_delays,
    tune_threshold,
)
from volguard.guard.shift_study import calm_z_streams, guard_trace

FAMILIES: dict[str, tuple[str, list[float], list[float], Callable[[float, float], Detector]]] = {
    "cusum": ("k", [0.5, 1.0, 1.5, 2.0, 2.5, 3.0], list(np.arange(1.0, 80.0, 0.5)), CUSUM),
    "page_hinkley": (
        "delta",
        [0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
        list(np.arange(1.0, 80.0, 0.5)),
        PageHinkley,
    ),
    # ADWIN: fewer alarms as delta falls, so the "threshold" is -log10(delta)
    "adwin": ("-", [0.0], list(np.arange(0.0, 12.0, 0.25)), lambda _, c: ADWIN(10.0**-c)),
}


def streams(cache: Path | None) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    if cache is not None and cache.exists():
        calm, shifted = pickle.loads(cache.read_bytes())
    else:
        calm = calm_z_streams(range(100, 140), days=14.0)
        shifted = [guard_trace(seed) for seed in range(100, 120)]
        if cache is not None:
            cache.write_bytes(pickle.dumps((calm, shifted)))
    scored = [(trace[np.isfinite(trace["z"].to_numpy(dtype=float))], ts) for trace, ts in shifted]
    z = [trace["z"].to_numpy() for trace, _ in scored]
    first = [int(np.argmax((trace["ts"] >= ts).to_numpy())) for trace, ts in scored]
    return calm, z, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=1e-3)
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    calm, shifted, first = streams(args.cache)
    n = sum(len(c) for c in calm)
    print(f"{len(calm)} calm streams, {n} updates; {len(shifted)} shift runs")
    rows = []
    for name, (shape, shapes, grid, make) in FAMILIES.items():
        for value in shapes:
            try:
                threshold, rate = tune_threshold(
                    lambda x, v=value, m=make: m(v, x), grid, calm, args.target
                )
            except ValueError:
                continue
            setting = functools.partial(make, value, threshold)
            delays = detection_delays(setting, shifted, first)
            rows.append(
                {
                    "detector": name,
                    "shape": f"{shape} = {value:g}" if shape != "-" else "",
                    "threshold": threshold,
                    "false_alarms_per_10k": rate * 1e4,
                    "detected": float(np.isfinite(delays).mean()),
                    "median_delay": float(np.nanmedian(delays))
                    if np.isfinite(delays).any()
                    else np.nan,
                }
            )
    z = np.concatenate(calm)
    for x in np.arange(3.0, 30.0, 0.5):
        if (z >= x).mean() <= args.target:
            delays = [
                float(np.argmax(s[f:] >= x)) if (s[f:] >= x).any() else np.nan
                for s, f in zip(shifted, first, strict=True)
            ]
            rows.append(
                {
                    "detector": "z_watch",
                    "shape": "",
                    "threshold": x,
                    "false_alarms_per_10k": (z >= x).mean() * 1e4,
                    "detected": float(np.isfinite(delays).mean()),
                    "median_delay": float(np.nanmedian(delays)),
                }
            )
            break
    table = pd.DataFrame(rows)
    print(f"({time.perf_counter() - start:.0f} s)")
    print("| detector | shape | threshold | false alarms per 10,000 | detected | median delay |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in table.itertuples():
        print(
            f"| {r.detector} | {r.shape} | {r.threshold:g} | {r.false_alarms_per_10k:.1f} | "
            f"{r.detected:.0%} | {r.median_delay:g} |"
        )
    best = table.sort_values(["detected", "median_delay"], ascending=[False, True])
    print("\nchosen (most detections, then the shortest median delay):")
    print(best.groupby("detector", sort=False).head(1).to_string(index=False))


if __name__ == "__main__":
    main()
