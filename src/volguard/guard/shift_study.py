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

from volguard._typing import FloatArray
from volguard.guard.runtime import Guard, GuardSettings
from volguard.models.registry import make_engine
from volguard.sim.scenario import preset
from volguard.sim.simulator import simulate

SIGNALS: tuple[str, ...] = ("cusum", "page_hinkley", "adwin", "policy")
"""The detectors of :func:`~volguard.guard.runtime.default_detectors`, and the policy."""


def guard_trace(
    seed: int,
    *,
    calm_days: float = 6.0,
    after_days: float = 2.0,
    shift_to: str = "crash",
    freq: str = "2h",
    engine: str = "ssvi",
    fallback: str = "black76-flat",
    settings: GuardSettings | None = None,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    """One simulated run (``calm`` for ``calm_days``, then ``shift_to`` for ``after_days``;
    ``after_days = 0``: calm only) through a guard, and the shift time.

    Returns
    -------
    DataFrame
        One row per scored update: ``ts``, ``error_rate``, ``z`` (NaN during the warm-up),
        ``left_normal`` (the policy moved out of NORMAL), ``aci_miss`` (the conformal
        intervals' miss rate on the snapshot) and one boolean column per detector (it fired).
    Timestamp
        The first time of the new regime (the end of the run when ``after_days = 0``).
    """
    script = (
        (("calm", calm_days), (shift_to, after_days)) if after_days > 0 else (("calm", calm_days),)
    )
    scenario = replace(preset("calm-2026-01"), name=f"shift-to-{shift_to}", script=script)
    run = simulate(scenario, days=calm_days + after_days, freq=freq, seed=seed)
    shift_ts = scenario.start + pd.Timedelta(days=calm_days)
    guard = Guard(make_engine(engine), make_engine(fallback), settings)
    rows = []
    for snapshot in run.snapshots():
        guard.update(snapshot)
        decision = guard.decision
        rate = decision.metrics.get("error_rate") if decision is not None else None
        if decision is None or rate is None or not np.isfinite(rate):
            continue  # not scored: no fit yet, or an illiquid snapshot
        z = decision.metrics.get("z")
        names = str(decision.metrics.get("detectors") or "").split(",")
        rows.append(
            {
                "ts": snapshot.ts,
                "error_rate": float(rate),
                "z": float(z) if z is not None else np.nan,
                "left_normal": decision.previous == "NORMAL" and decision.state != "NORMAL",
                "aci_miss": decision.metrics.get("aci_miss"),
                **{signal: signal in names for signal in SIGNALS[:-1]},
            }
        )
    guard.close()
    return pd.DataFrame(rows), shift_ts


def aci_recovery(
    miss: np.ndarray, alpha: float = 0.1, window: int = 10, tol: float = 0.02
) -> float:
    """Updates after a shift until the conformal coverage is back near nominal: the first
    ``n >= window`` such that the mean coverage ``1 - miss`` of updates ``n - window + 1 .. n``
    (1-based from the shift) is within ``tol`` of ``1 - alpha``; NaN if never.

    Examples
    --------
    >>> miss = np.r_[[0.5] * 5, [0.1] * 20]
    >>> aci_recovery(miss)
    15.0
    """
    cover = pd.Series(1.0 - np.asarray(miss, dtype=float)).rolling(window).mean().to_numpy()
    back = np.flatnonzero(np.abs(cover - (1.0 - alpha)) <= tol)
    return float(back[0] + 1) if back.size else float("nan")


def shift_run(seed: int, **run_settings: Any) -> pd.DataFrame:
    """One simulated shift through a guard (arguments of :func:`guard_trace`).

    Returns
    -------
    DataFrame
        One row per signal of :data:`SIGNALS`: ``signal, seed, shift_ts, delay_updates``
        (NaN if it never fired after the shift), ``false_alarms`` (before the shift),
        ``scored_before`` (scored updates before the shift), and, the same for every signal,
        ``aci_coverage_before`` (mean conformal coverage before the shift) and
        ``aci_recovery_updates`` (:func:`aci_recovery` after it).
    """
    trace, shift_ts = guard_trace(seed, **run_settings)
    trace = trace[np.isfinite(trace["z"].to_numpy(dtype=float))]  # after the warm-up
    after = (trace["ts"] >= shift_ts).to_numpy()
    miss = trace["aci_miss"].astype(float).to_numpy()
    first_after = int(np.argmax(after)) if after.any() else len(trace)
    rows = []
    for signal in SIGNALS:
        alarm = trace["left_normal" if signal == "policy" else signal].to_numpy(dtype=bool)
        hits = np.flatnonzero(alarm & after)
        rows.append(
            {
                "signal": signal,
                "seed": seed,
                "shift_ts": shift_ts,
                "delay_updates": float(hits[0] - first_after) if hits.size else np.nan,
                "false_alarms": int((alarm & ~after).sum()),
                "scored_before": int((~after).sum()),
                "aci_coverage_before": float(1.0 - np.nanmean(miss[~after])),
                "aci_recovery_updates": aci_recovery(miss[after]),
            }
        )
    return pd.DataFrame(rows)


def calm_z_streams(
    seeds: Iterable[int], days: float = 14.0, **run_settings: Any
) -> list[FloatArray]:
    """The guard's standardized error rate ``z`` on calm simulated runs, one array per seed:
    the stationary streams to tune the detectors' thresholds on (:func:`~volguard.guard.drift.
    tune_threshold`). Use seeds disjoint from those of the study that evaluates them."""
    traces = (
        guard_trace(seed, calm_days=days, after_days=0.0, **run_settings)[0] for seed in seeds
    )
    return [z[np.isfinite(z)] for z in (t["z"].to_numpy(dtype=float) for t in traces)]


def shift_study(seeds: Iterable[int], **run_settings: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`shift_run` over ``seeds``; the per-run rows and the summary per signal.

    The summary has ``runs``, ``detected`` (share of runs with an alarm after the shift),
    ``median_delay_updates``, ``p90_delay_updates`` and ``false_alarms_per_10k`` (alarms before
    the shift per 10,000 scored updates before it, all runs pooled), ``aci_coverage_before``
    (mean over runs) and ``median_aci_recovery_updates``.
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
        aci_coverage_before=("aci_coverage_before", "mean"),
        median_aci_recovery_updates=("aci_recovery_updates", "median"),
    )
    summary["false_alarms_per_10k"] = summary["false_alarms"] / summary["scored_before"] * 1e4
    return runs, summary.reset_index()
