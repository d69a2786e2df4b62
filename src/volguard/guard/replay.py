"""Replay a store through a :class:`~volguard.guard.runtime.Guard`, crash-safely.

``OUT/decisions.jsonl`` is the :class:`~volguard.guard.audit.AuditLog`; ``OUT/guarded/`` holds
one Parquet part of guarded quotes per snapshot; ``OUT/checkpoint.pkl`` is the pickled guard
after the last snapshot it completed; ``OUT/run.json`` records the settings the folder was made
with (underlying, first time, engines, guard settings), and a call with other settings is refused
with :class:`ReplayMismatch` naming the first one that differs (``force=True`` starts afresh).
Per snapshot the order is: update the guard, append its decision (fsync), write the guarded
part, write the checkpoint (each file atomic). After a kill
anywhere, :func:`replay` started again with the same arguments loads the checkpoint, replays
the snapshots after it, and skips decisions the log already holds (checking that they agree:
the guard is deterministic), so every decision is logged exactly once.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from volguard.data.events import ReplaySource
from volguard.data.files import write_atomic
from volguard.data.store import QuoteStore, utc
from volguard.errors import StoreError, VolguardError
from volguard.guard.audit import AuditLog, read_log
from volguard.guard.policy import Decision
from volguard.guard.runtime import Guard

LOG = "decisions.jsonl"
CHECKPOINT = "checkpoint.pkl"
GUARDED = "guarded"
SETTINGS = "run.json"


class ReplayMismatch(VolguardError, RuntimeError):
    """A run folder belongs to other inputs or settings: its ``run.json`` differs from the
    call's, or a resumed replay decided differently from the log."""


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
    force: bool = False,
) -> ReplaySummary:
    """Replay ``underlying`` from ``store`` through a guard, resuming from ``out`` if present.

    Parameters
    ----------
    make_guard : callable
        Builds a fresh guard (used when ``out`` has no checkpoint).
    out : path
        The run folder (see the module docstring).
    start, end : str or Timestamp, optional
        Inclusive UTC bounds. A later ``end`` continues a run folder; ``start`` must match it.
    on_decision : callable, optional
        Called with each decision after it is durable (progress bars).
    force : bool
        Remove the run files of ``out`` first (start afresh whatever made them).

    Raises
    ------
    ReplayMismatch
        If ``out`` was made with other settings (``run.json``), its log runs past ``end``, or a
        re-processed snapshot's decision differs from the logged one.
    StoreError
        If the store holds no snapshot of ``underlying`` between ``start`` and ``end``.
    """
    out = Path(out)
    checkpoint = out / CHECKPOINT
    guard, resumed = make_guard(), None
    if force:
        clear_run(out)
    _check_window(store, underlying, start, end)
    _claim(out, run_settings(guard, underlying, start), end)
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


def run_settings(guard: Guard, underlying: str, start: str | pd.Timestamp | None) -> dict[str, str]:
    """What makes a run folder's decisions: underlying, first time, engines (their repr shows
    every setting changed from the default) and each guard setting, as strings.

    Examples
    --------
    >>> from volguard.guard.runtime import GuardSettings
    >>> from volguard.models import make_engine
    >>> guard = Guard(make_engine("ssvi"), make_engine("black76-flat"), GuardSettings(warmup=3))
    >>> s = run_settings(guard, "BTC", "2026-01-02")
    >>> s["underlying"], s["from"], s["engine"], s["warmup"]
    ('BTC', '2026-01-02 00:00:00+00:00', 'SSVI()', '3')
    """
    first = "None" if start is None else str(utc(start))
    settings = {"underlying": underlying, "from": first}
    settings |= {"engine": repr(guard.engine), "fallback": repr(guard.fallback)}
    for item in dataclasses.fields(guard.settings):
        settings[item.name] = str(getattr(guard.settings, item.name))
    return settings


def clear_run(out: Path) -> None:
    """Remove the run files of ``out`` (log, checkpoint, guarded parts, ``run.json``)."""
    for name in (LOG, CHECKPOINT, SETTINGS):
        (out / name).unlink(missing_ok=True)
    for part in (out / GUARDED).glob("part-*.parquet"):
        part.unlink()


def _check_window(
    store: QuoteStore,
    underlying: str,
    start: str | pd.Timestamp | None,
    end: str | pd.Timestamp | None,
) -> None:
    stamps = store.timestamps(underlying)
    if stamps.empty:
        raise StoreError(f"{store.root}: no quotes of underlying {underlying!r} in the store")
    lo = utc(start) if start is not None else stamps[0]
    hi = utc(end, end=True) if end is not None else stamps[-1]
    if not ((stamps >= lo) & (stamps <= hi)).any():
        raise StoreError(
            f"{store.root}: no {underlying} snapshot from {lo} to {hi}; the store holds "
            f"{stamps[0]} to {stamps[-1]}"
        )


def _claim(out: Path, settings: dict[str, str], end: str | pd.Timestamp | None) -> None:
    """Record ``settings`` in a new run folder, or check them against an existing one."""
    path = out / SETTINGS
    if not path.exists():
        if (out / LOG).exists():
            raise ReplayMismatch(
                f"{out}: holds a decision log but no {SETTINGS} (an older volguard made it); "
                "use another folder or --force to start it afresh"
            )
        write_atomic(path, json.dumps(settings, indent=1) + "\n")
        return
    found = json.loads(path.read_text(encoding="utf-8"))
    for key in [*settings, *(k for k in found if k not in settings)]:
        if found.get(key) != settings.get(key):
            raise ReplayMismatch(
                f"{out}: made with {key} = {found.get(key)}, this run asks {settings.get(key)}; "
                "use another folder, the same settings, or --force to start it afresh"
            )
    logged = read_log(out / LOG)
    if end is not None and logged and logged[-1].ts > utc(end, end=True):
        raise ReplayMismatch(
            f"{out}: the log already runs to {logged[-1].ts}, after the last time {end}; "
            "use another folder or --force to start it afresh"
        )


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
