"""What the examples on ``deribit-svcj-snapshots`` share: its regimes and its snapshots.

The regimes are the date ranges of the real study, ``examples/deribit-2026.toml`` (both ends
inclusive, UTC); the snapshots come from a store built once under a cache folder.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from volguard.data.ingest import build_store
from volguard.data.store import open_store
from volguard.market.snapshot import MarketSnapshot

STUDY = Path(__file__).parent / "deribit-2026.toml"
REGIMES: dict[str, tuple[str, str]] = {
    name: (str(start), str(end))
    for name, (start, end) in tomllib.loads(STUDY.read_text(encoding="utf-8"))["regimes"][
        "ranges"
    ].items()
}
"""Regime -> (first day, last day) of the real study."""


def svcj_snapshots(underlying: str, cache: Path) -> list[MarketSnapshot]:
    """Every snapshot of ``underlying``, from a store of the data set built once in ``cache``.

    Raises
    ------
    SystemExit
        If the data set is not under ``VOLGUARD_DATA`` (default ``../shared/data``).
    """
    store_dir = cache / "store"
    if not (store_dir / "_manifest.json").exists():
        root = Path(os.environ.get("VOLGUARD_DATA", "../shared/data")) / "deribit-svcj-snapshots"
        files = sorted((root / "snapshots").glob("*.csv.gz"))
        if not files:
            raise SystemExit(f"error: no snapshots under {root} (set VOLGUARD_DATA)")
        build_store(store_dir, [("deribit-snapshot", f) for f in files])
    return list(open_store(store_dir).snapshots(underlying))
