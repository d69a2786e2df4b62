"""Trades scored against the served engine between snapshots."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.guard.conftest import synthetic_snapshot
from volguard.data.events import Trade
from volguard.guard.runtime import Guard, GuardSettings
from volguard.market.snapshot import MarketSnapshot
from volguard.models import make_engine

DAY0 = pd.Timestamp("2026-01-01 08:00", tz="UTC")  # Deribit expiries are at 08:00 UTC


def test_trades_are_scored_summarised_and_bad_ones_counted() -> None:
    rng = np.random.default_rng(0)
    guard = Guard(make_engine("ssvi"), make_engine("black76-flat"), GuardSettings(warmup=2))
    for day in range(4):
        snap = synthetic_snapshot(DAY0 + pd.Timedelta(days=day), 0.45, -0.1, rng, noise=0.0)
        guard.update(MarketSnapshot.from_quotes(snap))
    ctx = guard.context
    assert ctx is not None
    expiry = DAY0 + pd.Timedelta(days=3 + 45)  # the 45-day expiry of the last snapshot
    name = f"BTC-{expiry.day}{expiry.strftime('%b').upper()}{expiry:%y}-90000-C"  # k = 0
    ts = ctx.ts + pd.Timedelta(hours=1)
    for iv in (0.50, 0.51, 0.49):  # the surface has 0.45 at the money: the engine is ~5 pts low
        guard.update(Trade(ts, "BTC", name, price=4_000.0, size=1.0, iv=iv))
    guard.update(Trade(ts, "BTC", name, price=4_000.0, size=1.0))  # no trade vol
    guard.update(Trade(ts, "BTC", "BTC-PERPETUAL", price=90_000.0, size=1.0, iv=0.5))
    guard.update(Trade(ts, "BTC", "BTC-1JAN30-90000-C", price=1.0, size=1.0, iv=0.5))
    next_snap = synthetic_snapshot(DAY0 + pd.Timedelta(days=4), 0.45, -0.1, rng, noise=0.0)
    guard.update(MarketSnapshot.from_quotes(next_snap))
    metrics = guard.decision.metrics if guard.decision else {}
    assert metrics["trades"] == 3 and metrics["trades_skipped"] == 3
    assert metrics["trade_bias_vol_pts"] == pytest.approx(-5.0, abs=0.3)
    assert metrics["trade_mae_vol_pts"] == pytest.approx(5.0, abs=0.3)
    summary = guard.trade_monitor.summary
    assert summary.loc[("30-90d", "atm"), "quotes"] == 3
    assert math.isnan(summary.loc[("30-90d", "atm"), "ewma_hs"])
    # the next snapshot starts a fresh count
    guard.update(
        MarketSnapshot.from_quotes(next_snap.assign(ts=next_snap["ts"] + pd.Timedelta(days=1)))
    )
    assert guard.decision is not None and guard.decision.metrics["trades"] == 0


@pytest.mark.parametrize(("trade_iv", "alarm"), [(0.50, True), (0.452, False)])
def test_trades_far_from_the_engine_raise_an_alarm(trade_iv: float, alarm: bool) -> None:
    rng = np.random.default_rng(1)
    guard = Guard(make_engine("ssvi"), make_engine("black76-flat"), GuardSettings(warmup=2))
    snaps = [
        synthetic_snapshot(DAY0 + pd.Timedelta(days=day), 0.45, -0.1, rng, noise=0.0)
        for day in range(5)
    ]
    for snap in snaps[:4]:
        guard.update(MarketSnapshot.from_quotes(snap))
    assert guard.state.name == "NORMAL" and guard.decision is not None
    assert guard.decision.reason != "warmup"
    expiry = DAY0 + pd.Timedelta(days=3 + 45)
    name = f"BTC-{expiry.day}{expiry.strftime('%b').upper()}{expiry:%y}-90000-C"  # k = 0
    ts = DAY0 + pd.Timedelta(days=3, hours=1)
    for _ in range(3):  # min_trades; 5 vol points is about 8 half-spreads of 0.6 points
        guard.update(Trade(ts, "BTC", name, price=4_000.0, size=1.0, iv=trade_iv))
    guard.update(MarketSnapshot.from_quotes(snaps[4]))
    d = guard.decision
    assert d is not None and d.metrics["trade_alarm"] is alarm
    assert (d.state, d.reason) == (("WATCH", "trade_error") if alarm else ("NORMAL", "calm"))
    if alarm:
        assert d.metrics["trade_mae_half_spreads"] >= GuardSettings().trade_alarm_half_spreads
    with pytest.raises(ValueError, match="min_trades must be >= 1"):
        GuardSettings(min_trades=0)
