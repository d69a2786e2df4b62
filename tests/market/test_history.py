"""Realised vol of the index history, attached to snapshots without look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.models._learned import calm_btc
from volguard.market import MarketSnapshot
from volguard.market.history import REALIZED_VOL, realized_vol, with_realized_vol


def test_a_constant_return_gives_its_annualised_size_whatever_the_spacing() -> None:
    daily = pd.date_range("2026-01-01", periods=10, freq="D", tz="UTC")
    six_hourly = pd.date_range("2026-01-01", periods=40, freq="6h", tz="UTC")
    up_down = np.cumsum(np.where(np.arange(10) % 2, 0.02, -0.02))
    rv_daily = realized_vol(pd.Series(100 * np.exp(up_down), index=daily))
    # the same variance per day, spread over four 6-hour returns of half the size
    quarter = np.cumsum(np.where(np.arange(40) % 2, 0.01, -0.01))
    rv_6h = realized_vol(pd.Series(100 * np.exp(quarter), index=six_hourly))
    assert np.isnan(rv_daily.iloc[0]) and np.isnan(rv_6h.iloc[0])
    np.testing.assert_allclose(rv_daily.iloc[1:], 0.02 * np.sqrt(365), rtol=1e-12)
    np.testing.assert_allclose(rv_6h.iloc[1:], 0.02 * np.sqrt(365), rtol=1e-12)


def test_the_window_forgets_returns_older_than_it() -> None:
    ts = pd.date_range("2026-01-01", periods=20, freq="D", tz="UTC")
    log_price = np.r_[0.0, 0.1, np.full(18, 0.1)]  # one 10 % move on day 1, then flat
    rv = realized_vol(pd.Series(100 * np.exp(log_price), index=ts), "7D")
    assert rv.iloc[1] > 1.0 and rv.iloc[7] > 0  # the move is inside the trailing week
    assert rv.iloc[8] == 0.0  # ... and out of it a week later


def test_attached_values_use_only_earlier_snapshots_and_keep_order() -> None:
    snaps = list(calm_btc(3.0))
    attached = with_realized_vol(snaps[::-1])[::-1]  # any order in, same order out
    values = [float(s.quotes[REALIZED_VOL].iloc[0]) for s in attached]
    assert np.isnan(values[0]) and np.all(np.isfinite(values[1:]))
    assert all(s.quotes[REALIZED_VOL].nunique() == 1 for s in attached[1:])
    # changing the last snapshot's index leaves every earlier value unchanged
    last = snaps[-1].quotes.assign(index_price=snaps[-1].quotes["index_price"] * 1.2)
    altered = with_realized_vol([*snaps[:-1], MarketSnapshot.from_quotes(last)])
    again = [float(s.quotes[REALIZED_VOL].iloc[0]) for s in altered]
    np.testing.assert_array_equal(again[1:-1], values[1:-1])
    assert again[-1] != pytest.approx(values[-1])
