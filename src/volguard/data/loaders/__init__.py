"""Venue adapters: each named format turns one file into quote rows, a reason per bad row."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from volguard.data.loaders.deribit_snapshot import read_deribit_snapshot

Loader = Callable[[Path], pd.DataFrame]

LOADERS: dict[str, Loader] = {
    "deribit-snapshot": read_deribit_snapshot,
}
"""Format name -> loader. Names feed the CLI (``volguard ingest --format``)."""

__all__ = ["LOADERS", "Loader", "read_deribit_snapshot"]
