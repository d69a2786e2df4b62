"""The quote schema: the one table every later stage of volguard reads.

One row per option quote. Prices are USD per one unit of underlying (inverse premiums are
converted at load time by :func:`volguard.market.premium_to_usd`); vols are decimals; ``t`` is
ACT/365 years from ``ts`` to ``expiry``. ``docs/data.md`` is this table in prose.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pandas.api.types import pandas_dtype


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    unit: str
    meaning: str


UTC_NS = "datetime64[ns, UTC]"

QUOTE_COLUMNS: tuple[Column, ...] = (
    Column("ts", UTC_NS, "UTC, ns", "exchange timestamp of the quote (snapshot time)"),
    Column("venue", "string", "", "exchange, e.g. deribit"),
    Column("underlying", "string", "", "BTC, ETH, ..."),
    Column("instrument", "string", "", "venue instrument name, e.g. BTC-25SEP26-120000-P"),
    Column("expiry", UTC_NS, "UTC, ns", "expiry instant (Deribit: 08:00 UTC)"),
    Column("t", "float64", "years, ACT/365", "time from ts to expiry"),
    Column("strike", "float64", "USD", "strike price"),
    Column("is_call", "boolean", "", "True for calls, False for puts"),
    Column("settlement", "string", "", "inverse (coin premium) or linear (USD premium)"),
    Column("forward", "float64", "USD", "the expiry's future or synthetic forward (F in Black-76)"),
    Column("index_price", "float64", "USD", "spot index at ts, where the venue gives it"),
    Column("bid", "float64", "USD per 1 underlying", "best bid premium; NaN = no bid"),
    Column("ask", "float64", "USD per 1 underlying", "best ask premium; NaN = no ask"),
    Column("mark", "float64", "USD per 1 underlying", "venue mark premium"),
    Column("bid_iv", "float64", "decimal", "venue implied vol of the bid"),
    Column("ask_iv", "float64", "decimal", "venue implied vol of the ask"),
    Column("mark_iv", "float64", "decimal", "venue implied vol of the mark"),
    Column("bid_size", "float64", "contracts", "size at the best bid"),
    Column("ask_size", "float64", "contracts", "size at the best ask"),
    Column("open_interest", "float64", "contracts", "open interest"),
    Column("volume", "float64", "contracts", "traded volume (venue window, Deribit 24 h)"),
    Column("source", "string", "", "file name or stream id the row came from"),
    Column("source_row", "int64", "line", "1-based line of the row in its source (header = 1)"),
    Column("flags", "string", "", "comma-separated quality flags (not errors), see FLAGS"),
)

QUARANTINE_COLUMNS: tuple[Column, ...] = (
    *QUOTE_COLUMNS,
    Column("reason", "string", "", "why the row was quarantined (see REASONS)"),
)

QUOTE_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in QUOTE_COLUMNS)

REASONS: dict[str, str] = {
    "malformed_row": "the line has the wrong number of fields",
    "unparseable:<field>": "a field could not be parsed as its type",
    "missing:<field>": "a required field is empty",
    "non_finite": "a number is infinite",
    "missing_forward": "no positive forward for the expiry",
    "expired": "the quote time is at or after expiry",
    "non_positive": "strike <= 0, or a negative premium or size",
    "crossed": "bid above ask (in price or in implied vol)",
    "below_intrinsic": "ask below intrinsic value by more than one tick (an arbitrage)",
    "above_upper_bound": "bid above the upper bound (F for calls, K for puts) by more than a tick",
    "duplicate": "same underlying, ts and instrument as a later row of the batch or a stored row",
}
"""Quarantine reason codes; ``<field>`` is replaced by the column name."""

FLAGS: dict[str, str] = {
    "no_bid": "no bid price or bid IV (one-sided quote)",
    "no_ask": "no ask price or ask IV (one-sided quote)",
    "mark_below_intrinsic": "the venue mark is below intrinsic by more than a tick",
    "mark_above_upper_bound": "the venue mark is above the upper bound by more than a tick",
}
"""Quality flags of clean rows; a row can carry several, comma-separated."""

REQUIRED = ("ts", "underlying", "instrument", "expiry", "strike", "is_call", "settlement")
"""Columns without which a row is not a quote (their absence quarantines the row)."""


def conform(frame: pd.DataFrame, columns: tuple[Column, ...] = QUOTE_COLUMNS) -> pd.DataFrame:
    """Return ``frame`` with exactly ``columns``, in order and cast to their dtypes.

    Missing optional columns are added as all-missing. Extra columns are dropped. Naive
    timestamps are taken as UTC.
    """
    out = {}
    for col in columns:
        if col.name in frame.columns and col.dtype == UTC_NS:
            out[col.name] = pd.to_datetime(frame[col.name], utc=True).astype(pandas_dtype(UTC_NS))
        elif col.name in frame.columns:
            out[col.name] = frame[col.name].astype(pandas_dtype(col.dtype))
        else:
            out[col.name] = pd.Series(None, index=frame.index, dtype=pandas_dtype(col.dtype))
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True)
