"""Static deltas: identities, the smile slope, and a cross-check against an engine's
sticky-moneyness delta."""

from __future__ import annotations

import numpy as np

from volguard.kernels.api import black76_greeks
from volguard.models.greeks import delta_with_beta, smile_slope, sticky_moneyness_delta
from volguard.models.registry import make_engine
from volguard.sim import preset, simulate


def test_zero_beta_is_the_black_delta_and_beta_moves_it_by_vega_over_forward() -> None:
    d = np.array([0.3, -0.6])
    np.testing.assert_array_equal(delta_with_beta(d, [100.0, 200.0], 1e4, 0.0), d)
    np.testing.assert_allclose(
        delta_with_beta(d, [100.0, 200.0], 1e4, 1.0), d + np.array([0.01, 0.02])
    )


def test_smile_slope_of_a_quadratic_smile_and_its_guards() -> None:
    k = np.linspace(-0.3, 0.3, 61)
    vol = 0.5 - 0.2 * k + 0.4 * k**2
    slope = smile_slope(np.r_[k, k], np.r_[vol, vol], ["a"] * 122)
    # central differences are exact for a quadratic inside; one-sided at the two ends
    np.testing.assert_allclose(slope[1:60], (-0.2 + 0.8 * k)[1:60], atol=1e-12)
    np.testing.assert_allclose(slope[61 + 1 : 61 + 60], slope[1:60])
    # a lone strike has no slope; a mask builds the smile from the chosen quotes only
    assert smile_slope([0.0], [0.5], ["b"]).tolist() == [0.0]
    noisy = vol + np.where(k < 0, 0.0, 5.0)
    masked = smile_slope(k, noisy, ["a"] * 61, use=k < 0)
    inner = (k < -0.02) & (k > -0.29)  # not the one-sided ends of the masked smile
    np.testing.assert_allclose(masked[inner], (-0.2 + 0.8 * k)[inner], atol=1e-12)


def test_sticky_moneyness_matches_the_engine_convention() -> None:
    scenario = preset("calm-2026-01")
    snap = next(iter(simulate(scenario, days=0.5, freq="12h", seed=1).snapshots()))
    engine = make_engine("ssvi").fit(snap)
    contracts = snap.quotes[["expiry", "strike", "is_call"]].iloc[::7]
    ref = engine.greeks(contracts, snap, delta="sticky-moneyness")
    f, strike, t, call = engine.contract_inputs(contracts, snap)
    # the engine's smile on a fine strike grid per expiry, differenced by smile_slope
    grid = np.linspace(-0.4, 0.4, 4001)
    slopes = np.empty(len(contracts))
    for tt in np.unique(t):
        rows = t == tt
        kk = np.log(strike[rows] / f[rows])
        vols = engine.implied_vol(grid, np.full_like(grid, tt))
        both_k = np.r_[grid, kk]
        both_vol = np.r_[vols, engine.implied_vol(kk, np.full_like(kk, tt))]
        use = np.r_[np.ones(grid.size, bool), np.zeros(kk.size, bool)]
        slopes[rows] = smile_slope(both_k, both_vol, np.zeros(both_k.size), use)[grid.size :]
    vol = engine.implied_vol(np.log(strike / f), t)
    g = black76_greeks(f, strike, t, vol, call)
    ours = sticky_moneyness_delta(g["delta"], g["vega"], f, slopes)
    inside = np.abs(np.log(strike / f)) < 0.39
    assert inside.sum() > 10
    np.testing.assert_allclose(ours[inside], ref["delta"][inside], atol=1e-6)


def test_non_finite_vols_are_left_out_of_the_smile() -> None:
    out = smile_slope([-0.1, 0.0, 0.1], [0.52, np.nan, 0.48], [0, 0, 0])
    np.testing.assert_allclose(out, [-0.2, -0.2, -0.2])
