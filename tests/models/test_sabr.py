"""SABR per slice: the fit recovers known parameters (beta fixed or fitted), falls back flat on
thin slices, guards the expansion where its vol turns negative, and fits a real crash chain."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from volguard.arbitrage.static import DEFAULT_K
from volguard.kernels.api import black76_price
from volguard.kernels.sabr import sabr_vol
from volguard.market import MarketSnapshot
from volguard.models import ENGINES, make_engine
from volguard.models.parametric import sabr as sabr_module
from volguard.models.parametric.sabr import SABR, fit_sabr_slice

TS = pd.Timestamp("2026-01-15 09:00", tz="UTC")
FORWARD = 95_000.0
TRUE = {"alpha": 0.55, "beta": 1.0, "rho": -0.35, "nu": 2.0}


def sabr_snapshot(
    params: dict[str, float],
    days: tuple[float, ...] = (30.0, 91.25),
    k: np.ndarray | None = None,
    noise_vol: float = 0.0,
    seed: int = 11,
) -> MarketSnapshot:
    """Out-of-the-money quotes priced from one SABR parameter set at each expiry."""
    rng = np.random.default_rng(seed)
    k = np.linspace(-0.5, 0.4, 25) if k is None else k
    rows = []
    for d in days:
        t = d / 365.0
        strike = FORWARD * np.exp(k)
        vol = sabr_vol(FORWARD, strike, t, **params) + noise_vol * rng.standard_normal(k.size)
        is_call = k >= 0
        mid = black76_price(FORWARD, strike, t, vol, is_call)
        half = 0.001 * FORWARD * 0.5
        for i in range(k.size):
            rows.append(
                {
                    "ts": TS,
                    "underlying": "BTC",
                    "expiry": TS + pd.Timedelta(days=d),
                    "t": t,
                    "strike": strike[i],
                    "is_call": bool(is_call[i]),
                    "forward": FORWARD,
                    "bid": max(mid[i] - half, 1e-8),
                    "ask": mid[i] + half,
                    "mark": mid[i],
                    "bid_iv": np.nan,
                    "ask_iv": np.nan,
                    "open_interest": 1.0,
                }
            )
    return MarketSnapshot.from_quotes(pd.DataFrame(rows))


def test_registered_with_its_settings() -> None:
    assert ENGINES["sabr"] is SABR
    engine = make_engine("sabr", beta=0.5)
    assert engine.get_params() == {"beta": 0.5, "weighting": "vega"}
    assert clone(engine).get_params() == engine.get_params()


@pytest.mark.parametrize("beta", [1.0, 0.5, 0.0])
def test_noise_free_slice_recovers_the_parameters(beta: float) -> None:
    k = np.linspace(-0.5, 0.4, 25)
    t, forward = 0.25, 60_000.0
    alpha = 0.6 * forward ** (1.0 - beta)  # about a 60 % at-the-money vol for every beta
    vol = sabr_vol(forward, forward * np.exp(k), t, alpha, beta, -0.3, 1.5)
    params, converged = fit_sabr_slice(k, t, forward, vol, np.ones_like(k), beta=beta)
    assert converged and params["beta"] == beta
    assert params["alpha"] == pytest.approx(alpha, rel=1e-7)
    assert params["rho"] == pytest.approx(-0.3, abs=1e-7)
    assert params["nu"] == pytest.approx(1.5, rel=1e-7)


def test_fitted_beta_is_recovered_on_a_clean_smile() -> None:
    k = np.linspace(-0.5, 0.4, 25)
    t, forward = 0.25, 60_000.0
    vol = sabr_vol(forward, forward * np.exp(k), t, 0.6 * forward**0.5, 0.5, -0.3, 1.5)
    params, converged = fit_sabr_slice(k, t, forward, vol, np.ones_like(k), beta=None)
    assert converged
    assert params["beta"] == pytest.approx(0.5, abs=1e-5)
    assert params["rho"] == pytest.approx(-0.3, abs=1e-4)
    assert params["nu"] == pytest.approx(1.5, rel=1e-4)


def test_engine_recovers_a_noisy_sabr_market() -> None:
    engine = SABR(weighting="none").fit(sabr_snapshot(TRUE, noise_vol=0.005, seed=3))
    result = engine.result_
    assert result.converged and result.fallback is None
    assert 0.3 < result.rmse_vol_pts < 0.7  # the 0.5 vol-pt noise, not more
    assert result.arbitrage.bounds_count == 0 and result.arbitrage.butterfly_count == 0
    for p in engine.slice_params_:
        assert p["alpha"] == pytest.approx(TRUE["alpha"], abs=0.01)
        assert p["rho"] == pytest.approx(TRUE["rho"], abs=0.1)
        assert p["nu"] == pytest.approx(TRUE["nu"], rel=0.15)
    k = np.linspace(-0.5, 0.4, 19)
    t = 91.25 / 365.0
    truth = sabr_vol(FORWARD, FORWARD * np.exp(k), t, **TRUE)
    assert np.max(np.abs(engine.implied_vol(k, t) - truth)) < 0.0075  # wings: 25 noisy quotes


def test_beta_is_validated() -> None:
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\] or None; got 1.5"):
        SABR(beta=1.5).fit(sabr_snapshot(TRUE))


def test_thin_slices_fall_back_flat() -> None:
    snapshot = sabr_snapshot(TRUE)
    quotes = snapshot.quotes
    thin = quotes[(quotes["expiry"] == quotes["expiry"].max()) | (quotes.index % 10 == 0)]
    engine = SABR().fit(MarketSnapshot.from_quotes(thin))
    result = engine.result_
    assert result.fallback is not None and "fitted flat" in result.warnings[0]
    assert engine.slice_params_[0]["nu"] == 0.0 and engine.slice_params_[1]["nu"] > 0
    iv = engine.implied_vol(np.linspace(-1.5, 1.0, 7), 30 / 365)
    assert np.all(np.isfinite(iv)) and np.ptp(iv) == pytest.approx(0.0, abs=1e-12)


def test_negative_expansion_vol_is_guarded_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # beta 0.5, rho -0.99, nu 3 at 2 years: the correction 1 + I1 t turns negative on part of
    # the mesh (34 of its 251 points) while the vol stays positive at the quotes (|k| <= 0.3)
    bad = {"alpha_hat": 0.3, "beta": 0.5, "rho": -0.99, "nu": 3.0}

    def fake_fit(k: Any, t: float, forward: float, *args: Any) -> tuple[dict[str, float], bool]:
        return {**bad, "alpha": 0.3 * forward**0.5, "forward": forward}, True

    monkeypatch.setattr(sabr_module, "fit_sabr_slice", fake_fit)
    snapshot = sabr_snapshot(TRUE, days=(730.0,), k=np.linspace(-0.3, 0.3, 13))
    engine = SABR(beta=0.5).fit(snapshot)
    raw = sabr_module._sabr_slice_vol(DEFAULT_K, engine.slice_t_[0], FORWARD, **bad)
    n_bad = int(np.sum(~(raw > 0)))
    assert n_bad == 34
    assert engine.guarded_points_ == n_bad
    assert engine.result_.arbitrage.bounds_count >= n_bad
    assert any("guarded to zero variance" in w for w in engine.result_.warnings)
    w = engine.slice_variance(0, DEFAULT_K)
    assert np.all(np.isfinite(w)) and np.all(w >= 0) and np.all(w[~(raw > 0)] == 0)
    assert np.all(np.isfinite(engine.implied_vol(DEFAULT_K, engine.slice_t_[0])))


@pytest.mark.realdata
def test_crash_chain_fit(crash_snapshot: MarketSnapshot) -> None:
    engine = make_engine("sabr").fit(crash_snapshot)
    result = engine.result_
    # measured on this snapshot (beta = 1): 1.56 vol pts, 69 % inside the spread, no violation
    assert result.converged and result.fallback is None
    assert result.rmse_vol_pts < 2.0 and result.inside_spread_pct > 60
    assert result.arbitrage.total == 0
    assert np.all(np.isfinite(result.residuals_vol))
    k = np.linspace(-1.5, 1.0, 26)[:, None]
    t = np.concatenate([[1 / 365], engine.slice_t_, [2.0]])[None, :]
    iv = engine.implied_vol(k, t)
    assert np.all(np.isfinite(iv)) and np.all(iv > 0)
    # the short-dated slices need a large vol of vol: a steep crash smile
    nus = [p["nu"] for p in engine.slice_params_]
    assert nus[0] > nus[-1] and all(-1 < p["rho"] < 0 for p in engine.slice_params_)


@pytest.mark.realdata
def test_crash_chain_fitted_beta(crash_snapshot: MarketSnapshot) -> None:
    result = make_engine("sabr", beta=None).fit(crash_snapshot).result_
    assert result.fallback is None and result.rmse_vol_pts < 2.0
    assert all(0.0 <= p["beta"] <= 1.0 for p in result.params.values())
    assert np.all(np.isfinite(result.residuals_vol))
