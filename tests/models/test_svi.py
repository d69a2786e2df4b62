"""Raw SVI: the fit recovers known parameters, sits inside the spread on real data, and its
sticky-moneyness delta is the Black delta plus the smile term; the compiled fit reaches the
optimum of its scipy reference twin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.models.conftest import TRUE_SVI, synthetic_snapshot
from volguard.arbitrage.static import check_static_arbitrage
from volguard.data.hygiene import classify, split
from volguard.data.loaders import read_deribit_snapshot
from volguard.kernels.api import black76_price
from volguard.market import MarketSnapshot
from volguard.models import make_engine
from volguard.models.parametric.svi import (
    G_FLOOR,
    K_MESH,
    NO_CEILING,
    SVI,
    Y_GRID,
    ZERO_FLOOR,
    _inner_reference,
    _slice_setup,
    _vp_objective,
    fit_svi_slice,
    fit_svi_slice_reference,
    svi_density,
    svi_raw,
)
from volguard.models.quotes import fit_quotes

K30 = np.linspace(-0.6, 0.5, 30)


WALLS = np.stack([ZERO_FLOOR, NO_CEILING])


@pytest.mark.parametrize("a", [TRUE_SVI["a"], -0.01])
def test_noise_free_slice_recovers_the_parameters(a: float) -> None:
    """Also with ``a < 0`` (allowed: ``a + b sigma sqrt(1 - rho^2) = 0.0071 > 0``), which the
    former ``a >= 0`` bound could not fit."""
    truth = {**TRUE_SVI, "a": a}
    k = np.linspace(-0.6, 0.5, 30)
    t = 0.25
    vol = np.sqrt(svi_raw(k, **truth) / t)
    params, converged, _ = fit_svi_slice(k, t, vol, np.ones_like(k))
    assert converged and params is not None
    np.testing.assert_allclose(params, list(truth.values()), atol=1e-6)


def test_noisy_fit_is_close_to_the_truth() -> None:
    engine = SVI(weighting="none").fit(synthetic_snapshot(noise_vol=0.005, seed=3))
    result = engine.result_
    assert result.converged and result.fallback is None
    assert 0.3 < result.rmse_vol_pts < 0.7  # the 0.5 vol-pt noise, not more
    k = np.linspace(-0.6, 0.5, 23)
    truth = np.sqrt(svi_raw(k, **TRUE_SVI) / 0.25)
    assert np.max(np.abs(engine.implied_vol(k, 0.25) - truth)) < 0.004


def test_crash_chain_fit_quality(crash_snapshot: MarketSnapshot) -> None:
    engine = make_engine("svi").fit(crash_snapshot)
    result = engine.result_
    # measured on this snapshot with weighting="none": 0.52 vol pts, 93 % inside the spread
    assert result.rmse_vol_pts < 0.7 and result.inside_spread_pct > 88
    assert result.fallback is None
    assert result.arbitrage.butterfly_count == 0 and result.arbitrage.bounds_count == 0
    wide = check_static_arbitrage(engine.total_variance, engine.slice_t_, K_MESH)
    assert wide.butterfly_count == 0 and wide.bounds_count == 0
    for params in engine.slice_params_:  # analytic g on a fine mesh, out to |k| = 3
        assert svi_density(np.linspace(-3, 3, 6001), *params).min() >= 0


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


def _noisy_slice(seed: int) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = 0.25
    vol = np.sqrt(svi_raw(K30, **TRUE_SVI) / t) + 0.005 * rng.standard_normal(K30.size)
    return K30, t, vol, rng.uniform(0.5, 1.5, K30.size)


@pytest.mark.parametrize("seed", range(6))
def test_compiled_inner_solve_matches_slsqp(seed: int) -> None:
    """The exact projection (27 box faces, then the cone's surface) is never worse than scipy
    SLSQP on the same convex problem, and within its tolerance of it."""
    k, t, vol, weight = _noisy_slice(seed)
    target, sw, spec = _slice_setup(k, t, vol, weight, WALLS)
    rng = np.random.default_rng(100 + seed)
    coef = np.empty(3)
    work, free = np.empty(36), np.empty(3, dtype=np.int64)
    for m, sigma in zip(rng.uniform(-1.0, 1.0, 20), np.exp(rng.uniform(-6, 1, 20)), strict=True):
        _, ref = _inner_reference(m, sigma, k, target, sw, spec)
        fast = _vp_objective(m, sigma, k, target, sw, spec, coef, work, free, True)
        assert coef[0] + np.sqrt(coef[1] * coef[2]) >= -1e-12  # w >= 0 everywhere
        assert fast <= ref * (1 + 1e-6) + 1e-14
        quad = _vp_objective(m, sigma, k, target, sw, spec, coef, work, free, False)
        assert quad == pytest.approx(fast, rel=1e-8, abs=1e-14)  # normal-equation form


@pytest.mark.parametrize("seed", range(4))
def test_fast_fit_reaches_the_reference_optimum(seed: int) -> None:
    """scipy SLSQP over the five raw parameters with the constraints written out finds no
    better butterfly-free slice than the compiled fit."""
    k, t, vol, weight = _noisy_slice(seed)
    fast, converged, obj_fast = fit_svi_slice(k, t, vol, weight)
    _, _, obj_ref = fit_svi_slice_reference(k, t, vol, weight)
    assert converged and fast is not None
    assert obj_fast <= obj_ref * (1 + 1e-6)


def test_fit_respects_a_ceiling() -> None:
    """Quotes above the ceiling slice on the left wing (k < -0.4): the fit stays below it (no
    calendar arbitrage)."""
    k, t, vol, weight = _noisy_slice(0)
    ceiling = np.array([0.03, 0.10, -0.3, 0.02, 0.15])
    params, _, _ = fit_svi_slice(k, t, vol, weight, ceiling=ceiling)
    assert params is not None
    grid = np.concatenate([K_MESH, params[3] + params[4] * Y_GRID])
    assert np.all(svi_raw(grid, *params) <= svi_raw(grid, *ceiling))
    assert svi_density(grid, *params).min() >= G_FLOOR


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    t=st.floats(0.02, 2.0),
    a=st.floats(-0.05, 0.1),
    b=st.floats(0.02, 0.9),
    rho=st.floats(-0.95, 0.95),
    m=st.floats(-0.3, 0.3),
    sigma=st.floats(0.03, 0.6),
)
def test_fit_reproduces_any_arbitrage_free_slice(
    t: float, a: float, b: float, rho: float, m: float, sigma: float
) -> None:
    """Noise-free slices from raw SVI parameters free of butterfly arbitrage on the check
    points (and within Lee's bound): the fit reproduces the vols."""
    b = min(b, 1.9 / (1 + abs(rho)))
    points = np.concatenate([K_MESH, m + sigma * Y_GRID])
    assume(a + b * sigma * np.sqrt(1 - rho * rho) > 1e-4)
    assume(svi_density(points, a, b, rho, m, sigma).min() >= G_FLOOR)
    vol = np.sqrt(svi_raw(K30, a, b, rho, m, sigma) / t)
    params, _, _ = fit_svi_slice(K30, t, vol, np.ones_like(K30))
    assert params is not None
    fitted = np.sqrt(svi_raw(K30, *params) / t)
    assert np.max(np.abs(fitted - vol)) < 1e-5  # vol units
    assert svi_density(points, *params).min() >= G_FLOOR
    assert params[1] * (1 + abs(params[2])) <= 2 + 1e-12


@pytest.mark.realdata
def test_fit_is_arbitrage_free_on_a_ragged_real_chain(snapshot_files: list[Path]) -> None:
    """ETH on 2026-02-07 09:24 UTC (34 noisy quotes on its longest slice): every slice is
    fitted, none with butterfly arbitrage."""
    path = next(p for p in snapshot_files if "20260207T092419Z" in p.name)
    clean, _ = split(classify(read_deribit_snapshot(path)))
    engine = SVI().fit(MarketSnapshot.from_quotes(clean[clean["underlying"] == "ETH"]))
    assert engine.result_.arbitrage.butterfly_count == 0
    quotes = fit_quotes(MarketSnapshot.from_quotes(clean[clean["underlying"] == "ETH"]), "none")
    for i in range(len(quotes.expiries)):
        s = quotes.slice(i)
        if len(s) < 5:
            continue
        params, _, _ = fit_svi_slice(s.k, float(np.median(s.t)), s.mid_iv, s.weight)
        assert params is not None, i
