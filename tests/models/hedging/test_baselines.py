"""Baselines and the P&L bookkeeping, against known values in a Black-Scholes world."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models.hedging._world import bs_paths
from volguard.models.hedging import (
    BlackDelta,
    EngineDelta,
    HedgePaths,
    MinVarianceHedge,
    NoHedge,
    WhalleyWilmott,
    cvar,
    entropic,
    mean_variance,
    outcome,
    risk,
)


def test_outcome_by_hand() -> None:
    # one path: F 100 -> 110 -> 105, K 100, premium 3; hold 0.5 then 0.8, cost 1 %
    paths = HedgePaths(
        forward=np.array([[100.0, 110.0, 105.0]]),
        strike=np.array([100.0]),
        tau=np.array([2.0, 1.0, 0.0]) / 365,
        premium=np.array([3.0]),
        iv=np.full((1, 2), 0.5),
        delta_engine=np.full((1, 2), 0.5),
        realized_vol=np.full((1, 2), 0.5),
        regime=np.array(["x"], dtype=object),
    )
    out = outcome(paths, np.array([[0.5, 0.8]]), 0.01)
    cost = 0.01 * (0.5 * 100 + 0.3 * 110)
    pnl = 3.0 - 5.0 + 0.5 * 10 + 0.8 * (-5) - cost
    assert out.pnl[0] == pytest.approx(pnl / 100 * 1e4)
    assert out.cost[0] == pytest.approx(cost / 100 * 1e4)
    assert out.turnover[0] == pytest.approx(0.8)


def test_delta_hedge_error_shrinks_with_rebalancing() -> None:
    # zero cost: the discrete hedging error's std falls as 1 / sqrt(steps) (Boyle and Emanuel
    # 1980; Derman and Kamal 1999): four times the steps, half the std (within 15 %)
    std = {
        m: outcome(p, BlackDelta().positions(p), 0.0).pnl.std()
        for m, p in ((12, bs_paths(4000, 12, seed=1)), (48, bs_paths(4000, 48, seed=1)))
    }
    assert std[12] / std[48] == pytest.approx(2.0, rel=0.15)


def test_fair_premium_and_hedge_beats_no_hedge() -> None:
    p = bs_paths(4000, 48, seed=2)
    hedged = outcome(p, BlackDelta().positions(p), 0.0).pnl
    naked = outcome(p, NoHedge().positions(p), 0.0).pnl
    assert abs(hedged.mean()) < 3 * hedged.std() / np.sqrt(hedged.size)
    assert abs(naked.mean()) < 3 * naked.std() / np.sqrt(naked.size)
    assert hedged.std() < 0.2 * naked.std()
    np.testing.assert_allclose(naked, (p.premium - p.payoff) / 100 * 1e4)
    np.testing.assert_allclose(EngineDelta().positions(p), BlackDelta().positions(p))


def test_whalley_wilmott_band() -> None:
    p = bs_paths(500, 48, seed=3)
    # half-width by hand at the first hedge time of path 0: F' = 1, Gamma' = Gamma F_0
    h = WhalleyWilmott(5e-4, 100.0).half_width(p)
    expected = (1.5 * 5e-4 * (p.gamma_bs[0, 0] * 100.0) ** 2 / 100.0) ** (1 / 3)
    assert h[0, 0] == pytest.approx(expected)
    # no cost, no band: Black-76 delta; a lower aversion widens the band and trades less
    np.testing.assert_allclose(WhalleyWilmott(0.0, 1.0).positions(p), p.delta_bs)
    turn = [
        outcome(p, WhalleyWilmott(5e-4, g).positions(p), 5e-4).turnover.mean()
        for g in (1e4, 1e2, 1.0)
    ]
    assert turn[0] > turn[1] > turn[2]
    pos = WhalleyWilmott(5e-4, 100.0).positions(p)
    assert np.all(np.abs(pos - p.delta_bs) <= h + 1e-12)


def test_min_variance_with_zero_coefficients_is_black76() -> None:
    p = bs_paths(50, 12, seed=4)
    np.testing.assert_allclose(MinVarianceHedge((0.0, 0.0, 0.0)).positions(p), p.delta_bs)
    shifted = MinVarianceHedge((0.1, 0.0, 0.0)).positions(p)
    scale = p.vega_bs / (p.forward[:, :-1] * np.sqrt(p.tau[None, :-1]))
    np.testing.assert_allclose(shifted - p.delta_bs, 0.1 * scale, atol=1e-15)


def test_risk_measures() -> None:
    x = np.arange(1.0, 101.0)  # worst 5 %: 1..5
    assert cvar(x) == pytest.approx(-3.0)
    z = np.random.default_rng(0).normal(10.0, 2.0, 400_000)
    # entropic risk of a normal: -mu + lam sigma^2 / 2 (0.5 % of the value)
    assert entropic(z, 0.5) == pytest.approx(-10.0 + 0.5 * 0.5 * 4.0, rel=5e-3)
    assert mean_variance(z, 0.5) == pytest.approx(-10.0 + 0.25 * 4.0, rel=5e-3)
    assert entropic(z, 1e-6) == pytest.approx(-z.mean(), rel=1e-4)
    with pytest.raises(ValueError, match="risk measure"):
        risk(z, "var", 0.95)  # type: ignore[arg-type]


def test_paths_validation() -> None:
    p = bs_paths(3, 4)
    with pytest.raises(ValueError, match="iv must have shape"):
        HedgePaths(
            p.forward,
            p.strike,
            p.tau,
            p.premium,
            p.iv[:, :2],
            p.delta_engine,
            p.realized_vol,
            p.regime,
        )
    with pytest.raises(ValueError, match="tau must decrease"):
        HedgePaths(
            p.forward,
            p.strike,
            p.tau[::-1].copy(),
            p.premium,
            p.iv,
            p.delta_engine,
            p.realized_vol,
            p.regime,
        )
    with pytest.raises(ValueError, match="risk_aversion"):
        WhalleyWilmott(1e-4, 0.0)
