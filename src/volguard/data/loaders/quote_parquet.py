"""``quotes``: Parquet files already in volguard's quote schema (``volguard simulate`` writes them).

The columns of :data:`volguard.data.schema.QUOTE_COLUMNS` are read by name and cast to their
dtypes; ``source`` becomes the file name and ``source_row`` the row's position + 2 (a header
line counts 1, as for the CSV formats). Values are judged by hygiene like every other format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from volguard.data.schema import QUARANTINE_COLUMNS, QUOTE_COLUMN_NAMES, conform
from volguard.errors import DataFileError

REQUIRED = tuple(c for c in QUOTE_COLUMN_NAMES if c not in ("source", "source_row", "flags"))


def read_quote_parquet(path: Path) -> pd.DataFrame:
    """Read one quote-schema Parquet file into quote rows (``reason`` empty).

    Raises
    ------
    DataFileError
        If the file cannot be read as Parquet, lacks a quote column, or a column does not cast to
        its schema type.
    """
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataFileError(path, f"not a readable Parquet file ({exc})", "Parquet") from exc
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise DataFileError(
            path, f"missing column(s) {missing}", f"the quote schema columns {list(REQUIRED)}"
        )
    frame = table.select(list(REQUIRED)).to_pandas()
    frame["source"] = path.name
    frame["source_row"] = np.arange(len(frame), dtype=np.int64) + 2
    frame["reason"] = pd.array([None] * len(frame), dtype="string")
    try:
        return conform(frame, QUARANTINE_COLUMNS)
    except (TypeError, ValueError) as exc:
        raise DataFileError(path, f"a column does not cast ({exc})", "the quote schema") from exc
