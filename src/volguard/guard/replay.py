"""Replay a store through a :class:`~volguard.guard.runtime.Guard`, crash-safely.

``OUT/decisions.jsonl`` is the :class:`~volguard.guard.audit.AuditLog`; ``OUT/guarded/`` holds
one Parquet part of guarded quotes per snapshot; ``OUT/checkpoint.pkl`` is the pickled guard
after the last snapshot it completed. Per snapshot the order is: update the guard, append its
decision (fsync), write the guarded part, write the checkpoint (each file atomic). After a kill
anywhere, :func:`replay` started again with the same arguments loads the checkpoint, replays
the snapshots after it, and skips decisions the log already holds (checking that they agree:
the guard is deterministic), so every decision is logged exactly once.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from volguard.data.events import ReplaySource
from volguard.data.files import write_atomic
from volguard.data.store import QuoteStore
from volguard.errors import VolguardError
from volguard.guard.audit import AuditLog, read_log
from volguard.guard.policy import Decision
from volguard.guard.runtime import Guard

LOG = "decisions.jsonl"
CHECKPOINT = "checkpoint.pkl"
GUARDED = "guarded"


class ReplayMismatch(VolguardError, RuntimeError):
    """A resumed replay decided differently from the log: different inputs or settings."""


@dataclass(frozen=True)
class ReplaySummary:
    """What one call of :func:`replay` did: snapshots processed, decisions appended, and
    decisions found already logged (from a run that was killed)."""

    snapshots: int
    appended: int
    already_logged: int
    resumed_from: pd.Timestamp | None


def replay(
    store: QuoteStore,
    underlying: str,
    make_guard: Callable[[], Guard],
    out: str | Path,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    speed: float | None = None,
    on_decision: Callable[[Decision], None] | None = None,
) -> ReplaySummary:
    """Replay ``underlying`` from ``store`` through a guard, resuming from ``out`` if present.

    Parameters
    ----------
    make_guard : callable
        Builds a fresh guard (used when ``out`` has no checkpoint).
    out : path
        The run folder (see the module docstring).
    on_decision : callable, optional
        Called with each decision after it is durable (progress bars).

    Raises
    ------
    ReplayMismatch
        If a re-processed snapshot's decision differs from the logged one.
    """
    out = Path(out)
    checkpoint = out / CHECKPOINT
    guard, resumed = make_guard(), None
    if checkpoint.exists():
        guard, resumed = pickle.loads(checkpoint.read_bytes())
    source = ReplaySource(store, [underlying], start, end, speed)
    snapshots = appended = already = 0
    with AuditLog(out / LOG) as log:
        logged = {d.seq: d for d in log.records}
        for snapshot in source:
            if resumed is not None and snapshot.ts <= resumed:
                continue
            guard.update(snapshot)
            decision = guard.decision
            assert decision is not None  # every update decides
            if decision.seq in logged:
                if logged[decision.seq].to_json() != decision.to_json():
                    raise ReplayMismatch(
                        f"{out / LOG}: decision {decision.seq} at {decision.ts} differs from the "
                        "logged one; the run folder belongs to other inputs or settings"
                    )
                already += 1
            else:
                log.append(decision)
                appended += 1
            part = out / GUARDED / f"part-{decision.seq:07d}.parquet"
            write_atomic(part, guard.guarded.to_parquet(index=False))
            write_atomic(checkpoint, pickle.dumps((guard, snapshot.ts)))
            snapshots += 1
            if on_decision is not None:
                on_decision(decision)
    return ReplaySummary(snapshots, appended, already, resumed)


def decisions_frame(out: str | Path) -> pd.DataFrame:
    """The logged decisions as a table: ``seq, ts, underlying, state, previous, action,
    reason`` and one column per metric.

    Examples
    --------
    >>> import tempfile
    >>> decisions_frame(tempfile.mkdtemp()).columns.tolist()[:4]
    ['seq', 'ts', 'underlying', 'state']
    """
    records = read_log(Path(out) / LOG)
    base = ["seq", "ts", "underlying", "state", "previous", "action", "reason"]
    rows = [{**{c: getattr(d, c) for c in base}, **d.metrics} for d in records]
    frame = pd.DataFrame(rows, columns=None if rows else base)
    if rows:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def guarded_frame(out: str | Path) -> pd.DataFrame:
    """All guarded quotes of the run, in snapshot order."""
    parts = sorted((Path(out) / GUARDED).glob("part-*.parquet"))
    frames = [pd.read_parquet(p) for p in parts]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
