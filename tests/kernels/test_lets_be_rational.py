"""Implied volatility (Let's Be Rational): accuracy, statuses, round trips, twin agreement."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import special

from volguard.kernels.black76 import normalised_vega, price_kernel
from volguard.kernels.lets_be_rational import (
    implied_vol_kernel,
    implied_vol_scalar,
    normalised_implied_vol_otm,
)
from volguard.kernels.lets_be_rational_numpy import implied_vol_np
from volguard.kernels.status import STATUS_NAMES, IVStatus

mpmath.mp.dps = 50
EPS = 2.220446049250313e-16


def _solve(price: float, f: float, k: float, t: float, call: bool, d: float = 1.0) -> tuple:
    return implied_vol_scalar(price, f, k, t, call, d)


def test_at_the_money_closed_form() -> None:
    # b(0, s) = erf(s / (2 sqrt 2))  =>  s = 2 sqrt(2) erfinv(beta)  (x = 0 in Black's formula)
    for beta in (1e-12, 1e-6, 0.01, 0.3, 0.7, 0.99, 0.999999):
        s_ref = float(2 * mpmath.sqrt(2) * mpmath.erfinv(beta))
        s = normalised_implied_vol_otm(beta, 0.0, math.log(beta))
        # attainable: rounding beta moves s by eps * beta / vega
        cond = EPS * beta / normalised_vega(0.0, s_ref)
        assert s == pytest.approx(s_ref, rel=4 * EPS, abs=cond)


def _mp_beta(x: float, s: float) -> mpmath.mpf:
    xm, sm = mpmath.mpf(x), mpmath.mpf(s)
    return mpmath.exp(xm / 2) * mpmath.ncdf(xm / sm + sm / 2) - mpmath.exp(-xm / 2) * mpmath.ncdf(
        xm / sm - sm / 2
    )


def _representable_cases() -> list[tuple[float, float]]:
    """Grid of (x, s) whose price is a normal float64 not within 1e-15 of its upper bound."""
    cases = []
    for x in (-1e-8, -0.01, -0.5, -1.5, -5.0, -20.0, -80.0):
        for s in (1e-3, 0.01, 0.05, 0.2, 0.5, 1.0, 2.5, 6.0):
            beta = float(_mp_beta(x, s))
            if beta > 1e-300 and beta < math.exp(0.5 * x) * (1 - 1e-15):
                cases.append((x, s))
    return cases


@pytest.mark.parametrize(("x", "s"), _representable_cases())
def test_against_fifty_digit_prices(x: float, s: float) -> None:
    """Prices computed with mpmath at 50 digits, rounded to float64, inverted back.

    Tolerance: the attainable accuracy, i.e. what rounding beta to float64 does to s
    (``eps * beta / (s * db/ds)`` relative), plus 4 ulp of s.
    """
    beta_mp = _mp_beta(x, s)
    beta = float(beta_mp)
    vega = normalised_vega(x, s)
    cond = EPS * beta / (s * vega) if vega > 0 else math.inf
    got = normalised_implied_vol_otm(beta, x, float(mpmath.log(beta_mp)))
    assert got == pytest.approx(s, rel=4 * EPS + 2 * cond)


def _random_set(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    f = rng.uniform(30_000.0, 100_000.0, n)
    k = f * np.exp(rng.uniform(-1.5, 1.0, n))
    t = np.exp(rng.uniform(math.log(1 / 8760), math.log(2.0), n))
    vol = rng.uniform(0.2, 2.0, n)
    call = rng.random(n) < 0.5
    d = np.ones(n)
    return f, k, t, vol, call, d


def _sensitivity(
    price: np.ndarray, f: np.ndarray, k: np.ndarray, t: np.ndarray, vol: np.ndarray
) -> np.ndarray:
    s = vol * np.sqrt(t)
    h = np.log(f / k) / s
    ln_vega = 0.5 * np.log(f * k * t) - 0.5 * (h * h + 0.25 * s * s) - 0.5 * math.log(2 * math.pi)
    with np.errstate(divide="ignore", over="ignore"):
        return np.exp(np.log(np.spacing(np.abs(price))) - math.log(2.0) - ln_vega)


def test_accuracy_on_crypto_set_with_one_hour_expiries() -> None:
    f, k, t, vol, call, d = _random_set(200_000, seed=11)
    price = price_kernel(f, k, t, vol, call, d)
    got, status = implied_vol_kernel(price, f, k, t, call, d)
    well_posed = _sensitivity(price, f, k, t, vol) < 1e-10
    assert well_posed.sum() > 120_000
    assert np.all(status[well_posed] == IVStatus.OK)
    err = np.abs(got - vol)[well_posed]
    assert err.max() <= 1e-9
    assert np.median(err) <= 1e-14
    # vol is NaN exactly where the status is not ok
    np.testing.assert_array_equal(np.isnan(got), status != IVStatus.OK)


def test_serial_parallel_and_numpy_twin_agree() -> None:
    f, k, t, vol, call, d = _random_set(50_000, seed=5)
    price = price_kernel(f, k, t, vol, call, d)
    v1, s1 = implied_vol_kernel(price, f, k, t, call, d, parallel=False)
    v2, s2 = implied_vol_kernel(price, f, k, t, call, d, parallel=True)
    v3, s3 = implied_vol_np(price, f, k, t, call, d)
    np.testing.assert_array_equal(v1, v2)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(s1, s3)
    ok = s1 == IVStatus.OK
    np.testing.assert_allclose(v3[ok], v1[ok], rtol=1e-12, atol=0)


NAN, INF = math.nan, math.inf
STATUS_CASES = [
    # price, F, K, t, call, D, expected
    (8.0, 100.0, 100.0, 1.0, True, 1.0, IVStatus.OK),
    (-1.0, 100.0, 120.0, 1.0, True, 1.0, IVStatus.BELOW_INTRINSIC),
    (5.0, 100.0, 90.0, 1.0, True, 1.0, IVStatus.BELOW_INTRINSIC),
    (9.0, 100.0, 110.0, 1.0, False, 1.0, IVStatus.BELOW_INTRINSIC),
    (100.0, 100.0, 90.0, 1.0, True, 1.0, IVStatus.ABOVE_UPPER_BOUND),
    (120.0, 100.0, 90.0, 1.0, True, 1.0, IVStatus.ABOVE_UPPER_BOUND),
    (95.0, 100.0, 95.0, 1.0, False, 1.0, IVStatus.ABOVE_UPPER_BOUND),
    (8.0, 100.0, 100.0, 0.0, True, 1.0, IVStatus.ZERO_TIME),
    (NAN, 100.0, 100.0, 1.0, True, 1.0, IVStatus.NON_FINITE_INPUT),
    (8.0, INF, 100.0, 1.0, True, 1.0, IVStatus.NON_FINITE_INPUT),
    (8.0, 100.0, -INF, 1.0, True, 1.0, IVStatus.NON_FINITE_INPUT),
    (8.0, 100.0, 100.0, NAN, True, 1.0, IVStatus.NON_FINITE_INPUT),
    (8.0, 100.0, 100.0, 1.0, True, INF, IVStatus.NON_FINITE_INPUT),
    (10.0, 100.0, 90.0, 1.0, True, 1.0, IVStatus.ILL_POSED),
    (10.0 * (1 + 2 * EPS), 100.0, 90.0, 1.0, True, 1.0, IVStatus.ILL_POSED),
    (0.0, 100.0, 120.0, 1.0, True, 1.0, IVStatus.ILL_POSED),
    (8.0, -100.0, 100.0, 1.0, True, 1.0, IVStatus.INVALID_INPUT),
    (8.0, 100.0, 0.0, 1.0, True, 1.0, IVStatus.INVALID_INPUT),
    (8.0, 100.0, 100.0, -1.0, True, 1.0, IVStatus.INVALID_INPUT),
    (8.0, 100.0, 100.0, 1.0, True, 0.0, IVStatus.INVALID_INPUT),
]


@pytest.mark.parametrize("case", STATUS_CASES, ids=lambda c: STATUS_NAMES[int(c[-1])])
def test_status_codes(case: tuple) -> None:
    *args, expected = case
    vol, status = _solve(*args)
    assert status == expected
    assert math.isnan(vol) == (status != IVStatus.OK)
    arrays = [np.array([a]) for a in args]
    arrays[4] = arrays[4].astype(bool)
    for v, s in (implied_vol_kernel(*arrays), implied_vol_np(*arrays)):
        assert int(s[0]) == expected
        assert math.isnan(v[0]) == (expected != IVStatus.OK)


def test_status_enum_and_names() -> None:
    assert [s.name.lower() for s in IVStatus] == list(STATUS_NAMES.values())
    assert IVStatus.OK == 0


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    price=st.floats(width=64),
    f=st.floats(width=64),
    k=st.floats(width=64),
    t=st.floats(width=64),
    call=st.booleans(),
    d=st.floats(width=64),
)
def test_never_raises_and_nan_iff_not_ok(
    price: float, f: float, k: float, t: float, call: bool, d: float
) -> None:
    vol, status = _solve(price, f, k, t, call, d)
    assert status in STATUS_NAMES
    assert math.isnan(vol) == (status != IVStatus.OK)
    if status == IVStatus.OK:
        assert vol > 0.0


@settings(max_examples=400, deadline=None)
@given(
    log_moneyness=st.floats(-6.0, 6.0),
    vol=st.floats(0.01, 5.0),
    t=st.floats(1.0 / 8760.0, 5.0),  # from one hour to five years
    call=st.booleans(),
    forward=st.floats(1e-2, 1e7),
)
def test_round_trip_price_iv_price(
    log_moneyness: float, vol: float, t: float, call: bool, forward: float
) -> None:
    strike = forward * math.exp(log_moneyness)
    args = [np.array([a]) for a in (forward, strike, t, vol)]
    price = price_kernel(args[0], args[1], args[2], args[3], np.array([call]), np.ones(1))
    got, status = implied_vol_kernel(
        price, args[0], args[1], args[2], np.array([call]), np.ones(1), parallel=False
    )
    intrinsic = max(forward - strike, 0.0) if call else max(strike - forward, 0.0)
    time_value = float(price[0]) - intrinsic
    if status[0] != IVStatus.OK:
        # only an invisible time value (or an underflowed price) may fail
        assert time_value <= 4 * EPS * float(price[0]) or float(price[0]) < 1e-300
        return
    back = price_kernel(args[0], args[1], args[2], got, np.array([call]), np.ones(1))
    # the time value is reproduced to ~1e-12 relative (the price function's own accuracy)
    assert abs(float(back[0]) - float(price[0])) <= 1e-12 * time_value + 8 * EPS * float(price[0])
    sens = _sensitivity(price, args[0], args[1], args[2], args[3])[0]
    if sens < 1e-12:
        assert float(got[0]) == pytest.approx(vol, rel=1e-11, abs=1e-12)


def test_extreme_wings_round_trip() -> None:
    # deterministic sweep of the wings: |ln(K/F)| up to 6, s = vol sqrt(t) from 1e-4 to 6
    rng = np.random.default_rng(7)
    n = 200_000
    f = np.ones(n)
    k = np.exp(rng.uniform(-6.0, 6.0, n))
    s = np.exp(rng.uniform(math.log(1e-4), math.log(6.0), n))
    t = np.ones(n)
    call = rng.random(n) < 0.5
    d = np.ones(n)
    price = price_kernel(f, k, t, s, call, d)
    got, status = implied_vol_kernel(price, f, k, t, call, d)
    ok = status == IVStatus.OK
    intrinsic = np.where(call, np.maximum(f - k, 0.0), np.maximum(k - f, 0.0))
    tv = price - intrinsic
    back = price_kernel(f, k, t, np.where(ok, got, 0.1), call, d)
    rel = np.abs(back - price)[ok] / tv[ok]
    assert rel.max() < 2e-12
    # failures only where the time value is invisible in the price
    assert np.all((tv[~ok] <= 4 * EPS * price[~ok]) | (price[~ok] == 0.0))


def test_subnormal_time_value_uses_logarithms() -> None:
    # USD price ~1e-310: normalised beta is subnormal, the vol is still recovered
    f, k, t, vol = 60_000.0, 60_000.0 * math.exp(1.2), 4.1 / 365.0, 0.3
    price = price_kernel(*(np.array([a]) for a in (f, k, t, vol)), np.array([True]), np.ones(1))
    assert 0.0 < price[0] < 1e-300
    got, status = _solve(float(price[0]), f, k, t, True)
    assert status == IVStatus.OK
    assert got == pytest.approx(vol, rel=1e-10)


def test_scipy_cross_check_at_the_money() -> None:
    # at the money: price = F erf(vol sqrt(t) / (2 sqrt 2)), vol = 2 sqrt(2) erfinv(price/F)/sqrt t
    price = np.array([1.0, 100.0, 5_000.0, 30_000.0])
    f = np.full(4, 60_000.0)
    t = np.full(4, 0.25)
    got, status = implied_vol_kernel(price, f, f, t, np.ones(4, bool), np.ones(4))
    ref = 2 * math.sqrt(2) * special.erfinv(price / f) / np.sqrt(t)
    assert np.all(status == 0)
    np.testing.assert_allclose(got, ref, rtol=1e-14)
