"""SSVI and eSSVI: exact on their own surfaces, arbitrage-free on real chains."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volguard.kernels.api import black76_price
from volguard.market import MarketSnapshot
from volguard.models import make_engine
from volguard.models.parametric.ssvi import (
    _atm_thetas,
    _fit_essvi_slice,
    _fit_essvi_slice_reference,
    _psi_bounds,
    _psi_kernel,
    _SliceProblem,
    essvi_psi,
    power_law_psi,
    ssvi_slice,
)
from volguard.models.quotes import fit_quotes

TS = pd.Timestamp("2026-01-15 09:00", tz="UTC")
RHO, ETA, GAMMA = -0.35, 1.1, 0.4


def ssvi_market(thetas: list[float], days: list[float]) -> MarketSnapshot:
    """Quotes priced exactly from a power-law SSVI surface (tight spreads)."""
    rows = []
    for theta, d in zip(thetas, days, strict=True):
        t = d / 365
        psi = power_law_psi(np.asarray(theta), ETA, GAMMA)
        for k in np.linspace(-0.5, 0.4, 25):
            vol = float(
                np.sqrt(ssvi_slice(np.asarray(k), np.asarray(theta), np.asarray(RHO), psi) / t)
            )
            mid = float(black76_price(60_000.0, 60_000.0 * np.exp(k), t, vol, k >= 0))
            rows.append(
                {
                    "ts": TS,
                    "underlying": "BTC",
                    "expiry": TS + pd.Timedelta(days=d),
                    "t": t,
                    "strike": 60_000.0 * np.exp(k),
                    "is_call": k >= 0,
                    "forward": 60_000.0,
                    "bid": mid * 0.999,
                    "ask": mid * 1.001,
                    "bid_iv": np.nan,
                    "ask_iv": np.nan,
                    "open_interest": 1.0,
                }
            )
    return MarketSnapshot.from_quotes(pd.DataFrame(rows))


def test_ssvi_recovers_its_own_surface() -> None:
    snap = ssvi_market([0.01, 0.03, 0.07], [14, 45, 120])
    engine = make_engine("ssvi", weighting="none").fit(snap)
    params = engine.result_.params
    assert engine.result_.rmse_vol_pts < 0.01
    assert (params["rho"], params["eta"], params["gamma"]) == pytest.approx(
        (RHO, ETA, GAMMA), abs=2e-3
    )


def test_essvi_fits_an_ssvi_surface_without_arbitrage() -> None:
    engine = make_engine("essvi", weighting="none").fit(
        ssvi_market([0.01, 0.03, 0.07], [14, 45, 120])
    )
    assert engine.result_.rmse_vol_pts < 0.05
    rhos = [p["rho"] for p in engine.result_.params.values()]
    np.testing.assert_allclose(rhos, RHO, atol=5e-3)


@pytest.mark.parametrize("name", ["ssvi", "essvi"])
def test_no_static_arbitrage_on_a_real_crash_chain(
    name: str, crash_snapshot: MarketSnapshot
) -> None:
    result = make_engine(name).fit(crash_snapshot).result_
    assert result.arbitrage.total == 0
    assert result.converged and result.rmse_vol_pts < 4.0  # measured: 3.5 (ssvi), 2.7 (essvi)


def test_interpolated_expiries_stay_calendar_free(crash_snapshot: MarketSnapshot) -> None:
    engine = make_engine("essvi").fit(crash_snapshot)
    t = np.linspace(0.5 / 365, 1.5, 300)
    k = np.linspace(-1.5, 1.0, 126)
    w = engine.total_variance(k[None, :], t[:, None])
    assert np.all(np.diff(w, axis=0) >= -1e-12)


@pytest.mark.parametrize("rho", [-0.6, 0.3])
@pytest.mark.parametrize("frac", [0.2, 0.9])
def test_essvi_slice_jacobian_matches_finite_differences(rho: float, frac: float) -> None:
    """The analytic Jacobian of the slice fit (quotes and crossing rows) against central FD."""
    k = np.linspace(-0.8, 0.6, 23)
    t = np.full(k.size, 30 / 365)
    mid = 0.6 + 0.3 * k**2 - 0.1 * k
    sw = np.linspace(0.5, 1.5, k.size)
    prev = (0.025, -0.2, 0.25)  # theta 0.03 with these psi and rho crosses it on part of CROSSING_K
    problem = _SliceProblem(k, t, mid, sw, prev)
    x = np.array([0.03, rho, frac])
    assert np.any(problem.residuals(x)[k.size :] > 0)  # the crossing rows are exercised
    analytic = problem.jacobian(x)
    numeric = np.empty_like(analytic)
    for j, h in enumerate((1e-7, 1e-6, 1e-6)):
        step = np.zeros(3)
        step[j] = h
        numeric[:, j] = (problem.residuals(x + step) - problem.residuals(x - step)) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6)


def test_compiled_slice_fit_matches_its_scipy_twin(crash_snapshot: MarketSnapshot) -> None:
    """The numba Levenberg-Marquardt and scipy's least_squares reach the same optimum."""
    quotes = fit_quotes(crash_snapshot, "vega")
    thetas = _atm_thetas(quotes)
    prev = (0.0, 0.0, 0.0)
    for i in range(len(quotes.expiries)):
        s = quotes.slice(i)
        fast, ok = _fit_essvi_slice(s, max(thetas[i], prev[0]), prev)
        ref, ok_ref = _fit_essvi_slice_reference(s, max(thetas[i], prev[0]), prev)
        assert ok and ok_ref
        problem = _SliceProblem(s.k, s.t, s.mid_iv, np.sqrt(s.weight), prev)
        cost = [
            float(np.sum(problem.residuals(np.array(_to_x(p, prev))) ** 2)) for p in (fast, ref)
        ]
        assert cost[0] <= cost[1] * (1 + 1e-6) + 1e-14  # never worse than scipy's optimum
        np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-6)
        prev = fast


def _to_x(params: tuple[float, float, float], prev: tuple[float, float, float]) -> list[float]:
    """``(theta, rho, frac)`` of a slice: the inverse of the ``psi`` interval map."""
    theta, rho, psi = params
    lo, hi = _psi_bounds(theta, rho, prev)
    return [theta, rho, (psi - lo) / (hi - lo) if hi > lo else 0.0]


@pytest.mark.parametrize("prev", [(0.0, 0.0, 0.0), (0.01, -0.3, 0.15), (0.01, 0.4, 0.3)])
def test_compiled_psi_map_matches_numpy(prev: tuple[float, float, float]) -> None:
    grad = np.empty(3)
    for theta, rho, frac in [(0.02, -0.5, 0.3), (0.5, 0.2, 0.9), (0.001, 0.0, 0.0)]:
        psi, expected = essvi_psi(theta, rho, frac, prev)
        assert _psi_kernel(theta, rho, frac, prev[1], prev[2], grad) == pytest.approx(psi)
        np.testing.assert_allclose(grad, expected, rtol=1e-14)
