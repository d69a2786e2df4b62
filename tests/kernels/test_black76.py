"""Black-76 kernels: sourced reference values, identities, limits, finite differences, twins."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import mpmath
import numpy as np
import pytest

from volguard.kernels.api import black76_greeks, black76_price
from volguard.kernels.black76 import (
    GREEK_NAMES,
    greeks_kernel,
    greeks_np,
    normalised_black_otm,
    normalised_black_otm_np,
    price_kernel,
    price_np,
)

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "black76_haug.csv"
mpmath.mp.dps = 50


def _haug_rows() -> list[dict[str, str]]:
    with REFERENCE.open() as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


@pytest.mark.parametrize("row", _haug_rows(), ids=lambda r: r["case"])
def test_haug_reference_values(row: dict[str, str]) -> None:
    spot, b, r = float(row["spot"]), float(row["carry_b"]), float(row["rate_r"])
    t, vol = float(row["t"]), float(row["vol"])
    forward = spot * math.exp(b * t)
    discount = math.exp(-r * t)
    g = black76_greeks(forward, float(row["strike"]), t, vol, row["is_call"] == "True", discount)
    value = {
        "price": float(g["price"]),
        "delta": float(g["delta"]) * math.exp(b * t),  # dV/dS = dV/dF * dF/dS
        "gamma_spot": float(g["gamma"]) * math.exp(2 * b * t),
    }[row["quantity"]]
    assert value == pytest.approx(float(row["expected"]), abs=float(row["abs_tol"]))


def _mp_black(x: float, s: float) -> float:
    xm, sm = mpmath.mpf(x), mpmath.mpf(s)
    return float(
        mpmath.exp(xm / 2) * mpmath.ncdf(xm / sm + sm / 2)
        - mpmath.exp(-xm / 2) * mpmath.ncdf(xm / sm - sm / 2)
    )


@pytest.mark.parametrize(
    ("x", "s"),
    [
        (-0.5, 0.001),  # Taylor series in t
        (-1e-6, 0.003),
        (-0.2, 0.019),  # asymptotic series, h ~ -10.5
        (-3.0, 0.1),  # asymptotic, h = -30
        (-20.0, 0.6),  # asymptotic near underflow
        (-0.16, 0.0158),  # erfcx next to the asymptotic boundary (worst cancellation)
        (-1.0, 0.5),  # erfcx
        (0.0, 0.2),  # at the money
        (-0.5, 3.0),  # plain formula branch
        (-5.0, 12.0),
    ],
)
def test_normalised_black_against_mpmath(x: float, s: float) -> None:
    ref = _mp_black(x, s)
    # relative accuracy: a few ulp, up to ~2e-13 next to the h = -10 boundary (cancellation
    # of two Mills ratios; Jaeckel 2015, section 3)
    assert normalised_black_otm(x, s) == pytest.approx(ref, rel=3e-13)
    assert normalised_black_otm_np(np.array([x]), np.array([s]))[0] == pytest.approx(ref, rel=3e-13)


def _grid() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(3)
    n = 5000
    forward = rng.uniform(30_000.0, 100_000.0, n)
    strike = forward * np.exp(rng.uniform(-1.5, 1.0, n))
    t = np.exp(rng.uniform(math.log(1 / 8760), math.log(2.0), n))
    vol = rng.uniform(0.05, 3.0, n)
    is_call = rng.random(n) < 0.5
    discount = rng.uniform(0.9, 1.0, n)
    return forward, strike, t, vol, is_call, discount


def test_put_call_parity_and_bounds() -> None:
    f, k, t, v, _, d = _grid()
    call = price_kernel(f, k, t, v, np.ones_like(f, bool), d)
    put = price_kernel(f, k, t, v, np.zeros_like(f, bool), d)
    # C - P = D (F - K), to rounding of the larger price (USD)
    np.testing.assert_allclose(call - put, d * (f - k), rtol=0, atol=1e-9 * np.max(f))
    assert np.all(call >= d * np.maximum(f - k, 0.0))
    assert np.all(put >= d * np.maximum(k - f, 0.0))
    assert np.all(call <= d * f)
    assert np.all(put <= d * k)


def test_limits_vol_and_time_to_zero() -> None:
    f = np.array([100.0, 100.0, 100.0])
    k = np.array([90.0, 100.0, 110.0])
    ones = np.ones(3)
    calls = np.ones(3, bool)
    intrinsic = np.maximum(f - k, 0.0) * 0.95
    np.testing.assert_array_equal(
        price_kernel(f, k, ones, 0.0 * ones, calls, 0.95 * ones), intrinsic
    )
    np.testing.assert_array_equal(
        price_kernel(f, k, 0.0 * ones, ones, calls, 0.95 * ones), intrinsic
    )
    # vol -> infinity: the call tends to D F
    big = price_kernel(f, k, ones, 80.0 * ones, calls, 0.95 * ones)
    np.testing.assert_allclose(big, 0.95 * f, rtol=1e-12)


def test_price_monotone_and_convex_in_strike() -> None:
    k = np.linspace(20_000.0, 200_000.0, 2001)
    n = k.shape[0]
    for is_call in (True, False):
        p = price_kernel(
            np.full(n, 60_000.0),
            k,
            np.full(n, 0.1),
            np.full(n, 0.7),
            np.full(n, is_call),
            np.ones(n),
        )
        dp = np.diff(p)
        assert np.all(dp <= 1e-9) if is_call else np.all(dp >= -1e-9)
        assert np.all(np.diff(dp) >= -1e-8)


def test_greeks_against_finite_differences() -> None:
    f, k, t, v, c, d = (a[:500] for a in _grid())
    g = dict(zip(GREEK_NAMES, greeks_kernel(f, k, t, v, c, d), strict=True))

    def price(ff: np.ndarray = f, vv: np.ndarray = v, tt: np.ndarray = t) -> np.ndarray:
        return price_kernel(ff, k, tt, vv, c, d)

    hf = 1e-4 * f
    hv = 1e-4
    ht = 1e-5 * t
    fd = {
        "delta": (price(ff=f + hf) - price(ff=f - hf)) / (2 * hf),
        "gamma": (price(ff=f + hf) - 2 * price() + price(ff=f - hf)) / hf**2,
        "vega": (price(vv=v + hv) - price(vv=v - hv)) / (2 * hv),
        "theta": -(price(tt=t + ht) - price(tt=t - ht)) / (2 * ht),
        "vanna": (
            price(ff=f + hf, vv=v + hv)
            - price(ff=f + hf, vv=v - hv)
            - price(ff=f - hf, vv=v + hv)
            + price(ff=f - hf, vv=v - hv)
        )
        / (4 * hf * hv),
        "volga": (price(vv=v + hv) - 2 * price() + price(vv=v - hv)) / hv**2,
    }
    scale: dict[str, float | np.ndarray] = {
        "delta": 1.0,
        "gamma": np.max(np.abs(g["gamma"])),
        "vega": f,
        "theta": f / t,
        "vanna": np.max(np.abs(g["vanna"])),
        "volga": f,
    }
    for name, approx in fd.items():
        tol = 1e-4 * np.abs(approx) + 1e-5 * scale[name] + 1e-9
        worst = np.max(np.abs(g[name] - approx) / tol)
        assert worst <= 1.0, f"{name}: finite-difference mismatch {worst:.2f} x tolerance"


def test_numba_numpy_twins_agree() -> None:
    args = _grid()
    np.testing.assert_allclose(
        price_kernel(*args, parallel=False), price_np(*args), rtol=1e-12, atol=0.0
    )
    np.testing.assert_array_equal(
        price_kernel(*args, parallel=True), price_kernel(*args, parallel=False)
    )
    ours = greeks_kernel(*args, parallel=False)
    twin = greeks_np(*args)
    for i, name in enumerate(GREEK_NAMES):
        np.testing.assert_allclose(ours[i], twin[i], rtol=1e-10, atol=1e-300, err_msg=name)


def test_deep_otm_price_keeps_relative_accuracy() -> None:
    # ln(K/F) = 1, two days, 50 % vol: price ~ 1e-155 USD, computed without cancellation
    f, k, t, v = 60_000.0, 60_000.0 * math.exp(1.0), 2 / 365, 0.5
    ours = float(black76_price(f, k, t, v, True))
    s = v * math.sqrt(t)
    fm, km, sm = mpmath.mpf(f), mpmath.mpf(k), mpmath.mpf(s)
    x = mpmath.log(fm / km)
    ref = float(fm * mpmath.ncdf(x / sm + sm / 2) - km * mpmath.ncdf(x / sm - sm / 2))
    assert 0.0 < ref < 1e-150
    assert ours == pytest.approx(ref, rel=1e-12)
