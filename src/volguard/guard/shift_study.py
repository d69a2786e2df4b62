"""Detection delay and false alarms of the guard on simulated regime shifts with known times.

Each run simulates a scripted shift with the market simulator (``calm`` for ``calm_days``, then
``shift_to`` for ``after_days``; seeded) and feeds the snapshots of one underlying to a
:class:`~volguard.guard.runtime.Guard`. Per detector (and for the policy leaving NORMAL) it
records the scored updates (snapshots after the warm-up) and the alarms: the delay is the number
of updates from the first snapshot of the new regime to the first alarm at or after it; false
alarms are the alarms before the shift, reported per 10,000 scored updates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from volguard.guard.runtime import Guard, GuardSettings
from volguard.models.registry import make_engine
from volguard.sim.scenario import preset
from volguard.sim.simulator import simulate

SIGNALS: tuple[str, ...] = ("cusum", "page_hinkley", "adwin", "policy")
"""The detectors of :func:`~volguard.guard.runtime.default_detectors`, and the policy."""


def shift_run(
    seed: int,
    *,
    calm_days: float = 6.0,
    after_days: float = 2.0,
    shift_to: str = "crash",
    freq: str = "2h",
    engine: str = "ssvi",
    fallback: str = "black76-flat",
    settings: GuardSettings | None = None,
) -> pd.DataFrame:
    """One simulated shift through a guard.

    Returns
    -------
    DataFrame
        One row per signal of :data:`SIGNALS`: ``signal, seed, shift_ts, delay_updates``
        (NaN if it never fired after the shift), ``false_alarms`` (before the shift),
        ``scored_before`` (scored updates before the shift).
    """
    scenario = replace(
        preset("calm-2026-01"),
        name=f"shift-to-{shift_to}",
        script=(("calm", calm_days), (shift_to, after_days)),
    )
    run = simulate(scenario, days=calm_days + after_days, freq=freq, seed=seed)
    shift_ts = scenario.start + pd.Timedelta(days=calm_days)
    guard = Guard(make_engine(engine), make_engine(fallback), settings)
    fired: dict[str, list[tuple[pd.Timestamp, bool]]] = {s: [] for s in SIGNALS}
    for snapshot in run.snapshots():
        guard.update(snapshot)
        decision = guard.decision
        if decision is None or decision.ts != snapshot.ts or decision.reason == "warmup":
            continue
        z = decision.metrics.get("z")
        if z is None or not np.isfinite(z):
            continue
        names = str(decision.metrics.get("detectors") or "").split(",")
        for signal in SIGNALS[:-1]:
            fired[signal].append((snapshot.ts, signal in names))
        left_normal = decision.previous == "NORMAL" and decision.state != "NORMAL"
        fired["policy"].append((snapshot.ts, left_normal))
    rows = []
    for signal, events in fired.items():
        ts = pd.DatetimeIndex([t for t, _ in events])
        alarm = np.array([a for _, a in events], dtype=bool)
        after = ts >= shift_ts
        hits = np.flatnonzero(alarm & after)
        first_after = int(np.argmax(after)) if after.any() else len(ts)
        rows.append(
            {
                "signal": signal,
                "seed": seed,
                "shift_ts": shift_ts,
                "delay_updates": float(hits[0] - first_after) if hits.size else np.nan,
                "false_alarms": int((alarm & ~after).sum()),
                "scored_before": int((~after).sum()),
            }
        )
    return pd.DataFrame(rows)


def shift_study(seeds: Iterable[int], **run_settings: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`shift_run` over ``seeds``; the per-run rows and the summary per signal.

    The summary has ``runs``, ``detected`` (share of runs with an alarm after the shift),
    ``median_delay_updates``, ``p90_delay_updates`` and ``false_alarms_per_10k`` (alarms before
    the shift per 10,000 scored updates before it, all runs pooled).
    """
    per_seed: list[pd.DataFrame] = [shift_run(s, **run_settings) for s in seeds]
    runs = pd.concat(per_seed, ignore_index=True)
    summary = runs.groupby("signal", sort=False).agg(
        runs=("seed", "size"),
        detected=("delay_updates", lambda d: float(np.isfinite(d).mean())),
        median_delay_updates=("delay_updates", "median"),
        p90_delay_updates=(
            "delay_updates",
            lambda d: float(np.nanquantile(d, 0.9)) if np.isfinite(d).any() else np.nan,
        ),
        false_alarms=("false_alarms", "sum"),
        scored_before=("scored_before", "sum"),
    )
    summary["false_alarms_per_10k"] = summary["false_alarms"] / summary["scored_before"] * 1e4
    return runs, summary.reset_index()
