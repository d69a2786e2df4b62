"""Venue adapters: each named format turns one file into quote rows, a reason per bad row."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from volguard.data.loaders.deribit_api import read_deribit_api
from volguard.data.loaders.deribit_snapshot import read_deribit_snapshot
from volguard.data.loaders.mapped_csv import make_mapped_csv_loader, read_mapped_csv
from volguard.data.loaders.optionsdx import read_optionsdx
from volguard.data.loaders.quote_parquet import read_quote_parquet
from volguard.data.loaders.tardis_chain import read_tardis_chain
from volguard.data.loaders.tardis_smiles import read_tardis_smiles

Loader = Callable[[Path], pd.DataFrame]

LOADERS: dict[str, Loader] = {
    "deribit-snapshot": read_deribit_snapshot,
    "tardis-smiles": read_tardis_smiles,
    "optionsdx": read_optionsdx,
    "tardis": read_tardis_chain,
    "deribit-api": read_deribit_api,
    "csv": read_mapped_csv,
    "quotes": read_quote_parquet,
}
"""Format name -> loader. Names feed the CLI (``volguard ingest --format``)."""

__all__ = [
    "LOADERS",
    "Loader",
    "make_mapped_csv_loader",
    "read_deribit_api",
    "read_deribit_snapshot",
    "read_mapped_csv",
    "read_optionsdx",
    "read_quote_parquet",
    "read_tardis_chain",
    "read_tardis_smiles",
]
