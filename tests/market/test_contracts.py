"""Instrument names, coin/USD conversions and year fractions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from volguard.market import (
    coin_to_usd,
    parse_deribit_instrument,
    premium_to_usd,
    usd_to_coin,
    year_fraction,
)


@pytest.mark.parametrize(
    ("name", "underlying", "expiry", "strike", "is_call", "settlement"),
    [
        ("BTC-25SEP26-120000-P", "BTC", "2026-09-25 08:00", 120_000.0, False, "inverse"),
        ("ETH-1JAN22-3800-C", "ETH", "2022-01-01 08:00", 3_800.0, True, "inverse"),
        ("BTC_USDC-30JAN26-95000-C", "BTC", "2026-01-30 08:00", 95_000.0, True, "linear"),
        ("XRP_USDC-30JAN26-2d5-P", "XRP", "2026-01-30 08:00", 2.5, False, "linear"),
    ],
)
def test_parse_deribit_names(
    name: str, underlying: str, expiry: str, strike: float, is_call: bool, settlement: str
) -> None:
    inst = parse_deribit_instrument(name)
    assert (inst.underlying, inst.strike, inst.is_call, inst.settlement) == (
        underlying,
        strike,
        is_call,
        settlement,
    )
    assert inst.expiry == pd.Timestamp(expiry, tz="UTC")


@pytest.mark.parametrize("bad", ["BTC-PERPETUAL", "BTC-31XYZ26-100-C", "BTC-25SEP26-100-X", ""])
def test_bad_names_say_what_was_expected(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a Deribit option name like"):
        parse_deribit_instrument(bad)


@given(
    coin=st.floats(0, 10, allow_nan=False),
    forward=st.floats(1, 1e6, allow_nan=False),
)
def test_coin_usd_round_trip(coin: float, forward: float) -> None:
    assert usd_to_coin(coin_to_usd(coin, forward), forward) == pytest.approx(
        coin, rel=1e-15, abs=1e-300
    )


def test_premium_to_usd_converts_inverse_rows_only() -> None:
    got = premium_to_usd([0.05, 120.0], [90_000.0, 90_000.0], ["inverse", "linear"])
    np.testing.assert_array_equal(got, [4_500.0, 120.0])


def test_year_fraction_is_act_365() -> None:
    start = pd.Timestamp("2024-01-01", tz="UTC").value  # 2024 is a leap year: 366 days
    end = pd.Timestamp("2025-01-01", tz="UTC").value
    assert float(year_fraction(start, end)) == pytest.approx(366 / 365, rel=1e-15)
    one_hour = pd.Timedelta(hours=1).value
    np.testing.assert_allclose(
        year_fraction([0, 0], [one_hour, 2 * one_hour]), [1 / 8760, 2 / 8760], rtol=1e-15
    )
