"""``tardis``: Tardis.dev's native Deribit ``options_chain`` CSV (downloadable datasets).

One row per option ticker update, as Tardis documents the dataset (``.csv`` or ``.csv.gz``):

``exchange, symbol, timestamp, local_timestamp, type, strike_price, expiration, open_interest,
last_price, bid_price, bid_amount, bid_iv, ask_price, ask_amount, ask_iv, mark_price, mark_iv,
underlying_index, underlying_price, delta, gamma, vega, theta, rho``

Units for Deribit: ``timestamp`` (exchange time), ``local_timestamp`` (arrival time, not kept) and
``expiration`` in microseconds since the epoch (UTC); ``type`` ``call``/``put``; ``strike_price``
USD; prices in coin per 1 coin for inverse options (``BTC-...``) and in USDC for linear ones
(``BTC_USDC-...``); ``*_amount`` in contracts; IVs in percent; ``underlying_price`` USD, the
expiry's future or synthetic forward (F). An empty cell means Tardis has no value (no bid, no ask);
a zero bid or ask price is also read as "no quote". Only ``exchange == deribit`` rows are
understood; other venues get ``unparseable:exchange``.

The file is a stream of updates; a snapshot is the state as of a time. Each row's ``ts`` is the
end of its :data:`SNAPSHOT_EVERY_S` bucket (an update at 10:17:03 belongs to the 11:00 snapshot),
and of several updates of one option in one bucket the last is the quote (hygiene quarantines the
earlier ones as ``duplicate``). :func:`thin_options_chain` keeps only those last updates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from volguard.data.loaders._common import (
    RowReasons,
    as_of_bucket_end,
    assemble,
    missing_required,
    parse_choice,
    parse_float,
    parse_utc,
    read_csv_text,
)
from volguard.data.loaders._deribit import (
    no_quote_to_nan,
    percent_to_decimal,
)
from volguard.errors import DataFileError
from volguard.market.contracts import premium_to_usd
from volguard.market.deribit import settlement_from_symbol, underlying_from_symbol

REQUIRED = (
    "exchange",
    "symbol",
    "timestamp",
    "type",
    "strike_price",
    "expiration",
    "open_interest",
    "bid_price",
    "bid_amount",
    "bid_iv",
    "ask_price",
    "ask_amount",
    "ask_iv",
    "mark_price",
    "mark_iv",
    "underlying_price",
)

SUPPORTED_EXCHANGES = ("deribit",)

SNAPSHOT_EVERY_S = 3600.0
"""Snapshot bucket of the update stream, seconds (hourly, as the thinned files)."""


def read_tardis_chain(path: Path) -> pd.DataFrame:
    """Read one Tardis.dev ``options_chain`` file (Deribit) into quote rows.

    Parameters
    ----------
    path : Path
        ``deribit_options_chain_<date>_OPTIONS.csv.gz`` or any plain/gzip CSV with the columns of
        :data:`REQUIRED` (the other documented columns are optional and ignored).

    Returns
    -------
    DataFrame
        The quarantine columns, one row per data line: premiums in USD per 1 coin
        (``coin * underlying_price`` for inverse options, unchanged for USDC-linear ones),
        vols as decimals, ``reason`` the row's first parse problem.

    Raises
    ------
    DataFileError
        If the file is unreadable, a truncated gzip, not UTF-8, or lacks a required column.
    """
    text, malformed = read_csv_text(path, REQUIRED)
    reasons = RowReasons(len(text))
    missing_required(
        text, ("exchange", "symbol", "timestamp", "expiration", "strike_price", "type"), reasons
    )
    exchange = text["exchange"].str.strip().str.lower()
    reasons.mark(
        exchange.notna() & ~exchange.isin(SUPPORTED_EXCHANGES).fillna(False),
        "unparseable:exchange",
    )
    ts = as_of_bucket_end(parse_utc(text, "timestamp", reasons, unit="us"), SNAPSHOT_EVERY_S)
    expiry = parse_utc(text, "expiration", reasons, unit="us")
    strike = parse_float(text, "strike_price", reasons)
    is_call = parse_choice(text, "type", {"call": True, "put": False}, reasons)
    numbers = {
        col: parse_float(text, col, reasons)
        for col in (
            "bid_price",
            "bid_amount",
            "bid_iv",
            "ask_price",
            "ask_amount",
            "ask_iv",
            "mark_price",
            "mark_iv",
            "underlying_price",
            "open_interest",
        )
    }
    symbol = text["symbol"].str.strip()
    settlement = settlement_from_symbol(symbol)
    forward = numbers["underlying_price"]
    return assemble(
        {
            "ts": ts,
            "venue": exchange,
            "underlying": underlying_from_symbol(symbol),
            "instrument": symbol,
            "expiry": expiry,
            "strike": strike,
            "is_call": is_call,
            "settlement": settlement,
            "forward": forward,
            "bid": premium_to_usd(no_quote_to_nan(numbers["bid_price"]), forward, settlement),
            "ask": premium_to_usd(no_quote_to_nan(numbers["ask_price"]), forward, settlement),
            "mark": premium_to_usd(numbers["mark_price"], forward, settlement),
            "bid_iv": percent_to_decimal(numbers["bid_iv"]),
            "ask_iv": percent_to_decimal(numbers["ask_iv"]),
            "mark_iv": percent_to_decimal(numbers["mark_iv"]),
            "bid_size": numbers["bid_amount"],
            "ask_size": numbers["ask_amount"],
            "open_interest": numbers["open_interest"],
            "volume": np.full(len(text), np.nan),
        },
        reasons,
        source=path.name,
        source_row=text["source_row"],
        malformed=malformed,
    )


@dataclass(frozen=True)
class ThinResult:
    """What :func:`thin_options_chain` kept: the output file and row counts."""

    path: Path
    rows_in: int
    rows_out: int
    malformed_lines: int


def thin_options_chain(
    src: Path,
    dest: Path,
    *,
    every_s: float = 3600.0,
    prefixes: tuple[str, ...] | None = None,
    block_bytes: int = 1 << 24,
) -> ThinResult:
    """Shrink a Tardis ``options_chain`` day file to the last update per symbol and time bucket.

    A full Deribit day file is about 2 GB of gzip, far too big to load whole; this streams it
    (``block_bytes`` of text at a time) and keeps, for each ``symbol`` and each ``every_s``-second
    bucket of ``timestamp``, the last row in file order (the file is ordered by arrival time), which
    gives consistent cross-sections like the ``tardis-deribit-monthly-smiles`` files. Rows whose
    ``timestamp`` does not parse are all kept, so the loader reports them. The output has the same
    columns, in the input's row order, as gzip CSV (read it with :func:`read_tardis_chain`).

    Parameters
    ----------
    src : Path
        A Tardis ``options_chain`` file (plain or gzip).
    dest : Path
        The thinned file to write (gzip CSV); written to a temporary name, then renamed.
    every_s : float
        Bucket width in seconds (3600 = hourly cross-sections).
    prefixes : tuple of str, optional
        Keep only symbols starting with one of these (e.g. ``("BTC-", "ETH-")``).
    block_bytes : int
        Bytes of text parsed per block.

    Returns
    -------
    ThinResult
        The output path, rows read, rows written, and lines skipped for a wrong field count.

    Raises
    ------
    DataFileError
        If ``src`` is unreadable, a truncated gzip, not UTF-8 or lacks ``symbol``/``timestamp``.
    """
    if not every_s > 0:
        raise ValueError(f"every_s must be > 0 seconds; got {every_s!r}")
    malformed = [0]

    def skip(_row: pacsv.InvalidRow) -> str:
        malformed[0] += 1
        return "skip"

    try:
        names = pacsv.open_csv(
            src,
            read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 16),
            parse_options=pacsv.ParseOptions(
                quote_char=False, invalid_row_handler=lambda _: "skip"
            ),
        ).schema.names
        if not {"symbol", "timestamp"} <= set(names):
            raise DataFileError(src, "missing column 'symbol' or 'timestamp'", _THIN_EXPECTED)
        reader = pacsv.open_csv(
            src,
            read_options=pacsv.ReadOptions(use_threads=False, block_size=block_bytes),
            parse_options=pacsv.ParseOptions(quote_char=False, invalid_row_handler=skip),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=True
            ),
        )
        kept: list[pd.DataFrame] = []
        rows_in = 0
        width_us = every_s * 1e6
        for batch in reader:
            frame = batch.to_pandas(types_mapper=pd.ArrowDtype).astype("string")
            frame.index = pd.RangeIndex(rows_in, rows_in + len(frame))
            rows_in += len(frame)
            if prefixes:
                frame = frame[frame["symbol"].str.startswith(prefixes).fillna(False)]
            stamps = pd.to_numeric(frame["timestamp"], errors="coerce")
            bucket = np.floor(stamps.to_numpy(dtype=float, na_value=np.nan) / width_us)
            # rows without a time keep a unique key (negative row number): never merged away
            unique = -1.0 - frame.index.to_numpy(dtype=float)
            frame = frame.assign(_bucket=np.where(np.isnan(bucket), unique, bucket))
            kept.append(frame.drop_duplicates(["symbol", "_bucket"], keep="last"))
            if len(kept) >= 8:
                kept = [_last_per_key(kept)]
    except (FileNotFoundError, OSError, EOFError, pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise DataFileError(src, f"cannot be read ({exc})", _THIN_EXPECTED) from exc
    out = _last_per_key(kept) if kept else pd.DataFrame(columns=[*names, "_bucket"])
    out = out.sort_index().drop(columns="_bucket")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    try:
        out.to_csv(tmp, index=False, compression={"method": "gzip", "mtime": 0})
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return ThinResult(dest, rows_in, len(out), malformed[0])


_THIN_EXPECTED = "a complete Tardis options_chain CSV (plain or gzip), UTF-8 encoded"


def _last_per_key(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames).drop_duplicates(["symbol", "_bucket"], keep="last")
