"""``deribit-snapshot``: the flattened Deribit book-summary CSV of ``deribit-svcj-snapshots``.

One file = every listed BTC and ETH option at one collector run; premiums in coin (inverse
options), ``underlying`` is the expiry's future or synthetic forward (F), ``implied_volatility``
is the mark IV as a decimal. ``time_to_maturity`` (365.25-day years) is ignored: volguard
recomputes ``t`` as ACT/365 from ``timestamp`` and ``expiry_datetime``.
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
from volguard.market.contracts import premium_to_usd

REQUIRED = (
    "timestamp",
    "instrument_name",
    "underlying",
    "option_type",
    "strike",
    "expiry_datetime",
    "bid_price",
    "ask_price",
    "mark_price",
    "implied_volatility",
    "open_interest",
    "volume",
    "currency",
)


def read_deribit_snapshot(path: Path) -> pd.DataFrame:
    """Read one snapshot file into quote rows (USD premiums) with a ``reason`` per bad row."""
    text, malformed = read_csv_text(path, REQUIRED)
    reasons = RowReasons(len(text))
    missing_required(text, ("timestamp", "instrument_name", "currency", "option_type"), reasons)
    ts = parse_utc(text, "timestamp", reasons)
    expiry = parse_utc(text, "expiry_datetime", reasons)
    strike = parse_float(text, "strike", reasons)
    is_call = parse_choice(text, "option_type", {"call": True, "put": False}, reasons)
    forward = parse_float(text, "underlying", reasons)
    numbers = {
        col: parse_float(text, col, reasons)
        for col in (
            "bid_price",
            "ask_price",
            "mark_price",
            "implied_volatility",
            "open_interest",
            "volume",
        )
    }
    index_price = (
        parse_float(text, "index_price", reasons)
        if "index_price" in text
        else np.full(len(text), np.nan)
    )
    instrument = text["instrument_name"]
    settlement = np.where(
        instrument.str.contains("_USDC-", regex=False).fillna(False), "linear", "inverse"
    )
    return assemble(
        {
            "ts": ts,
            "venue": "deribit",
            "underlying": text["currency"].str.upper(),
            "instrument": instrument,
            "expiry": expiry,
            "strike": strike,
            "is_call": is_call,
            "settlement": settlement,
            "forward": forward,
            "index_price": index_price,
            "bid": premium_to_usd(numbers["bid_price"], forward, settlement),
            "ask": premium_to_usd(numbers["ask_price"], forward, settlement),
            "mark": premium_to_usd(numbers["mark_price"], forward, settlement),
            "mark_iv": numbers["implied_volatility"],
            "open_interest": numbers["open_interest"],
            "volume": numbers["volume"],
        },
        reasons,
        source=path.name,
        source_row=text["source_row"],
        malformed=malformed,
    )
