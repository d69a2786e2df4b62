"""State features of a snapshot (``volguard.models.learned.features``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from tests.models._learned import calm_btc
from volguard.market import MarketSnapshot
from volguard.market.history import with_realized_vol
from volguard.models import make_engine
from volguard.models.learned import (
    DEFAULT_FEATURES,
    FEATURES,
    state_features,
    train_gbm,
    training_rows,
)
from volguard.models.quotes import FitQuotes, fit_quotes
from volguard.sim import preset, simulate


def _quotes(days: list[float], atm: list[float], skew: float = -0.5) -> FitQuotes:
    """Five strikes per expiry on k = -0.1..0.1, vol = atm + skew k, half-spread 0.01."""
    k = np.tile(np.linspace(-0.1, 0.1, 5), len(days))
    idx = np.repeat(np.arange(len(days)), 5)
    t = np.asarray(days)[idx] / 365
    vol = np.asarray(atm)[idx] + skew * k
    one = np.ones(k.size)
    expiries = pd.DatetimeIndex([pd.Timestamp("2026-01-01", tz="UTC")] * len(days))
    return FitQuotes(k, t, idx, expiries, one, vol, vol - 0.01, vol + 0.01, 0.01 * one, one)


def test_interpolates_atm_total_variance_between_expiries() -> None:
    q = _quotes([10.0, 60.0], [0.8, 0.5])
    theta = np.interp(30 / 365, [10 / 365, 60 / 365], [0.64 * 10 / 365, 0.25 * 60 / 365])
    f = state_features(q)
    assert list(f) == list(FEATURES)
    assert f["atm_vol_30d"] == pytest.approx(np.sqrt(theta * 365 / 30), rel=1e-12)
    assert f["atm_skew_30d"] == pytest.approx(-0.5, rel=1e-9)
    # 90 days is after the last expiry (60d vol held), 7 days before the first (10d vol held)
    assert f["term_slope"] == pytest.approx(0.5 - 0.8, rel=1e-12)
    assert f["half_spread_vol"] == pytest.approx(0.01)
    assert f["put_share"] == pytest.approx(0.4)  # 2 of the 5 strikes per expiry have k < 0


def test_one_expiry_and_one_quote_stay_finite() -> None:
    one_expiry = state_features(_quotes([20.0], [0.6]))
    assert one_expiry["term_slope"] == 0.0 and one_expiry["atm_vol_30d"] == pytest.approx(0.6)
    q = _quotes([20.0], [0.6])
    single = FitQuotes(
        *(getattr(q, f)[:1] for f in ("k", "t", "expiry_index")),
        q.expiries,
        *(
            getattr(q, f)[:1]
            for f in ("forward", "mid_iv", "bid_iv", "ask_iv", "half_spread", "weight")
        ),
    )
    f = state_features(single)
    assert f["atm_skew_30d"] == 0.0 and all(np.isfinite(f[name]) for name in DEFAULT_FEATURES)


def test_a_thin_simulated_snapshot_has_finite_features() -> None:
    scenario = replace(preset("calm-2026-01"), script=(("calm", 2.0),))
    snap = next(iter(simulate(scenario, days=0.5, freq="12h", seed=3).snapshots("BTC")))
    quotes = snap.quotes
    thin = MarketSnapshot.from_quotes(quotes[quotes["expiry"] == quotes["expiry"].min()])
    f = state_features(fit_quotes(thin), required=DEFAULT_FEATURES)
    assert f["term_slope"] == 0.0
    full = state_features(fit_quotes(snap), required=(*DEFAULT_FEATURES, "basis_annual"))
    assert full["atm_vol_30d"] > 0


def test_empty_quotes_are_refused() -> None:
    q = _quotes([20.0], [0.6])
    empty = replace(q, k=q.k[:0], t=q.t[:0], mid_iv=q.mid_iv[:0])
    with pytest.raises(ValueError, match="at least one fit quote"):
        state_features(empty)


def test_basis_is_the_median_annualised_log_basis_beyond_a_week() -> None:
    q = _quotes([3.0, 30.0, 60.0, 90.0], [0.6, 0.6, 0.6, 0.6])
    t = q.t
    rate = np.select([t < 7 / 365, t < 50 / 365], [0.50, 0.05], 0.08)  # the 3-day one is noise
    with_index = replace(q, forward=100.0 * np.exp(rate * t), index_price=100.0)
    assert state_features(with_index)["basis_annual"] == pytest.approx(0.08, rel=1e-9)
    assert state_features(q)["basis_annual"] == 0.0  # no index price: no basis information


def test_realized_vol_rides_with_the_snapshot_and_is_refused_when_missing() -> None:
    snaps = list(calm_btc(1.5))
    bare = fit_quotes(snaps[1])
    assert np.isnan(state_features(bare)["realized_vol_7d"])
    with pytest.raises(ValueError, match=r"\['realized_vol_7d'\] are not known.*with_realized_vol"):
        state_features(bare, required=FEATURES)
    attached = with_realized_vol(snaps)[1]
    rv = float(attached.quotes["realized_vol_7d"].iloc[0])
    assert state_features(fit_quotes(attached), FEATURES)["realized_vol_7d"] == rv > 0


def test_a_learned_engine_trained_on_realized_vol_needs_it_at_fit() -> None:
    snaps = with_realized_vol(list(calm_btc(3.0)))
    used = ("atm_vol_30d", "realized_vol_7d")
    # the first snapshot has no realised vol yet: training leaves it out
    rows = training_rows(snaps[:-1], features=used)
    assert np.unique(rows.snapshot).size == len(snaps) - 2
    model = train_gbm(snaps[:-1], features=used, seed=0)
    make_engine("gbm", model=model).fit(snaps[-1])
    bare = MarketSnapshot.from_quotes(snaps[-1].quotes.drop(columns="realized_vol_7d"))
    with pytest.raises(ValueError, match="realized_vol_7d"):
        make_engine("gbm", model=model).fit(bare)
