"""The append-only, crash-safe decision log: one JSON line per decision, fsynced.

A line is written with one ``write`` of the whole record and its newline, then flushed and
fsynced before :meth:`AuditLog.append` returns, so a decision that returned is on disk. A kill
during the write can leave at most one partial last line (no newline): opening the log again
cuts that torn tail, which loses only the decision that was in flight.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from volguard.guard.policy import Decision


class AuditLog:
    """Append :class:`Decision` records to ``path`` (created with its folder if missing).

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> path = Path(tempfile.mkdtemp()) / "decisions.jsonl"
    >>> d = Decision(0, pd.Timestamp("2026-01-29", tz="UTC"), "BTC", "NORMAL", "NORMAL",
    ...              "hold", "calm", {"z": 0.3})
    >>> with AuditLog(path) as log:
    ...     log.append(d)
    >>> read_log(path) == [d], AuditLog(path).last_seq
    (True, 0)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _cut_torn_tail(self.path)
        self._records = read_log(self.path)
        self._file = open(self.path, "ab")  # noqa: SIM115 (closed by close())

    @property
    def last_seq(self) -> int:
        """Sequence number of the last logged decision (-1 for an empty log)."""
        return self._records[-1].seq if self._records else -1

    @property
    def records(self) -> list[Decision]:
        """The decisions in the log, oldest first."""
        return list(self._records)

    def append(self, decision: Decision) -> None:
        """Write one decision and make it durable (flush + fsync) before returning."""
        self._file.write((decision.to_json() + "\n").encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._records.append(decision)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def read_log(path: str | Path) -> list[Decision]:
    """The complete decisions of a log (a torn last line is ignored; a missing log is empty)."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    return [Decision.from_json(line) for line in complete.decode("utf-8").splitlines() if line]


def _cut_torn_tail(path: Path) -> None:
    if not path.exists():
        return
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
