"""Heston and Bates engines: parameter recovery, Jacobian, wing guard, greeks, real chain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volguard.kernels.api import implied_vol
from volguard.kernels.heston_cos import bates_price, heston_price
from volguard.market import MarketSnapshot
from volguard.models import make_engine
from volguard.models.parametric import heston as heston_module
from volguard.models.parametric.heston import Bates, Heston, model_total_variance
from volguard.models.quotes import fit_quotes

TS = pd.Timestamp("2026-01-15 09:00", tz="UTC")
FORWARD = 60_000.0
HESTON = (0.36, 2.0, 0.49, 1.2, -0.35)  # v0, kappa, theta, sigma, rho: BTC-like, Feller holds
BATES = (*HESTON[:3], 0.9, -0.3, 0.8, -0.15, 0.2)
FAR_START = (1.5, 8.0, 1.5, 3.0, 0.5)  # every parameter far off, rho of the wrong sign
DAYS = (14, 45, 90, 180, 365)


def model_snapshot(params: tuple[float, ...], days: tuple[int, ...] = DAYS) -> MarketSnapshot:
    """OTM quotes priced by COS from ``params`` (N = 1024), 15 strikes per expiry within
    -2.5..2 standard deviations, spreads of 1e-6 of the price."""
    pricer = bates_price if len(params) > 5 else heston_price
    rows = []
    for d in days:
        t = d / 365
        sd = np.sqrt(max(params[0], params[2]) * t)
        for z in np.linspace(-2.5, 2.0, 15):
            k = float(z * sd)
            strike, is_call = FORWARD * np.exp(k), k >= 0
            mid = float(pricer(FORWARD, strike, t, params, is_call, n_terms=1024))
            rows.append(
                {
                    "ts": TS,
                    "underlying": "BTC",
                    "expiry": TS + pd.Timedelta(days=d),
                    "t": t,
                    "strike": strike,
                    "is_call": is_call,
                    "forward": FORWARD,
                    "bid": mid * (1 - 1e-6),
                    "ask": mid * (1 + 1e-6),
                    "bid_iv": np.nan,
                    "ask_iv": np.nan,
                    "open_interest": 1.0,
                }
            )
    return MarketSnapshot.from_quotes(pd.DataFrame(rows))


@pytest.fixture(scope="module")
def heston_snapshot() -> MarketSnapshot:
    return model_snapshot(HESTON)


@pytest.mark.parametrize("start", [None, FAR_START])
def test_heston_recovers_its_parameters(
    heston_snapshot: MarketSnapshot, start: tuple[float, ...] | None
) -> None:
    engine = Heston(weighting="none", start=start).fit(heston_snapshot)
    result = engine.result_
    assert result.converged and result.fallback is None
    np.testing.assert_allclose(engine.params_, HESTON, rtol=0, atol=1e-6)
    assert result.rmse_vol_pts < 1e-6
    assert not any("Feller" in w for w in result.warnings)  # 2 kappa theta = 1.96 > 1.44


def test_bates_recovers_its_parameters() -> None:
    snap = model_snapshot(BATES)
    start = (0.2, 1.0, 0.3, 0.6, -0.6, 0.3, -0.3, 0.4)
    engine = Bates(weighting="none", start=start).fit(snap)
    assert engine.result_.converged
    np.testing.assert_allclose(engine.params_, BATES, rtol=0, atol=1e-6)
    assert engine.result_.params["feller_ratio"] == pytest.approx(2 * 2.0 * 0.49 / 0.81)


def test_bates_without_jumps_is_heston(heston_snapshot: MarketSnapshot) -> None:
    k = np.linspace(-1.2, 0.8, 41)[:, None]
    t = np.array([3 / 365, 0.1, 0.5, 1.5])[None, :]
    w_heston = model_total_variance(HESTON, k, t)
    w_bates = model_total_variance((*HESTON, 0.0, -0.2, 0.3), k, t)
    np.testing.assert_allclose(w_bates, w_heston, rtol=1e-12, atol=0)
    bates = Bates(weighting="none", start=(*HESTON, 0.0, -0.1, 0.2)).fit(heston_snapshot)
    assert bates.result_.rmse_vol_pts < 1e-6
    np.testing.assert_allclose(bates.params_[:5], HESTON, atol=1e-6)
    assert bates.params_[5] < 1e-8


@pytest.mark.parametrize(
    "engine_cls, params",
    [(Heston, (0.3, 1.5, 0.5, 1.1, -0.4)), (Bates, (0.3, 1.5, 0.5, 1.1, -0.4, 0.7, -0.1, 0.25))],
)
def test_analytic_jacobian_matches_finite_differences(
    engine_cls: type[Heston], params: tuple[float, ...], heston_snapshot: MarketSnapshot
) -> None:
    engine = engine_cls(weighting="vega")
    residuals, jacobian = engine._objective(fit_quotes(heston_snapshot, "vega"), 256)
    x = np.asarray(params)
    jac = jacobian(x)
    fd = np.empty_like(jac)
    for j in range(x.size):
        h = 1e-6 * max(abs(x[j]), 0.1)
        up, dn = x.copy(), x.copy()
        up[j] += h
        dn[j] -= h
        fd[:, j] = (residuals(up) - residuals(dn)) / (2 * h)
    scale = np.abs(jac).max(axis=0)
    assert np.max(np.abs(jac - fd) / scale) < 1e-6  # relative to each column's size


def test_jacobian_is_the_vol_derivative_at_the_fit(heston_snapshot: MarketSnapshot) -> None:
    """At a zero-residual fit d sigma/dp = dP/dp / vega: the Jacobian against the finite
    difference of the model's Let's-Be-Rational vols."""
    quotes = fit_quotes(heston_snapshot, "none")
    _, jacobian = Heston()._objective(quotes, 1024)
    x = np.asarray(HESTON)
    strike, is_call = np.exp(quotes.k), quotes.k >= 0

    def vols(p: np.ndarray) -> np.ndarray:
        price = heston_price(1.0, strike, quotes.t, tuple(p), is_call, n_terms=1024)
        return np.asarray(implied_vol(price, 1.0, strike, quotes.t, is_call))

    for j in range(5):
        h = 1e-6
        up, dn = x.copy(), x.copy()
        up[j] += h
        dn[j] -= h
        np.testing.assert_allclose(
            jacobian(x)[:, j], (vols(up) - vols(dn)) / (2 * h), rtol=1e-4, atol=1e-7
        )


def test_wing_guard_never_gives_nan() -> None:
    """Far wings and tiny expiries: prices at machine-precision noise, still finite vols."""
    p = (0.5, 50.0, 0.28, 12.0, -0.35)  # a crash-day fit: high vol of variance
    k = np.linspace(-6.0, 6.0, 121)[:, None]
    t = np.array([1e-4, 1 / 365, 7 / 365, 0.5, 3.0])[None, :]
    w = model_total_variance(p, k, t)
    assert np.all(np.isfinite(w)) and np.all(w > 0)
    # total variance is non-increasing towards the money on the left, non-decreasing on the right
    left, right = w[k[:, 0] <= -3.0], w[k[:, 0] >= 3.0]
    assert np.all(np.diff(left, axis=0) <= 1e-12) and np.all(np.diff(right, axis=0) >= -1e-12)
    # inside the reliable range the guard changes nothing
    k_mid = np.linspace(-0.3, 0.3, 13)
    price = heston_price(1.0, np.exp(k_mid), 0.5, p, k_mid >= 0, n_terms=256)
    raw = implied_vol(price, 1.0, np.exp(k_mid), 0.5, k_mid >= 0) ** 2 * 0.5
    np.testing.assert_allclose(model_total_variance(p, k_mid, 0.5), raw, rtol=1e-14)
    # a point's value does not depend on the rest of the query (up to the rounding of the
    # matrix products, amplified at the floor where the wing slope is read)
    single = model_total_variance(p, np.array([-5.0]), np.array([7 / 365]))
    assert single[0] == pytest.approx(w[10, 2], rel=1e-6)


def test_model_greeks(heston_snapshot: MarketSnapshot) -> None:
    engine = Heston(weighting="none").fit(heston_snapshot)
    contracts = pd.DataFrame(
        {
            "expiry": [heston_snapshot.expiries[2]] * 4,
            "strike": [50_000.0, 60_000.0, 60_000.0, 70_000.0],
            "is_call": [False, False, True, True],
        }
    )
    g = engine.greeks(contracts, heston_snapshot)
    sticky = engine.greeks(contracts, heston_snapshot, delta="sticky-strike")
    f, strike, t, is_call = engine.contract_inputs(contracts, heston_snapshot)
    h = 1.0

    def price(fwd: float) -> np.ndarray:
        return np.asarray(heston_price(fwd, strike, t, tuple(engine.params_), is_call, n_terms=256))

    np.testing.assert_allclose(g["delta"], (price(f[0] + h) - price(f[0] - h)) / (2 * h), atol=1e-7)
    fd_gamma = (price(f[0] + 10) - 2 * price(f[0]) + price(f[0] - 10)) / 100
    np.testing.assert_allclose(g["gamma"], fd_gamma, rtol=1e-4)
    np.testing.assert_allclose(g["price"], sticky["price"])
    # Heston is homogeneous in (F, K) at fixed variance: its delta is the sticky-moneyness one,
    # above the Black delta where the smile falls with strike (rho < 0)
    moneyness = engine.greeks(contracts, heston_snapshot, delta="sticky-moneyness")
    np.testing.assert_allclose(g["delta"], moneyness["delta"], atol=1e-6)
    assert np.all(g["delta"] > sticky["delta"])
    assert np.all(g["vega_v0"] > 0)
    # the minimum-variance delta: the variance move predicted by the forward move, by bumping v0
    mv = engine.greeks(contracts, heston_snapshot, delta="minimum-variance")
    p = dict(zip(engine.param_names, engine.params_, strict=True))
    hv = 1e-6
    bumped = [(p["v0"] + s_ * hv, *tuple(engine.params_)[1:]) for s_ in (1, -1)]
    up_v, down_v = (heston_price(f, strike, t, q, is_call, n_terms=256) for q in bumped)
    expected = g["delta"] + p["rho"] * p["sigma"] * (up_v - down_v) / (2 * hv) / f
    np.testing.assert_allclose(mv["delta"], expected, atol=1e-6)
    np.testing.assert_allclose(mv["gamma"], g["gamma"])
    assert p["rho"] < 0 and np.all(mv["delta"] < g["delta"])
    with pytest.raises(ValueError, match="delta"):
        engine.greeks(contracts, heston_snapshot, delta="sticky-delta")  # type: ignore[arg-type]


def test_fallback_to_start_parameters(
    heston_snapshot: MarketSnapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise ValueError("optimiser exploded")

    monkeypatch.setattr(heston_module, "least_squares", boom)
    engine = make_engine("heston").fit(heston_snapshot)
    result = engine.result_
    assert result.fallback == "start parameters" and not result.converged
    np.testing.assert_array_equal(engine.params_, engine.start_)
    assert any("optimiser exploded" in w for w in result.warnings)
    assert np.all(np.isfinite(result.residuals_vol))


def test_settings_are_validated(heston_snapshot: MarketSnapshot) -> None:
    with pytest.raises(ValueError, match="n_terms"):
        Heston(n_terms=4).fit(heston_snapshot)
    with pytest.raises(ValueError, match="start"):
        Heston(start=(0.1, 1.0)).fit(heston_snapshot)
    named = Heston(
        start=dict(zip(("v0", "kappa", "theta", "sigma", "rho"), FAR_START, strict=True))
    )
    np.testing.assert_array_equal(named.fit(heston_snapshot).start_, FAR_START)


@pytest.mark.parametrize("name", ["heston", "bates"])
def test_real_crash_chain(name: str, crash_snapshot: MarketSnapshot) -> None:
    engine = make_engine(name).fit(crash_snapshot)
    result = engine.result_
    assert result.fallback is None and result.n_quotes > 300
    assert np.all(np.isfinite(result.residuals_vol))
    assert result.rmse_vol_pts < 10  # measured: 7.3 (heston), 6.5 (bates)
    assert any("Feller condition fails" in w for w in result.warnings)  # sigma 9-12 in the crash
    assert "kappa = 50 sits at its upper bound" in result.warnings  # measured: both engines
    k = np.linspace(-1.5, 1.0, 26)[:, None]
    t = np.array([1 / 365, 0.02, 0.3, 2.0])[None, :]
    assert np.all(np.isfinite(engine.implied_vol(k, t)))


def test_an_engine_from_known_parameters_prices_without_a_fit() -> None:
    params = {"v0": 0.3, "kappa": 1.5, "theta": 0.35, "sigma": 0.9, "rho": -0.4}
    engine = Heston.from_params(params)
    contracts = pd.DataFrame(
        {
            "expiry": pd.to_datetime(["2026-03-27 08:00"] * 2, utc=True),
            "strike": [60_000.0, 80_000.0],
            "is_call": [False, True],
        }
    )
    context = MarketSnapshot.from_quotes(
        contracts.assign(
            ts=pd.Timestamp("2026-02-05 09:00", tz="UTC"), underlying="BTC", forward=70_000.0
        )
    )
    f, strike, t, call = engine.contract_inputs(contracts, context)
    expected = heston_price(f, strike, t, tuple(params.values()), call)
    np.testing.assert_allclose(engine.price(contracts, context), expected, rtol=1e-6)
    jumps = Bates.from_params({**params, "lam": 0.5, "mu_j": -0.1, "sigma_j": 0.2})
    assert np.isfinite(jumps.implied_vol([0.0], [0.25])).all()
    with pytest.raises(ValueError, match="must be exactly"):
        Heston.from_params({**params, "lam": 0.5})
    with pytest.raises(ValueError, match=r"\|rho\| < 1"):
        Heston.from_params({**params, "rho": -1.0})
