"""Regression tests for the shared parsing helpers."""

from __future__ import annotations

import pandas as pd
import pytest

from volguard.data.loaders._common import RowReasons, parse_utc


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("1748736000000", "s"),  # milliseconds read as seconds: year 57000
        ("9223372036855.0", "ms"),
        ("-9e18", "us"),
        ("9999-12-31", None),
        ("1677-01-01", None),
        ("-7472361600000001.0", "us"),  # 1733: its distance to a 2025 expiry overflows int64 ns
        ("1969-12-31T23:59:59Z", None),
    ],
)
def test_instants_outside_1970_2200_are_unparseable(text: str, unit: str | None) -> None:
    frame = pd.DataFrame({"when": pd.array([text, "1748736000"], dtype="string")})
    if unit is None:
        frame.loc[1, "when"] = "2025-06-01T00:00:00Z"
    reasons = RowReasons(2)
    stamps = parse_utc(frame, "when", reasons, unit=unit)
    assert str(stamps.dtype) == "datetime64[ns, UTC]"
    assert pd.isna(stamps.iloc[0]) and reasons.codes.iloc[0] == "unparseable:when"
    assert pd.isna(reasons.codes.iloc[1])
