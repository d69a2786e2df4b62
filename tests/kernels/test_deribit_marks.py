"""Inverse options against real Deribit marks (``deribit-svcj-snapshots``).

Deribit's ``mark_price`` (coin per coin) is Black-76 on ``underlying`` (the expiry's forward F)
with its ``mark_iv``, divided by F, with no discounting. The files carry the collector's start
time, a little before each ticker call, so agreement is to about 4e-5 coin on calm days (not to
rounding), and worse in fast markets (deep in-the-money marks near expiry on crash days move
by 1e-4 to 1e-3 coin while the collector runs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from volguard.kernels.api import black76_coin_price, black76_greeks, implied_vol
from volguard.market.clock import SECONDS_PER_YEAR
from volguard.market.contracts import coin_to_usd

pytestmark = pytest.mark.realdata


def _load(files: list[Path]) -> pd.DataFrame:
    frame = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    ts = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    expiry = pd.to_datetime(frame["expiry_datetime"], utc=True, format="ISO8601")
    frame["t"] = (expiry - ts).dt.total_seconds() / SECONDS_PER_YEAR
    frame["is_call"] = frame["option_type"] == "call"
    keep = (frame["t"] > 0) & frame["mark_price"].notna() & frame["implied_volatility"].gt(0)
    return frame[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def marks(snapshot_files: list[Path]) -> pd.DataFrame:
    picks = [snapshot_files[i] for i in np.linspace(0, len(snapshot_files) - 1, 6).astype(int)]
    return _load(picks)


def test_mark_price_is_black76_over_forward(marks: pd.DataFrame) -> None:
    coin = black76_coin_price(
        marks["underlying"].to_numpy(),
        marks["strike"].to_numpy(),
        marks["t"].to_numpy(),
        marks["implied_volatility"].to_numpy(),
        marks["is_call"].to_numpy(),
    )
    err = np.abs(coin - marks["mark_price"].to_numpy())
    assert len(err) > 3000
    assert np.median(err) < 2e-5
    assert np.quantile(err, 0.99) < 1e-3


def test_mark_price_on_a_calm_snapshot(snapshot_files: list[Path]) -> None:
    calm = _load([snapshot_files[0]])  # 2025-12-30, quiet market
    coin = black76_coin_price(
        calm["underlying"].to_numpy(),
        calm["strike"].to_numpy(),
        calm["t"].to_numpy(),
        calm["implied_volatility"].to_numpy(),
        calm["is_call"].to_numpy(),
    )
    err = np.abs(coin - calm["mark_price"].to_numpy())
    assert np.quantile(err, 0.95) < 4e-5
    assert err.max() < 1e-4


def test_mark_iv_recovered_from_coin_mark(marks: pd.DataFrame) -> None:
    usd = coin_to_usd(marks["mark_price"].to_numpy(), marks["underlying"].to_numpy())
    vol, status = implied_vol(
        usd,
        marks["underlying"].to_numpy(),
        marks["strike"].to_numpy(),
        marks["t"].to_numpy(),
        marks["is_call"].to_numpy(),
        return_status=True,
    )
    ok = status == 0
    # the rest: marks a little below intrinsic (stale forward in fast markets) or flat
    assert ok.mean() > 0.9
    # marks are rounded to 1e-8 coin: compare where vega makes that invisible
    vega = (
        black76_greeks(
            marks["underlying"].to_numpy(),
            marks["strike"].to_numpy(),
            marks["t"].to_numpy(),
            marks["implied_volatility"].to_numpy(),
            marks["is_call"].to_numpy(),
        )["vega"]
        / marks["underlying"].to_numpy()
    )
    sharp = ok & (vega > 1e-3)
    diff = np.abs(vol[sharp] - marks["implied_volatility"].to_numpy()[sharp])
    assert np.median(diff) < 1e-3


def test_deribit_delta_is_the_plain_black_delta(marks: pd.DataFrame) -> None:
    g = black76_greeks(
        marks["underlying"].to_numpy(),
        marks["strike"].to_numpy(),
        marks["t"].to_numpy(),
        marks["implied_volatility"].to_numpy(),
        marks["is_call"].to_numpy(),
    )
    has = marks["delta"].notna().to_numpy()
    diff = np.abs(g["delta"][has] - marks["delta"].to_numpy()[has])
    # Deribit's ticker delta is dV/dF (not premium-adjusted), to its 5 printed decimals
    assert np.median(diff) < 5e-4
    # and its vega is USD per vol point: ours / 100
    vdiff = np.abs(g["vega"][has] / 100 - marks["vega"].to_numpy()[has])
    assert np.median(vdiff) < 0.05
