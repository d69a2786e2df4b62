"""Training time of the default hedging ensemble on CPU.

The issue's bar: the default policy trains on 2 CPU cores in under 15 minutes. Builds the
default training and validation paths of :class:`volguard.lab.policy_hedging.PolicyHedgingSettings`
(3 regimes x 2000 paths, 1000 plateau paths, a 7-day call hedged every 2 hours), then times
:func:`volguard.lab.policy_hedging.train_hedgers` (5 members, 200 AdamW steps each at most,
early stopping, plus the gate threshold and the baselines' fits); the path building (Bates
tables and simulation) is timed apart. Training runs one torch thread per member (determinism);
the machine may be shared, so run it under ``nice`` and read the figure as an upper bound.

Run: ``PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/bench_hedging.py [--members 5]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace

from volguard.lab.deep_hedging_paths import BatesTable
from volguard.lab.policy_hedging import PolicyHedgingSettings, regime_paths, train_hedgers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=PolicyHedgingSettings().members)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = replace(PolicyHedgingSettings(), members=args.members)
    tables: dict[str, BatesTable] = {}
    started = time.perf_counter()
    train = regime_paths(settings, settings.train_regimes, settings.n_train, 1, tables)
    val = regime_paths(settings, settings.validation_regimes, settings.n_validation, 2, tables)
    paths_s = time.perf_counter() - started
    started = time.perf_counter()
    hedgers = train_hedgers(train, val, settings, args.seed)
    total_s = time.perf_counter() - started
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"paths (Bates tables + simulation): {paths_s:.1f} s")
    print(
        f"training {settings.members} members: {hedgers.seconds:.1f} s "
        f"({hedgers.seconds / settings.members:.1f} s each; steps kept "
        f"{[m.steps for m in hedgers.members]}); with gate and baselines {total_s:.1f} s"
    )
    print(f"bar: < 900 s -> {'met' if total_s < 900 else 'NOT met'}")


if __name__ == "__main__":
    main()
