"""Builders of small quote tables for the data-layer tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from volguard.data.schema import QUARANTINE_COLUMNS, conform

TS = pd.Timestamp("2026-01-15 09:00", tz="UTC")
EXPIRY = pd.Timestamp("2026-02-27 08:00", tz="UTC")


def rows(*overrides: dict[str, Any]) -> pd.DataFrame:
    """One loader-output row per dict: a sane BTC inverse call (F 95k, K 100k) unless overridden."""
    base: dict[str, Any] = {
        "ts": TS,
        "venue": "deribit",
        "underlying": "BTC",
        "expiry": EXPIRY,
        "t": (EXPIRY - TS).total_seconds() / (365 * 86400),
        "strike": 100_000.0,
        "is_call": True,
        "settlement": "inverse",
        "forward": 95_000.0,
        "index_price": 94_900.0,
        "bid": 2_000.0,
        "ask": 2_100.0,
        "mark": 2_050.0,
        "mark_iv": 0.45,
        "open_interest": 10.0,
        "volume": 1.0,
        "source": "test.csv",
        "reason": None,
    }
    records = []
    for i, override in enumerate(overrides):
        record = {**base, "instrument": f"BTC-27FEB26-{100000 + i}-C", "source_row": i + 2}
        record.update(override)
        records.append(record)
    return conform(pd.DataFrame(records), QUARANTINE_COLUMNS)


@pytest.fixture
def make_rows() -> Callable[..., pd.DataFrame]:
    return rows
