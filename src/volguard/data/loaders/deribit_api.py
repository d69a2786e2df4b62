"""``deribit-api``: a bundle of raw Deribit public API responses for one currency.

The bundle is what :func:`volguard.data.fetch.fetch_deribit_chain` writes (plain or gzip JSON)::

    {"currency": "BTC", "fetched_at_ms": 1748736000000,
     "get_instruments": {"jsonrpc": "2.0", "result": [...], "usIn": ..., ...},
     "get_book_summary_by_currency": {"jsonrpc": "2.0", "result": [...], ...}}

Both responses are kept unchanged (``kind=option``). Each book-summary record becomes one row;
it is joined to ``get_instruments`` by ``instrument_name`` for ``strike`` (USD), ``option_type``
(``call``/``put``) and ``expiration_timestamp`` (ms). One bundle is one snapshot: every row's
``ts`` is the book summary's server send time ``usOut`` (µs), or ``fetched_at_ms`` where that is
absent (per-record ``creation_timestamp`` values differ by milliseconds and are not used).
Book-summary units: ``bid_price``/``ask_price``/``mark_price`` in the quote currency per 1 coin
(coin for inverse options, where ``quote_currency`` equals ``base_currency``; USDC for linear
``BTC_USDC-...`` options); ``null`` (or 0) bid/ask = no quote; ``mark_iv`` (and ``bid_iv`` and
``ask_iv`` where present) in percent; ``underlying_price`` USD, the expiry's forward (F);
``estimated_delivery_price`` USD, the index (kept as ``index_price``); ``volume`` (24 h) and
``open_interest`` in contracts.

A book-summary record with no matching instrument keeps its row with reason ``missing:instrument``
(strike, type and expiry are then read from the name where it parses); a record that is not a
JSON object is ``malformed_row``. ``source_row`` is the record's 1-based index in the book summary.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volguard.data.loaders._common import (
    RowReasons,
    assemble,
    missing_required,
    parse_choice,
    parse_float,
    parse_utc,
)
from volguard.data.loaders._deribit import (
    no_quote_to_nan,
    percent_to_decimal,
)
from volguard.errors import DataFileError
from volguard.market.contracts import premium_to_usd
from volguard.market.deribit import parse_deribit_instrument

BOOK_KEY = "get_book_summary_by_currency"
INSTRUMENTS_KEY = "get_instruments"

_EXPECTED = (
    'a UTF-8 JSON object {"currency", "fetched_at_ms", "get_instruments": <Deribit response>, '
    '"get_book_summary_by_currency": <Deribit response>} (plain or gzip)'
)

_BOOK_FIELDS = (
    "instrument_name",
    "creation_timestamp",
    "base_currency",
    "quote_currency",
    "underlying_price",
    "estimated_delivery_price",
    "bid_price",
    "ask_price",
    "mark_price",
    "mark_iv",
    "bid_iv",
    "ask_iv",
    "open_interest",
    "volume",
)
_INSTRUMENT_FIELDS = ("strike", "option_type", "expiration_timestamp", "base_currency")
_LINEAR_QUOTES = frozenset({"USDC", "USDT", "USD"})


def read_bundle(path: Path) -> dict[str, Any]:
    """Read and check a Deribit API bundle file; return the decoded JSON object.

    Raises
    ------
    DataFileError
        If the file is unreadable, a truncated or corrupt gzip, not UTF-8, not JSON, lacks a
        response, or holds a Deribit error response instead of a result list.
    """
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        bundle = json.loads(raw.decode("utf-8"))
    except FileNotFoundError as exc:
        raise DataFileError(path, "file not found", "an existing readable file") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFileError(path, f"cannot be read ({exc})", _EXPECTED) from exc
    except UnicodeDecodeError as exc:
        raise DataFileError(path, f"is not UTF-8 text ({exc.reason})", _EXPECTED) from exc
    except json.JSONDecodeError as exc:
        raise DataFileError(path, f"is not valid JSON ({exc})", _EXPECTED) from exc
    if not isinstance(bundle, dict):
        raise DataFileError(path, f"top level is a {type(bundle).__name__}", _EXPECTED)
    for key in (INSTRUMENTS_KEY, BOOK_KEY):
        _result_list(path, bundle, key)
    return bundle


def _snapshot_time(path: Path, bundle: dict[str, Any]) -> pd.Timestamp:
    """The bundle's one snapshot time: ``usOut`` of the book summary, else ``fetched_at_ms``."""
    us_out = bundle[BOOK_KEY].get("usOut")
    if isinstance(us_out, int) and not isinstance(us_out, bool) and us_out > 0:
        return pd.Timestamp(us_out, unit="us", tz="UTC")
    fetched = bundle.get("fetched_at_ms")
    if isinstance(fetched, int) and not isinstance(fetched, bool) and fetched > 0:
        return pd.Timestamp(fetched, unit="ms", tz="UTC")
    raise DataFileError(
        path,
        "no snapshot time",
        "a positive integer 'usOut' in the book summary response or 'fetched_at_ms' in the bundle",
    )


def _result_list(path: Path, bundle: dict[str, Any], key: str) -> list[Any]:
    if key not in bundle:
        raise DataFileError(path, f"missing key {key!r}", _EXPECTED)
    response = bundle[key]
    if not isinstance(response, dict):
        raise DataFileError(path, f"{key!r} is not a JSON-RPC response object", _EXPECTED)
    if "error" in response:
        raise DataFileError(
            path, f"{key!r} is a Deribit error response: {response['error']!r}", _EXPECTED
        )
    result = response.get("result")
    if not isinstance(result, list):
        raise DataFileError(path, f"{key!r} has no 'result' list", _EXPECTED)
    return result


def _cell(value: Any) -> str | None:
    """JSON value -> text cell: null/NaN -> missing, numbers via repr, bools lower case."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return None if math.isnan(value) else repr(value)
    if isinstance(value, int | str):
        return str(value)
    return json.dumps(value)  # a list or object where a scalar belongs: unparseable text


def _text_frame(records: list[dict[str, Any]], fields: tuple[str, ...]) -> pd.DataFrame:
    columns = {
        field: pd.array([_cell(rec.get(field)) for rec in records], dtype="string")
        for field in fields
    }
    return pd.DataFrame(columns, index=pd.RangeIndex(len(records)))


def read_deribit_api(path: Path) -> pd.DataFrame:
    """Read one Deribit API bundle (book summary joined to instruments) into quote rows.

    Parameters
    ----------
    path : Path
        A bundle file as written by :func:`volguard.data.fetch.fetch_deribit_chain`.

    Returns
    -------
    DataFrame
        The quarantine columns, one row per book-summary record: premiums in USD per 1 coin
        (``coin * underlying_price`` for inverse options, unchanged for USDC-linear ones), vols as
        decimals, ``ts`` the bundle's snapshot time, ``reason`` the row's first problem.

    Raises
    ------
    DataFileError
        See :func:`read_bundle`.
    """
    bundle = read_bundle(path)
    book = _result_list(path, bundle, BOOK_KEY)
    instruments: dict[str, dict[str, Any]] = {}
    for inst in _result_list(path, bundle, INSTRUMENTS_KEY):
        if isinstance(inst, dict) and isinstance(inst.get("instrument_name"), str):
            instruments.setdefault(inst["instrument_name"], inst)

    is_record = np.array([isinstance(rec, dict) for rec in book], dtype=bool)
    records = [rec for rec in book if isinstance(rec, dict)]
    source_row = np.flatnonzero(is_record).astype(np.int64) + 1
    malformed = pd.DataFrame({"source_row": np.flatnonzero(~is_record).astype(np.int64) + 1})

    text = _text_frame(records, _BOOK_FIELDS)
    names = [rec.get("instrument_name") for rec in records]
    joined = [instruments.get(name) if isinstance(name, str) else None for name in names]
    inst_text = _text_frame(
        [_from_name(n) if j is None else j for n, j in zip(names, joined, strict=True)],
        _INSTRUMENT_FIELDS,
    )

    reasons = RowReasons(len(text))
    missing_required(text, ("instrument_name",), reasons)
    reasons.mark(np.array([j is None for j in joined], dtype=bool), "missing:instrument")
    missing_required(inst_text, ("strike", "option_type", "expiration_timestamp"), reasons)
    ts = pd.Series(_snapshot_time(path, bundle), index=text.index, dtype="datetime64[ns, UTC]")
    expiry = parse_utc(inst_text, "expiration_timestamp", reasons, unit="ms")
    strike = parse_float(inst_text, "strike", reasons)
    is_call = parse_choice(inst_text, "option_type", {"call": True, "put": False}, reasons)
    numbers = {
        col: parse_float(text, col, reasons)
        for col in (
            "underlying_price",
            "estimated_delivery_price",
            "bid_price",
            "ask_price",
            "mark_price",
            "mark_iv",
            "bid_iv",
            "ask_iv",
            "open_interest",
            "volume",
        )
    }
    base = inst_text["base_currency"].fillna(text["base_currency"]).str.upper()
    quote = text["quote_currency"].str.upper()
    settlement = _settlement(base, quote, text["instrument_name"], reasons)
    forward = numbers["underlying_price"]
    return assemble(
        {
            "ts": ts,
            "venue": "deribit",
            "underlying": base,
            "instrument": text["instrument_name"],
            "expiry": expiry,
            "strike": strike,
            "is_call": is_call,
            "settlement": settlement,
            "forward": forward,
            "index_price": numbers["estimated_delivery_price"],
            "bid": premium_to_usd(no_quote_to_nan(numbers["bid_price"]), forward, settlement),
            "ask": premium_to_usd(no_quote_to_nan(numbers["ask_price"]), forward, settlement),
            "mark": premium_to_usd(numbers["mark_price"], forward, settlement),
            "bid_iv": percent_to_decimal(numbers["bid_iv"]),
            "ask_iv": percent_to_decimal(numbers["ask_iv"]),
            "mark_iv": percent_to_decimal(numbers["mark_iv"]),
            "open_interest": numbers["open_interest"],
            "volume": numbers["volume"],
        },
        reasons,
        source=path.name,
        source_row=source_row,
        malformed=malformed,
    )


def _from_name(name: object) -> dict[str, Any]:
    """Instrument fields parsed from a Deribit name, for a record with no instrument entry."""
    if not isinstance(name, str):
        return {}
    try:
        inst = parse_deribit_instrument(name)
    except ValueError:
        return {}
    return {
        "strike": inst.strike,
        "option_type": "call" if inst.is_call else "put",
        "expiration_timestamp": int(inst.expiry.value // 1_000_000),
        "base_currency": inst.underlying,
    }


def _settlement(
    base: pd.Series, quote: pd.Series, name: pd.Series, reasons: RowReasons
) -> np.ndarray:
    """``inverse`` where the premium is in the coin, ``linear`` where it is in USD(C)."""
    linear_name = name.str.split("-", n=1).str[0].str.contains("_", regex=False).fillna(False)
    known_quote = quote.notna()
    is_linear = np.where(
        known_quote.to_numpy(dtype=bool),
        quote.isin(_LINEAR_QUOTES).fillna(False).to_numpy(dtype=bool),
        linear_name.to_numpy(dtype=bool),
    )
    inverse = (quote == base).fillna(False).to_numpy(dtype=bool)
    reasons.mark(
        known_quote.to_numpy(dtype=bool) & ~is_linear & ~inverse, "unparseable:quote_currency"
    )
    return np.where(is_linear, "linear", "inverse")
