"""``csv``: any CSV or Parquet file, read through a column mapping in a small TOML file.

A mapping names, for each quote column, the source column it comes from, the units of the
source, and constants for what the file does not hold::

    # mapping.toml
    premium_unit = "coin"      # "coin" (x forward -> USD) or "usd"
    iv_unit = "percent"        # "percent" or "decimal"
    time_unit = "ms"           # "iso" (ISO-8601 text) or epoch numbers in "s", "ms", "us", "ns"
    delimiter = ","            # optional, CSV only
    strip = false              # optional, CSV only: strip blanks and [] around header names
    quoted = false             # optional, CSV only: honour "..." quoting (off: quotes are text)
    call_values = ["call", "c"]  # optional, case-insensitive text meaning a call
    put_values = ["put", "p"]    # optional

    [columns]                  # quote column = source column
    ts = "timestamp"
    instrument = "symbol"      # optional: built the Deribit way when absent
    expiry = "expiry"
    strike = "strike"
    is_call = "type"
    forward = "underlying_price"
    bid = "bid"
    ask = "ask"
    mark_iv = "iv"

    [constants]                # quote column = value, for venue, underlying, settlement
    venue = "deribit"
    underlying = "BTC"
    settlement = "inverse"

Mappable columns: ``ts``, ``expiry`` (times in ``time_unit``), ``instrument``, ``underlying``,
``venue``, ``settlement`` (text), ``strike``, ``forward``, ``index_price`` (USD), ``bid``, ``ask``,
``mark`` (premiums in ``premium_unit``), ``bid_iv``, ``ask_iv``, ``mark_iv`` (``iv_unit``),
``bid_size``, ``ask_size``, ``open_interest``, ``volume`` (contracts), ``is_call``. Every required
quote column (``ts``, ``underlying``, ``instrument``, ``expiry``, ``strike``, ``is_call``,
``settlement``) must be mapped or be a constant (``instrument`` may be left to be built).

A mapping that breaks these rules raises :class:`~volguard.errors.ConfigError` naming the key; a
data file that lacks a mapped column raises :class:`~volguard.errors.DataFileError`. Parquet rows
have ``source_row`` = 1-based row index (there is no header line).

Use :func:`make_mapped_csv_loader` to get a ``(Path) -> DataFrame`` loader for one mapping; the
registered ``csv`` loader looks for the mapping beside the data file (``<file>.mapping.toml``,
then ``mapping.toml`` in the same folder).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from volguard.data.loaders._common import (
    RowReasons,
    assemble,
    missing_required,
    parse_choice,
    parse_float,
    parse_utc,
    read_csv_text,
)
from volguard.errors import ConfigError, DataFileError
from volguard.market.contracts import coin_to_usd
from volguard.market.deribit import deribit_names

TIME_COLUMNS = ("ts", "expiry")
TEXT_COLUMNS = ("instrument", "underlying", "venue", "settlement")
USD_COLUMNS = ("strike", "forward", "index_price")
PREMIUM_COLUMNS = ("bid", "ask", "mark")
IV_COLUMNS = ("bid_iv", "ask_iv", "mark_iv")
COUNT_COLUMNS = ("bid_size", "ask_size", "open_interest", "volume")
MAPPABLE = (
    *TIME_COLUMNS,
    *TEXT_COLUMNS,
    *USD_COLUMNS,
    *PREMIUM_COLUMNS,
    *IV_COLUMNS,
    *COUNT_COLUMNS,
    "is_call",
)
CONSTANTS = ("venue", "underlying", "settlement")
NEEDED = ("ts", "underlying", "expiry", "strike", "is_call", "settlement")
PREMIUM_UNITS = ("coin", "usd")
IV_UNITS = ("percent", "decimal")
TIME_UNITS = ("iso", "s", "ms", "us", "ns")
_EPOCH: dict[str, Literal["s", "ms", "us", "ns"]] = {"s": "s", "ms": "ms", "us": "us", "ns": "ns"}
SETTLEMENTS = ("inverse", "linear")
_TOP_KEYS = {
    "premium_unit",
    "iv_unit",
    "time_unit",
    "delimiter",
    "strip",
    "quoted",
    "call_values",
    "put_values",
    "columns",
    "constants",
}


@dataclass(frozen=True)
class ColumnMapping:
    """A validated mapping file (see the module docstring for the format)."""

    columns: dict[str, str]
    constants: dict[str, str]
    premium_unit: str = "usd"
    iv_unit: str = "decimal"
    time_unit: str = "iso"
    delimiter: str = ","
    strip: bool = False
    quoted: bool = False
    call_values: tuple[str, ...] = ("call", "c")
    put_values: tuple[str, ...] = ("put", "p")
    source: str = field(default="<mapping>", compare=False)


def load_mapping(path: Path) -> ColumnMapping:
    """Read and validate a mapping TOML file.

    Raises
    ------
    ConfigError
        If the file is missing, not TOML, or a key is unknown, of the wrong type, has a value
        outside its allowed set, or a required quote column is neither mapped nor a constant;
        the message names the file and the key.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: mapping file not found") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable TOML mapping file ({exc})") from exc
    return parse_mapping(raw, source=str(path))


def parse_mapping(raw: dict[str, Any], *, source: str = "<mapping>") -> ColumnMapping:
    """Validate a mapping already decoded from TOML (see :func:`load_mapping`)."""

    def fail(key: str, rule: str, value: object) -> ConfigError:
        return ConfigError(f"{source}: key {key!r} {rule}; got {value!r}")

    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise fail(unknown[0], f"is not a mapping key (known: {sorted(_TOP_KEYS)})", unknown[0])
    columns = raw.get("columns", {})
    constants = raw.get("constants", {})
    for table, value in (("columns", columns), ("constants", constants)):
        if not isinstance(value, dict):
            raise fail(table, "must be a table", value)
    for key, value in columns.items():
        if key not in MAPPABLE:
            raise fail(f"columns.{key}", f"is not a quote column (one of {list(MAPPABLE)})", key)
        if not isinstance(value, str) or not value:
            raise fail(f"columns.{key}", "must be a non-empty source column name", value)
    for key, value in constants.items():
        if key not in CONSTANTS:
            raise fail(f"constants.{key}", f"cannot be a constant (one of {list(CONSTANTS)})", key)
        if not isinstance(value, str) or not value:
            raise fail(f"constants.{key}", "must be non-empty text", value)
        if key in columns:
            raise fail(f"constants.{key}", "is also mapped in [columns]; keep one", value)
    if constants.get("settlement", "inverse") not in SETTLEMENTS:
        raise fail("constants.settlement", f"must be one of {list(SETTLEMENTS)}", constants)
    for need in NEEDED:
        if need not in columns and need not in constants:
            raise fail(f"columns.{need}", "is required: map it or give it in [constants]", None)

    def choice(key: str, allowed: tuple[str, ...], default: str) -> str:
        value = raw.get(key, default)
        if value not in allowed:
            raise fail(key, f"must be one of {list(allowed)}", value)
        return str(value)

    def words(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = raw.get(key, list(default))
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise fail(key, "must be a non-empty list of text", value)
        return tuple(v.strip().lower() for v in value)

    premium_unit = choice("premium_unit", PREMIUM_UNITS, "usd")
    if premium_unit == "coin" and "forward" not in columns:
        raise fail("columns.forward", 'is required when premium_unit = "coin"', None)
    delimiter = raw.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise fail("delimiter", "must be one character", delimiter)
    strip = raw.get("strip", False)
    if not isinstance(strip, bool):
        raise fail("strip", "must be true or false", strip)
    quoted = raw.get("quoted", False)
    if not isinstance(quoted, bool):
        raise fail("quoted", "must be true or false", quoted)
    call_values = words("call_values", ("call", "c"))
    put_values = words("put_values", ("put", "p"))
    if set(call_values) & set(put_values):
        raise fail("put_values", "must not share a value with call_values", put_values)
    return ColumnMapping(
        columns=dict(columns),
        constants=dict(constants),
        premium_unit=premium_unit,
        iv_unit=choice("iv_unit", IV_UNITS, "decimal"),
        time_unit=choice("time_unit", TIME_UNITS, "iso"),
        delimiter=delimiter,
        strip=strip,
        quoted=quoted,
        call_values=call_values,
        put_values=put_values,
        source=source,
    )


@dataclass(frozen=True)
class MappedCsvLoader:
    """A ``(Path) -> DataFrame`` loader bound to one mapping (picklable, for ingest workers)."""

    mapping: ColumnMapping

    def __call__(self, path: Path) -> pd.DataFrame:
        return read_mapped(path, self.mapping)


def make_mapped_csv_loader(mapping_path: Path) -> MappedCsvLoader:
    """A loader for CSV/Parquet files described by the mapping file ``mapping_path``.

    The mapping is read and validated now (a bad one raises :class:`ConfigError` at once);
    use it as ``make_mapped_csv_loader(Path("vendor.toml"))(Path("chain.csv"))``.

    Raises
    ------
    ConfigError
        See :func:`load_mapping`.
    """
    return MappedCsvLoader(load_mapping(mapping_path))


def read_mapped_csv(path: Path) -> pd.DataFrame:
    """The registered ``csv`` loader: reads the mapping found beside ``path``.

    Raises
    ------
    ConfigError
        If neither ``<file>.mapping.toml`` nor ``mapping.toml`` exists in the file's folder.
    """
    for candidate in (path.with_name(path.name + ".mapping.toml"), path.with_name("mapping.toml")):
        if candidate.is_file():
            return read_mapped(path, load_mapping(candidate))
    raise ConfigError(
        f"{path}: the csv format needs a column mapping: pass one (--mapping FILE) or put "
        f"{path.name}.mapping.toml or mapping.toml beside the file"
    )


def read_mapped(path: Path, mapping: ColumnMapping) -> pd.DataFrame:
    """Read ``path`` (CSV, plain or gzip, or Parquet) through ``mapping`` into quote rows.

    Returns
    -------
    DataFrame
        The quarantine columns, one row per source row: premiums in USD per 1 underlying
        (``coin * forward`` where ``premium_unit = "coin"``), vols as decimals.

    Raises
    ------
    DataFileError
        If the file is unreadable or lacks a mapped column.
    """
    sources = sorted(set(mapping.columns.values()))
    if _is_parquet(path):
        text, malformed, iso_columns = _read_parquet_text(path, sources)
    else:
        text, malformed = read_csv_text(
            path, sources, delimiter=mapping.delimiter, strip=mapping.strip, quoted=mapping.quoted
        )
        iso_columns = set()
    reasons = RowReasons(len(text))
    cols = mapping.columns
    n = len(text)
    missing_required(text, [cols[c] for c in NEEDED if c in cols], reasons)
    if "instrument" in cols:
        missing_required(text, [cols["instrument"]], reasons)
    out: dict[str, object] = {}
    for name in TIME_COLUMNS:
        if name in cols:
            src = cols[name]
            iso = mapping.time_unit == "iso" or src in iso_columns
            out[name] = parse_utc(
                text, src, reasons, unit=None if iso else _EPOCH[mapping.time_unit]
            )
    for name in TEXT_COLUMNS:
        if name in cols:
            out[name] = text[cols[name]].str.strip()
        elif name in mapping.constants:
            out[name] = mapping.constants[name]
    if isinstance(out.get("underlying"), pd.Series):
        out["underlying"] = text[cols["underlying"]].str.strip().str.upper()
    elif "underlying" in out:
        out["underlying"] = str(out["underlying"]).upper()
    if "is_call" in cols:
        choices = {v: True for v in mapping.call_values} | {v: False for v in mapping.put_values}
        stripped = text.assign(**{cols["is_call"]: text[cols["is_call"]].str.strip()})
        out["is_call"] = parse_choice(stripped, cols["is_call"], choices, reasons)
    if "settlement" in cols:
        src = cols["settlement"]
        settle = text[src].str.strip().str.lower()
        reasons.mark(settle.notna() & ~settle.isin(SETTLEMENTS).fillna(False), f"unparseable:{src}")
        out["settlement"] = settle.where(settle.isin(SETTLEMENTS).fillna(False))
    numbers = {
        name: parse_float(text, cols[name], reasons)
        for name in (*USD_COLUMNS, *PREMIUM_COLUMNS, *IV_COLUMNS, *COUNT_COLUMNS)
        if name in cols
    }
    forward = numbers.get("forward", np.full(n, np.nan))
    for name, values in numbers.items():
        if name in PREMIUM_COLUMNS and mapping.premium_unit == "coin":
            values = coin_to_usd(values, forward)
        elif name in IV_COLUMNS and mapping.iv_unit == "percent":
            values = values / 100.0
        out[name] = values
    if "instrument" not in cols:
        out["instrument"] = deribit_names(
            _series(out["underlying"], n),
            _series(out["expiry"], n),
            np.asarray(out["strike"], dtype=float),
            _series(out["is_call"], n),
        )
    return assemble(
        out,
        reasons,
        source=path.name,
        source_row=text["source_row"],
        malformed=malformed,
    )


def _series(value: object, n: int) -> pd.Series:
    if isinstance(value, pd.Series):
        return value.reset_index(drop=True)
    return pd.Series([value] * n)


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in (".parquet", ".pq"):
        return True
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def _read_parquet_text(
    path: Path, required: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    """A Parquet file as text columns (like :func:`read_csv_text`) plus its timestamp columns."""
    try:
        schema = pq.read_schema(path)
        missing = [c for c in required if c not in schema.names]
        if missing:
            raise DataFileError(
                path,
                f"missing required column(s) {missing}",
                f"a Parquet file with columns {sorted(required)}",
            )
        table = pq.read_table(path, columns=required)
    except FileNotFoundError as exc:
        raise DataFileError(path, "file not found", "an existing readable file") from exc
    except (OSError, pa.ArrowException) as exc:
        raise DataFileError(path, f"cannot be read ({exc})", "a complete Parquet file") from exc
    text: dict[str, pd.Series] = {}
    iso: set[str] = set()
    for name in required:
        column = table.column(name)
        if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            iso.add(name)
            stamps = pd.to_datetime(column.to_pandas(), utc=True)
            text[name] = stamps.map(lambda s: s.isoformat(), na_action="ignore").astype("string")
        else:
            text[name] = pd.Series(column.to_pandas()).astype("string")
    frame = pd.DataFrame(text, index=pd.RangeIndex(table.num_rows))
    frame["source_row"] = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return frame, pd.DataFrame({"source_row": np.array([], dtype=np.int64)}), iso
