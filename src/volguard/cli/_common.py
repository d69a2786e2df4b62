"""What every command shares: consoles, one-line errors, the checks of paths and times made
before any computation, progress bars and number formatting.

Only the standard library, typer and rich are imported here (and by ``cli.main`` at import
time), so ``volguard --help`` answers without loading the numerical stack.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from volguard.errors import ConfigError, VolguardError

if TYPE_CHECKING:
    import pandas as pd

out = Console()
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` as one line on stderr; return the exit (code 2) to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    return typer.Exit(code=2)


class OneLineGroup(TyperGroup):
    """A command group whose usage errors (a bad option value, a missing option) are one line
    on stderr and exit code 2, like every other error of the command line."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except typer.Abort:
            err.print("[bold red]error:[/] aborted")
            sys.exit(1)
        except typer.TyperException as exc:  # typer's click: a usage error
            names: list[str] = []
            ctx = getattr(exc, "ctx", None)
            while ctx is not None and ctx.parent is not None:  # the command, not the program
                names.insert(0, str(ctx.info_name))
                ctx = ctx.parent
            where = f"{' '.join(names)}: " if names else ""
            message = getattr(exc, "format_message", exc.__str__)()
            fail(f"{where}{message}")
            sys.exit(2)
        sys.exit(code if isinstance(code, int) else 0)


def run(action: Callable[[], T]) -> T:
    """Run ``action``; a volguard error or an operating-system error (a path that cannot be
    read or written) becomes a one-line message and exit code 2."""
    try:
        return action()
    except (VolguardError, OSError) as exc:
        raise fail(str(exc)) from exc


def check_time(value: str, option: str, *, end: bool = False) -> pd.Timestamp:
    """``value`` as a UTC time, or a one-line error naming ``option`` (see ``store.utc``)."""
    from volguard.data.store import utc

    try:
        return utc(value, end=end)
    except ConfigError as exc:
        raise fail(f"{option} {exc}") from exc


def check_store(path: Path) -> Path:
    """``path`` if it is an existing folder (a store to read), else a one-line error."""
    if not path.exists():
        raise fail(f"--store {path}: no such folder (ingest into it first)")
    if not path.is_dir():
        raise fail(f"--store {path}: a file, not a store folder")
    return path


def check_out(path: Path, option: str = "--out") -> Path:
    """``path`` if it is a folder that can be written (or can be made: it is not created
    here, so a failed command leaves no empty run folder), else a one-line error."""
    if path.exists() and not path.is_dir():
        raise fail(f"{option} {path}: a file, not a folder")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise fail(f"{option} {path}: {parent} is a file, not a folder")
    try:  # os.access says yes to root on a read-only mount: try it
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".volguard-probe-")
    except OSError as exc:
        raise fail(f"{option} {path}: {parent} is not writable ({exc.strerror})") from exc
    os.close(fd)
    os.unlink(probe)
    return path


@contextmanager
def progress(total: int, label: str, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A transient progress bar on stderr; ``advance(n)`` moves it."""
    if not enabled:
        yield lambda _n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def number(value: object) -> str:
    """A float to two decimals; ``-`` for anything else or not finite."""
    finite = isinstance(value, float) and value == value and abs(value) != float("inf")
    return f"{value:.2f}" if finite else "-"


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON records (ISO dates)."""
    import json

    found: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return found
