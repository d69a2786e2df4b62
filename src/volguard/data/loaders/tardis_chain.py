"""``tardis``: Tardis.dev's native Deribit ``options_chain`` CSV (downloadable datasets).

One row per option ticker update, as Tardis documents the dataset (``.csv`` or ``.csv.gz``):

``exchange, symbol, timestamp, local_timestamp, type, strike_price, expiration, open_interest,
last_price, bid_price, bid_amount, bid_iv, ask_price, ask_amount, ask_iv, mark_price, mark_iv,
underlying_index, underlying_price, delta, gamma, vega, theta, rho``

Units for Deribit: ``timestamp`` (exchange time, used as ``ts``), ``local_timestamp`` (arrival
time, not kept) and ``expiration`` in microseconds since the epoch (UTC); ``type`` ``call``/``put``;
``strike_price`` USD; prices in coin per 1 coin for inverse options (``BTC-...``) and in USDC
for linear ones (``BTC_USDC-...``); ``*_amount`` in contracts; IVs in percent;
``underlying_price`` USD, the expiry's future or synthetic forward (F). An empty cell means
Tardis has no value (no bid, no ask); a zero bid or ask price is also read as "no quote".
Only ``exchange == deribit`` rows are understood; other venues get ``unparseable:exchange``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from volguard.data.loaders._common import (
    RowReasons,
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
    settlement_from_symbol,
    underlying_from_symbol,
)
from volguard.market.contracts import premium_to_usd

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
    ts = parse_utc(text, "timestamp", reasons, unit="us")
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
