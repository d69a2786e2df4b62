"""Engine refits off the guard's hot path: fitted in the background, swapped in at a set point.

A refit is a job, :func:`fit_job`: clone an engine template, fit it to a snapshot (for the
fallback, to the snapshot's liquid quotes only), and measure it (converged, median in-sample
error in vol points and in half-spreads). :class:`Refitter` runs at most one job per role
(``"primary"``, ``"fallback"``) on an executor, a single worker thread by default or any
:class:`concurrent.futures.Executor` (a process pool keeps the fit off the interpreter lock).

When the result is taken is the :class:`Refitter`'s ``mode``:

``"deferred"`` (deterministic)
    A job submitted while processing snapshot ``i`` is awaited at the start of the next update,
    snapshot ``i + 1``, and swapped in there, whatever the wall clock did. The guard's decisions
    are then a function of the inputs alone (replays and restarts reproduce them exactly); the
    fit overlaps with whatever the caller does between two updates (reading the next snapshot,
    writing the log). Time spent waiting is counted in :attr:`Refitter.wait_seconds`.
``"async"`` (live)
    The result is taken at the first update after the job finished, never waited for; while a
    job of a role runs, a new one of that role is not started (the due check fires again on a
    later update).

References
----------
The swap follows the issue's "refit in the background on recent data, swap in atomically when it
validates": the served engine is replaced by one assignment, between two updates.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import clone

from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import SurfaceEngine

RefitMode = Literal["deferred", "async"]
REFIT_MODES: tuple[str, ...] = ("deferred", "async")
Role = Literal["primary", "fallback"]


@dataclass(frozen=True)
class FitOutcome:
    """The result of one :func:`fit_job`.

    ``engine`` is None when the fit raised (``error`` says why); ``fit_vol_pts`` and
    ``fit_half_spreads`` are the median absolute in-sample errors (vol points, half-spreads);
    ``seconds`` the fit's own wall time (not part of any decision: it is not deterministic).
    """

    role: str
    snapshot_ts: pd.Timestamp
    engine: SurfaceEngine | None
    converged: bool
    fit_vol_pts: float
    fit_half_spreads: float
    seconds: float
    error: str | None = None


def liquid_subset(snapshot: MarketSnapshot, liquid_spread: float) -> MarketSnapshot:
    """The quotes whose price spread is at most ``liquid_spread`` times their mid.

    Raises
    ------
    ValueError
        If no quote qualifies.
    """
    q = snapshot.quotes
    mid = (q["bid"] + q["ask"]) / 2
    liquid = ((q["ask"] - q["bid"]) <= liquid_spread * mid).fillna(False)
    return MarketSnapshot.from_quotes(q[liquid.to_numpy(dtype=bool)])


def fit_job(
    template: SurfaceEngine, snapshot: MarketSnapshot, role: str, liquid_spread: float
) -> FitOutcome:
    """Fit a clone of ``template`` to ``snapshot`` (the fallback: to its liquid quotes only).

    A module-level function, so that a process pool can run it.
    """
    start = time.perf_counter()
    try:
        data = liquid_subset(snapshot, liquid_spread) if role == "fallback" else snapshot
        engine: SurfaceEngine = clone(template).fit(data)
    except Exception as exc:  # any failed fit is an invalid refit, never a crashed guard
        seconds = time.perf_counter() - start
        reason = f"{type(exc).__name__}: {exc}"
        return FitOutcome(role, snapshot.ts, None, False, math.nan, math.nan, seconds, reason)
    result = engine.result_
    return FitOutcome(
        role,
        snapshot.ts,
        engine,
        bool(result.converged),
        float(np.nanmedian(np.abs(result.residuals_vol)) * 100),
        float(np.nanmedian(np.abs(result.residuals_half_spread))),
        time.perf_counter() - start,
    )


@dataclass
class _Job:
    template: SurfaceEngine
    snapshot: MarketSnapshot
    liquid_spread: float
    future: Future[FitOutcome] | None = None
    outcome: FitOutcome | None = None  # a finished job restored from a pickle


class Refitter:
    """Background refits with a deterministic or a live swap point (module docstring).

    Parameters
    ----------
    mode : {"deferred", "async"}
    executor : Executor, optional
        Where jobs run; by default a single worker thread, started on the first job.

    Examples
    --------
    >>> from volguard.models import make_engine
    >>> from volguard.sim.scenario import preset
    >>> from volguard.sim.simulator import simulate
    >>> snap = next(iter(simulate(preset("calm-2026-01"), days=0.1, freq="1h", seed=0)
    ...                  .snapshots()))
    >>> r = Refitter("deferred")
    >>> r.submit("primary", make_engine("black76-flat"), snap)
    >>> r.pending("primary")
    True
    >>> outcome = r.take("primary")  # deferred: waits for the job
    >>> outcome.engine is not None, outcome.snapshot_ts == snap.ts, r.pending("primary")
    (True, True, False)
    """

    def __init__(self, mode: RefitMode = "deferred", executor: Executor | None = None) -> None:
        if mode not in REFIT_MODES:
            raise ValueError(f"mode must be one of {REFIT_MODES}; got {mode!r}")
        self.mode = mode
        self._executor = executor
        self._owned: ThreadPoolExecutor | None = None
        self._jobs: dict[str, _Job] = {}
        self.fits = 0
        self.fit_seconds = 0.0
        self.wait_seconds = 0.0

    def _pool(self) -> Executor:
        if self._executor is not None:
            return self._executor
        if self._owned is None:
            self._owned = ThreadPoolExecutor(max_workers=1, thread_name_prefix="guard-refit")
        return self._owned

    def pending(self, role: Role) -> bool:
        """Whether a job of ``role`` was submitted and not yet taken."""
        return role in self._jobs

    def submit(
        self,
        role: Role,
        template: SurfaceEngine,
        snapshot: MarketSnapshot,
        liquid_spread: float = 0.25,
    ) -> None:
        """Start fitting ``template`` to ``snapshot``; ignored while a job of ``role`` runs."""
        if role in self._jobs:
            return
        job = _Job(template, snapshot, liquid_spread)
        job.future = self._pool().submit(fit_job, template, snapshot, role, liquid_spread)
        self._jobs[role] = job

    def take(self, role: Role) -> FitOutcome | None:
        """The finished job of ``role``, or None: none submitted, or (``async``) not done yet.

        In ``deferred`` mode this waits for a submitted job. A job restored from a pickle comes
        with its result (pickling waits for running jobs).
        """
        job = self._jobs.get(role)
        if job is None:
            return None
        if job.outcome is not None:
            outcome = job.outcome
        else:
            assert job.future is not None  # a job has a future until pickled
            if not job.future.done():
                if self.mode == "async":
                    return None
                start = time.perf_counter()
                wait([job.future])
                self.wait_seconds += time.perf_counter() - start
            del self._jobs[role]  # taken even if it raised: the next refit starts afresh
            outcome = job.future.result()
        self._jobs.pop(role, None)
        self.fits += 1
        self.fit_seconds += outcome.seconds
        return outcome

    def settle(self) -> None:
        """Wait until no job is running (their results stay to be taken)."""
        wait([job.future for job in self._jobs.values() if job.future is not None])

    def close(self) -> None:
        """Stop the worker this refitter started (an executor passed in is left alone)."""
        self._jobs.clear()
        if self._owned is not None:
            self._owned.shutdown(wait=True)
            self._owned = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the executor and the futures: the running jobs are waited for first
        (a fit may still be writing to the snapshot's cached tables, which pickling reads) and
        kept with their results."""
        self.settle()
        state = dict(self.__dict__)
        state["_executor"] = None
        state["_owned"] = None
        state["_jobs"] = {
            role: _Job(
                job.template,
                job.snapshot,
                job.liquid_spread,
                outcome=job.outcome if job.future is None else job.future.result(),
            )
            for role, job in self._jobs.items()
        }
        return state
