"""Shared parsing for the loaders: text in, typed columns out, every bad row given a reason.

A loader reads a whole file as strings (so one bad cell never loses its row), parses each
column it needs, and records the first problem of each row in ``reason``. File-level trouble
(unreadable, truncated gzip, not UTF-8, missing columns) raises :class:`DataFileError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from volguard.data.schema import QUARANTINE_COLUMNS, conform
from volguard.errors import DataFileError
from volguard.market.clock import SECONDS_PER_YEAR


class RowReasons:
    """The first problem found in each row; later problems never overwrite an earlier one."""

    def __init__(self, n: int) -> None:
        self.codes = pd.Series(pd.array([None] * n, dtype="string"))

    def mark(self, mask: np.ndarray | pd.Series, code: str) -> None:
        hit = np.asarray(mask, dtype=bool) & self.codes.isna().to_numpy()
        if hit.any():
            self.codes[hit] = code


def read_csv_text(
    path: Path,
    required: Iterable[str],
    *,
    delimiter: str = ",",
    strip: bool = False,
    quoted: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a (possibly gzipped) CSV file with every column as text, one record per line.

    Quoting is off unless ``quoted``: the venue formats never quote, and with quoting on a stray
    ``"`` in one cell would swallow every following line into one bad record. An empty line is a
    record with every field missing, so line numbers stay exact.

    Returns
    -------
    rows : DataFrame
        One row per well-formed line, all columns as nullable strings (empty -> missing), plus
        ``source_row``, the 1-based line number in the file (the header is line 1).
    malformed : DataFrame
        ``source_row`` of the lines with the wrong number of fields.

    Raises
    ------
    DataFileError
        If the file cannot be read, is a truncated or corrupt gzip, is not UTF-8 text, or lacks a
        required column; the message names the file and what was expected.
    """
    bad_lines: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad_lines.append(int(row.number) if row.number is not None else -1)
        return "skip"

    try:
        header = _read_header(path, delimiter, strip, quoted)
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                quote_char='"' if quoted else False,
                invalid_row_handler=on_invalid,
                ignore_empty_lines=False,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header.raw},
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except FileNotFoundError as exc:
        raise DataFileError(path, "file not found", "an existing readable file") from exc
    except (OSError, EOFError, pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise DataFileError(path, f"cannot be read ({_short(exc)})", _EXPECTED_TEXT) from exc
    missing = [c for c in required if c not in header.names]
    if missing:
        raise DataFileError(
            path,
            f"missing required column(s) {missing}",
            f"a header with columns {sorted(required)}",
        )
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    frame.columns = header.names
    if strip:
        frame = frame.apply(lambda s: s.str.strip()).replace("", pd.NA)
    n_total = len(frame) + len(bad_lines)
    all_lines = np.arange(2, n_total + 2, dtype=np.int64)
    frame["source_row"] = np.setdiff1d(all_lines, np.asarray(bad_lines, dtype=np.int64))
    malformed = pd.DataFrame({"source_row": np.asarray(bad_lines, dtype=np.int64)})
    return frame, malformed


_EXPECTED_TEXT = "a complete CSV file (plain or gzip), UTF-8 encoded"


class _Header:
    def __init__(self, raw: list[str], names: list[str]) -> None:
        self.raw = raw
        self.names = names


def _read_header(path: Path, delimiter: str, strip: bool, quoted: bool) -> _Header:
    with pa.input_stream(str(path), compression="detect") as stream:
        first = stream.read(1 << 16).split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8")
    raw = [n.strip('"') if quoted else n for n in first.split(delimiter)]
    names = [n.strip().strip("[]") for n in raw] if strip else raw
    return _Header(raw, names)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def parse_float(frame: pd.DataFrame, column: str, reasons: RowReasons) -> np.ndarray:
    """Parse a text column as float64; empty stays NaN, text that is not a number is unparseable."""
    text = frame[column]
    try:  # fast path: the whole column parses
        parsed: np.ndarray = pc.cast(pa.array(text), pa.float64()).to_numpy(zero_copy_only=False)
        return parsed
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    values = pd.to_numeric(text, errors="coerce").astype("float64")
    reasons.mark(values.isna() & text.notna(), f"unparseable:{column}")
    return values.to_numpy(dtype=float, na_value=np.nan)


def parse_utc(
    frame: pd.DataFrame,
    column: str,
    reasons: RowReasons,
    *,
    unit: Literal["s", "ms", "us", "ns"] | None = None,
) -> pd.Series:
    """Parse ISO-8601 text (or epoch numbers in ``unit``) as UTC; bad text is unparseable."""
    text = frame[column]
    if unit is None:
        try:  # fast path: every value is ISO 8601 with a zone offset
            parsed = pc.cast(pa.array(text), pa.timestamp("ns", tz="UTC"))
            stamps = pd.Series(parsed.to_pandas(), index=text.index)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            stamps = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    else:
        numbers = pd.to_numeric(text, errors="coerce")
        stamps = pd.to_datetime(numbers, unit=unit, utc=True, errors="coerce")
    # an instant outside 1970..2200 is no date of this market: unparseable, not a crash (two such
    # instants can be further apart than datetime64[ns] differences reach, 292 years)
    stamps = stamps.where(stamps.isna() | ((stamps >= _NS_MIN) & (stamps <= _NS_MAX)))
    reasons.mark(stamps.isna() & text.notna(), f"unparseable:{column}")
    return stamps.astype("datetime64[ns, UTC]")


# plausible instants of option quotes and expiries (see parse_utc)
_NS_MIN = pd.Timestamp("1970-01-01", tz="UTC")
_NS_MAX = pd.Timestamp("2200-01-01", tz="UTC")


def as_of_bucket_end(stamps: pd.Series, every_s: float) -> pd.Series:
    """Snap update times to the end of their ``every_s`` bucket: the snapshot they belong to.

    In an update stream the last update of an option inside a bucket is its quote *as of* the
    bucket's end, so that end is the row's ``ts`` (and ``t`` runs from it to expiry).
    """
    step = pd.Timedelta(seconds=every_s)
    ends: pd.Series = (stamps.dt.floor(step) + step).astype("datetime64[ns, UTC]")
    return ends


def parse_choice(
    frame: pd.DataFrame, column: str, mapping: dict[str, bool], reasons: RowReasons
) -> pd.Series:
    """Map text (case-insensitive) through ``mapping``; other non-empty text is unparseable."""
    text = frame[column].str.lower()
    values = text.map(mapping, na_action="ignore").astype("boolean")
    reasons.mark(values.isna() & text.notna(), f"unparseable:{column}")
    return values


def missing_required(frame: pd.DataFrame, columns: Iterable[str], reasons: RowReasons) -> None:
    """Flag rows where a required text column is empty."""
    for column in columns:
        reasons.mark(frame[column].isna(), f"missing:{column}")


def malformed_rows(malformed: pd.DataFrame) -> pd.DataFrame:
    """Rows for the lines that had the wrong number of fields, reason ``malformed_row``."""
    return pd.DataFrame(
        {
            "source_row": malformed["source_row"],
            "reason": pd.array(["malformed_row"] * len(malformed), dtype="string"),
        }
    )


def assemble(
    columns: dict[str, object],
    reasons: RowReasons,
    *,
    source: str,
    source_row: np.ndarray | pd.Series,
    malformed: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Build a loader's output: the quote columns, ``t`` from ``ts`` and ``expiry``, and ``reason``.

    Rows with a ``reason`` already set (parse problems) go to quarantine after hygiene; the rest
    are judged by :func:`volguard.data.hygiene.classify`.
    """
    out = pd.DataFrame(columns)
    out["source_row"] = np.asarray(source_row, dtype=np.int64)
    out["reason"] = reasons.codes.to_numpy()
    if malformed is not None and len(malformed):
        out = pd.concat([out, malformed_rows(malformed)], ignore_index=True)
    out["source"] = source
    ts = pd.to_datetime(out["ts"], utc=True) if "ts" in out else None
    expiry = pd.to_datetime(out["expiry"], utc=True) if "expiry" in out else None
    if ts is not None and expiry is not None:
        elapsed = (expiry - ts).dt.total_seconds()
        out["t"] = elapsed.to_numpy(dtype=float, na_value=np.nan) / SECONDS_PER_YEAR
    return conform(out, QUARANTINE_COLUMNS)
