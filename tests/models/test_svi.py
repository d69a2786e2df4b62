"""Raw SVI: the fit recovers known parameters, sits inside the spread on real data, and its
sticky-moneyness delta is the Black delta plus the smile term."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.models.conftest import TRUE_SVI, synthetic_snapshot
from volguard.kernels.api import black76_price
from volguard.market import MarketSnapshot
from volguard.models import make_engine
from volguard.models.parametric.svi import SVI, fit_svi_slice, svi_raw


def test_noise_free_slice_recovers_the_parameters() -> None:
    k = np.linspace(-0.6, 0.5, 30)
    t = 0.25
    vol = np.sqrt(svi_raw(k, **TRUE_SVI) / t)
    params, converged = fit_svi_slice(k, t, vol, np.ones_like(k))
    assert converged
    for key, value in TRUE_SVI.items():
        assert params[key] == pytest.approx(value, abs=1e-6), key


def test_noisy_fit_is_close_to_the_truth() -> None:
    engine = SVI(weighting="none").fit(synthetic_snapshot(noise_vol=0.005, seed=3))
    result = engine.result_
    assert result.converged and result.fallback is None
    assert 0.3 < result.rmse_vol_pts < 0.7  # the 0.5 vol-pt noise, not more
    k = np.linspace(-0.6, 0.5, 23)
    truth = np.sqrt(svi_raw(k, **TRUE_SVI) / 0.25)
    assert np.max(np.abs(engine.implied_vol(k, 0.25) - truth)) < 0.004


def test_crash_chain_fit_quality(crash_snapshot: MarketSnapshot) -> None:
    result = make_engine("svi").fit(crash_snapshot).result_
    # measured on this snapshot: 0.93 vol pts, 91 % of fitted mids inside the spread
    assert result.rmse_vol_pts < 1.5 and result.inside_spread_pct > 85
    assert result.arbitrage.butterfly_count == 0


def test_thin_slices_fall_back_flat(synthetic: MarketSnapshot) -> None:
    quotes = synthetic.quotes
    thin = quotes[(quotes["expiry"] == quotes["expiry"].max()) | (quotes.index % 10 == 0)]
    engine = SVI().fit(MarketSnapshot.from_quotes(thin))
    assert engine.result_.fallback is not None and "fitted flat" in engine.result_.warnings[0]
    assert np.all(np.isfinite(engine.implied_vol(np.linspace(-1, 1, 5), 0.25)))


def test_sticky_moneyness_delta_is_the_total_derivative(synthetic: MarketSnapshot) -> None:
    engine = SVI().fit(synthetic)
    forward = float(synthetic.forwards.iloc[0])
    strikes = np.array([0.8 * forward, 1.2 * forward])
    is_call = np.array([False, True])
    contracts = pd.DataFrame(
        {"expiry": [synthetic.expiries[0]] * 2, "strike": strikes, "is_call": is_call}
    )
    t = (synthetic.expiries[0] - synthetic.ts).total_seconds() / (365 * 86400)
    sticky_strike = engine.greeks(contracts, synthetic)
    sticky_k = engine.greeks(contracts, synthetic, delta="sticky-moneyness")

    def price(f: float, keep_k: bool) -> np.ndarray:
        vol = engine.implied_vol(np.log(strikes / (f if keep_k else forward)), t)
        return black76_price(f, strikes, t, vol, is_call)

    h = 1e-4 * forward
    for greeks, keep_k in ((sticky_strike, False), (sticky_k, True)):
        fd = (price(forward + h, keep_k) - price(forward - h, keep_k)) / (2 * h)
        np.testing.assert_allclose(greeks["delta"], fd, rtol=1e-6)
    assert not np.allclose(sticky_k["delta"], sticky_strike["delta"])  # the smile matters
