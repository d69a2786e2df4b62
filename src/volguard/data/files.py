"""Atomic, durable file output: a file or folder is either the old one or the whole new one.

Every writer of the project goes through here (stores, simulator runs, reports, the guard's
checkpoints), so a failed or killed run never leaves a half-written output behind.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


def fsync_dir(path: str | Path) -> None:
    """Make a folder's entries (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as Parquet file content (no index), for :func:`write_atomic`."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def write_atomic(path: str | Path, content: str | bytes) -> Path:
    """Write ``content`` (text as UTF-8, or bytes) to ``path`` via a temporary file, an fsync
    and a rename, then fsync the folder: after a crash ``path`` is the old or the new content.

    Examples
    --------
    >>> target = Path(tempfile.mkdtemp()) / "out" / "report.md"
    >>> write_atomic(target, "# hello\\n").read_text()
    '# hello\\n'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide outputs from other users
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.encode("utf-8") if isinstance(content, str) else content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return target


@contextmanager
def replacing_dir(dest: str | Path) -> Iterator[Path]:
    """A new sibling folder to fill; it replaces ``dest`` when the block succeeds.

    On an exception the new folder is removed and ``dest`` is left as it was.

    Examples
    --------
    >>> dest = Path(tempfile.mkdtemp()) / "run"
    >>> with replacing_dir(dest) as building:
    ...     _ = (building / "a.txt").write_text("a")
    >>> sorted(p.name for p in dest.iterdir())
    ['a.txt']
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.building."))
    try:
        yield building
        retired = dest.with_name(f".{dest.name}.retired")
        shutil.rmtree(retired, ignore_errors=True)
        if dest.exists():
            os.replace(dest, retired)
        os.replace(building, dest)
        fsync_dir(dest.parent)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(building, ignore_errors=True)
