"""SABR implied volatility (Hagan 2002 / Obloj 2008): references, limits, Jacobian, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from volguard.kernels.sabr import _ratio, _x_of_z, sabr_vol, sabr_vol_jac

QUANTLIB_HAGAN = [
    (0.03, 0.015, 1.0, 0.035, 0.5, -0.3, 0.4, 0.30967164426612315),
    (0.03, 0.024, 1.0, 0.035, 0.5, -0.3, 0.4, 0.23342626170325298),
    (0.03, 0.028499999999999998, 1.0, 0.035, 0.5, -0.3, 0.4, 0.20988851501385186),
    (0.03, 0.03, 1.0, 0.035, 0.5, -0.3, 0.4, 0.20387661581963498),
    (0.03, 0.033, 1.0, 0.035, 0.5, -0.3, 0.4, 0.19444232199338976),
    (0.03, 0.045, 1.0, 0.035, 0.5, -0.3, 0.4, 0.1830561852748376),
    (0.03, 0.075, 1.0, 0.035, 0.5, -0.3, 0.4, 0.20525241254371365),
    (60000.0, 30000.0, 0.25, 0.6, 1.0, -0.2, 1.5, 0.8740055187172892),
    (60000.0, 48000.0, 0.25, 0.6, 1.0, -0.2, 1.5, 0.679040527329972),
    (60000.0, 57000.0, 0.25, 0.6, 1.0, -0.2, 1.5, 0.6291733786677645),
    (60000.0, 60000.0, 0.25, 0.6, 1.0, -0.2, 1.5, 0.6196875),
    (60000.0, 66000.0, 0.25, 0.6, 1.0, -0.2, 1.5, 0.6106867146490023),
    (60000.0, 90000.0, 0.25, 0.6, 1.0, -0.2, 1.5, 0.6550127999318083),
    (60000.0, 150000.0, 0.25, 0.6, 1.0, -0.2, 1.5, 0.832733305530585),
    (3000.0, 1500.0, 0.5, 6.626552251420767, 0.7, 0.25, 0.9, 0.7101513963729448),
    (3000.0, 2400.0, 0.5, 6.626552251420767, 0.7, 0.25, 0.9, 0.6321563552626998),
    (3000.0, 2850.0, 0.5, 6.626552251420767, 0.7, 0.25, 0.9, 0.6252817963228652),
    (3000.0, 3000.0, 0.5, 6.626552251420767, 0.7, 0.25, 0.9, 0.6258440624999997),
    (3000.0, 3300.0000000000005, 0.5, 6.626552251420767, 0.7, 0.25, 0.9, 0.6298732327270262),
    (3000.0, 4500.0, 0.5, 6.626552251420767, 0.7, 0.25, 0.9, 0.6640129752320996),
    (3000.0, 7500.0, 0.5, 6.626552251420767, 0.7, 0.25, 0.9, 0.7533123393467048),
    (100.0, 50.0, 2.0, 18.9287203344058, 0.1, -0.6, 0.5, 0.5286825988369999),
    (100.0, 80.0, 2.0, 18.9287203344058, 0.1, -0.6, 0.5, 0.3745852318809976),
    (100.0, 95.0, 2.0, 18.9287203344058, 0.1, -0.6, 0.5, 0.32141043905127864),
    (100.0, 100.0, 2.0, 18.9287203344058, 0.1, -0.6, 0.5, 0.3062225),
    (100.0, 110.00000000000001, 2.0, 18.9287203344058, 0.1, -0.6, 0.5, 0.27932294129594604),
    (100.0, 150.0, 2.0, 18.9287203344058, 0.1, -0.6, 0.5, 0.21548694671372154),
    (100.0, 250.0, 2.0, 18.9287203344058, 0.1, -0.6, 0.5, 0.20676873936670115),
]
"""(F, K, t, alpha, beta, rho, nu, vol): QuantLib 1.44 ``sabrVolatility(K, F, t, alpha, beta, nu,
rho)`` (Python wheel from PyPI, ql/termstructures/volatility/sabr.cpp), an independent
implementation of Hagan et al. (2002), eq. (2.17a). Generated once by the benchmark venv."""


def _obloj_naive(
    f: np.ndarray, k: np.ndarray, t: float, a: float, b: float, r: float, n: float
) -> np.ndarray:
    """Obloj (2008) leading term with Hagan's I1, written literally (fine away from K = F)."""
    q = 1.0 - b
    y = np.log(f / k)
    z = n * (f**q - k**q) / (a * q) if q > 0 else n * y / a
    x = np.log((np.sqrt(1 - 2 * r * z + z * z) + z - r) / (1 - r))
    i0 = n * y / x
    fk = f * k
    i1 = (
        q * q * a * a / (24 * fk**q)
        + r * b * n * a / (4 * fk ** (q / 2))
        + (2 - 3 * r * r) * n * n / 24
    )
    return np.asarray(i0 * (1 + i1 * t))


def test_hagan_variant_matches_quantlib() -> None:
    """QuantLib 1.44 reference values; tolerance 1e-13 relative (both are closed forms)."""
    f, k, t, a, b, r, n, ref = (np.array(c) for c in zip(*QUANTLIB_HAGAN, strict=True))
    np.testing.assert_allclose(sabr_vol(f, k, t, a, b, r, n, variant="hagan"), ref, rtol=1e-13)


@pytest.mark.parametrize(
    ("f", "t", "a", "b", "r", "n"),
    [
        (0.03, 1.0, 0.035, 0.5, -0.3, 0.4),
        (60_000.0, 0.25, 0.6, 1.0, -0.2, 1.5),
        (3000.0, 0.5, 0.6 * 3000**0.3, 0.7, 0.25, 0.9),
        (100.0, 2.0, 0.3 * 100**0.9, 0.1, -0.6, 0.5),
    ],
)
def test_obloj_variant_matches_the_literal_formula(
    f: float, t: float, a: float, b: float, r: float, n: float
) -> None:
    """Away from the money (|ln K/F| >= 0.01) the literal formula loses nothing; 1e-12 relative."""
    k = f * np.exp(np.array([-1.5, -0.5, -0.05, -0.01, 0.01, 0.05, 0.5, 1.5]))
    np.testing.assert_allclose(
        sabr_vol(f, k, t, a, b, r, n), _obloj_naive(f, k, t, a, b, r, n), 1e-12
    )


@pytest.mark.parametrize("rho", [-0.95, -0.4, 0.0, 0.3, 0.9])
def test_x_of_z_and_its_rho_derivative_match_quadrature(rho: float) -> None:
    """x(z) = int_0^z ds / S(s) and dx/drho = int_0^z s / S(s)^3 ds, S = sqrt(1 - 2 rho s + s^2)."""
    for z in (-3.0, -0.4, -0.06, -1e-3, 1e-7, 0.04, 0.3, 5.0):
        x_ref = quad(lambda s: (1 - 2 * rho * s + s * s) ** -0.5, 0, z, epsabs=0, epsrel=1e-13)[0]
        xr_ref = quad(
            lambda s: s * (1 - 2 * rho * s + s * s) ** -1.5, 0, z, epsabs=0, epsrel=1e-13
        )[0]
        zz, rr = np.array([z]), np.array([rho])
        assert float(_x_of_z(zz, rr)[0]) == pytest.approx(x_ref, rel=1e-13)
        ratio, _, r_rho = _ratio(zz, rr, True)
        assert r_rho is not None
        assert float(r_rho[0]) == pytest.approx(-z * xr_ref / x_ref**2, rel=1e-11, abs=1e-300)
        assert float(ratio[0]) == pytest.approx(z / x_ref, rel=1e-13)


def test_ratio_is_continuous_across_the_series_switch() -> None:
    """Series for |z| < 0.1, closed form beyond: both sides agree to 1e-11 (the closed dR/dz
    cancels to ~2e-12 relative at the edge)."""
    rho = np.array([-0.9, -0.3, 0.0, 0.5, 0.95])
    for edge in (0.1, -0.1):
        lo = _ratio(np.full(5, edge * (1 - 1e-12)), rho, True)
        hi = _ratio(np.full(5, edge * (1 + 1e-12)), rho, True)
        for a, b in zip(lo, hi, strict=True):
            assert a is not None and b is not None
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("variant", ["obloj", "hagan"])
def test_at_the_money_limit_is_exact_and_continuous(variant: str) -> None:
    f, t, a, b, r, n = 3000.0, 0.5, 0.6 * 3000**0.3, 0.7, 0.25, 0.9
    q = 1 - b
    i1 = (
        q * q * a * a / (24 * f ** (2 * q))
        + r * b * n * a / (4 * f**q)
        + (2 - 3 * r * r) * n * n / 24
    )
    atm = a * f ** (b - 1) * (1 + i1 * t)
    assert float(sabr_vol(f, f, t, a, b, r, n, variant=variant)) == pytest.approx(atm, rel=1e-15)  # type: ignore[arg-type]
    eps = np.array([-1e-5, -1e-9, -1e-13, 1e-13, 1e-9, 1e-5])
    near = sabr_vol(f, f * np.exp(eps), t, a, b, r, n, variant=variant)  # type: ignore[arg-type]
    # the smile's slope in ln K is O(1), so the gap is a few |eps|
    assert np.all(np.abs(near - atm) <= 3 * np.abs(eps) + 1e-15)
    assert np.all(np.isfinite(sabr_vol_jac(f, f, t, a, b, r, n, variant=variant)[1]))  # type: ignore[arg-type]


def test_limits_lognormal_cev_and_beta_one() -> None:
    f = 60_000.0
    k = f * np.exp(np.linspace(-1, 1, 9))
    # nu = 0, beta = 1: Black-76 with vol alpha, flat
    np.testing.assert_allclose(sabr_vol(f, k, 1.0, 0.55, 1.0, -0.5, 0.0), 0.55, rtol=1e-15)
    # beta = 1: the two leading terms coincide (noted in Obloj 2008)
    np.testing.assert_allclose(
        sabr_vol(f, k, 0.3, 0.6, 1.0, -0.3, 2.0),
        sabr_vol(f, k, 0.3, 0.6, 1.0, -0.3, 2.0, variant="hagan"),
        rtol=1e-14,
    )
    # nu = 0: CEV, I0 = alpha q y / (F^q - K^q) (the nu -> 0 limit of Obloj's term)
    b, a, t = 0.5, 0.6 * f**0.5, 0.5
    q = 1 - b
    cev = (
        a * q * np.log(f / np.where(k == f, f * (1 + 1e-12), k)) / (f**q - k**q + (k == f) * 1e-300)
    )
    cev = np.where(k == f, a * f ** (b - 1), cev) * (1 + q * q * a * a / (24 * (f * k) ** q) * t)
    np.testing.assert_allclose(sabr_vol(f, k, t, a, b, 0.3, 0.0), cev, rtol=1e-12)
    # continuity as beta -> 1 (Obloj's point: his term is consistent there)
    np.testing.assert_allclose(
        sabr_vol(f, k, 0.3, 0.6, 1 - 1e-10, -0.3, 2.0),
        sabr_vol(f, k, 0.3, 0.6, 1.0, -0.3, 2.0),
        rtol=1e-8,
    )


def test_broadcasts_one_parameter_set_per_expiry() -> None:
    f = np.array([[60_000.0], [61_000.0]])
    t = np.array([[0.1], [0.5]])
    k = np.array([[50_000.0, 60_000.0, 70_000.0]])
    alpha = np.array([[0.7], [0.6]])
    vol, jac = sabr_vol_jac(f, k, t, alpha, 1.0, np.array([[-0.1], [-0.3]]), 1.2)
    assert vol.shape == (2, 3) and jac.shape == (3, 2, 3)
    assert float(vol[1, 2]) == pytest.approx(
        float(sabr_vol(61_000.0, 70_000.0, 0.5, 0.6, 1.0, -0.3, 1.2))
    )


def _fd_jac(f: float, k: np.ndarray, t: float, p: np.ndarray, b: float, variant: str) -> np.ndarray:
    """Central differences, relative step 1e-6: error ~1e-12 truncation + ~1e-10 rounding."""
    out = []
    for i in range(3):
        h = 1e-6 * max(abs(p[i]), 0.1)
        up, dn = p.copy(), p.copy()
        up[i] += h
        dn[i] -= h
        vu = sabr_vol(f, k, t, up[0], b, up[1], up[2], variant=variant)  # type: ignore[arg-type]
        vd = sabr_vol(f, k, t, dn[0], b, dn[1], dn[2], variant=variant)  # type: ignore[arg-type]
        out.append((vu - vd) / (2 * h))
    return np.array(out)


@pytest.mark.parametrize("variant", ["obloj", "hagan"])
@pytest.mark.parametrize(
    ("f", "t", "a", "b", "r", "n"),
    [
        (60_000.0, 0.25, 0.6, 1.0, -0.2, 1.5),
        (3000.0, 0.5, 0.6 * 3000**0.3, 0.7, 0.25, 0.9),
        (0.03, 1.0, 0.035, 0.5, -0.3, 0.4),
    ],
)
def test_jacobian_matches_central_differences(
    variant: str, f: float, t: float, a: float, b: float, r: float, n: float
) -> None:
    # includes the money, the series region (|z| < 0.1) and both sides of its edge
    y = np.array([-1.0, -0.2, -0.03, -1e-4, 0.0, 1e-4, 0.03, 0.2, 1.0])
    k = f * np.exp(y)
    vol, jac = sabr_vol_jac(f, k, t, a, b, r, n, variant=variant)  # type: ignore[arg-type]
    fd = _fd_jac(f, k, t, np.array([a, r, n]), b, variant)
    scale = np.array([1 / a, 1.0, 1.0])[:, None] * vol  # natural size of each derivative
    np.testing.assert_allclose(jac, fd, rtol=0, atol=1e-7 * scale.max())


@settings(max_examples=60, deadline=None)
@given(
    y=st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=8),
    t=st.floats(0.0, 3.0),
    vol_atm=st.floats(0.1, 1.5),
    b=st.floats(0.0, 1.0),
    r=st.floats(-0.95, 0.95),
    n=st.floats(0.0, 3.0),
    variant=st.sampled_from(["obloj", "hagan"]),
)
def test_properties(
    y: list[float], t: float, vol_atm: float, b: float, r: float, n: float, variant: str
) -> None:
    # the expansion is a short-time one: its time correction 1 + eps t turns negative when the
    # vol of vol is large over the horizon (n = 3, t = 2, rho = -0.875 gives a negative vol)
    assume(n * n * t <= 4.0)
    f = 40_000.0
    a = vol_atm * f ** (1 - b)
    k = f * np.exp(np.array(y))
    vol, jac = sabr_vol_jac(f, k, t, a, b, r, n, variant=variant)  # type: ignore[arg-type]
    assert np.all(np.isfinite(vol)) and np.all(np.isfinite(jac))
    assert np.all(vol > 0)
    np.testing.assert_allclose(vol, sabr_vol(f, k, t, a, b, r, n, variant=variant), rtol=1e-15)  # type: ignore[arg-type]
    # d vol / d alpha > 0 within the range the expansion is meant for
    fd = _fd_jac(f, k, t, np.array([a, r, n]), b, variant)
    scale = np.abs(fd).max(axis=1, keepdims=True) + vol.max() * np.array([[1 / a], [1.0], [1.0]])
    np.testing.assert_allclose(jac, fd, rtol=0, atol=1e-6 * scale.max())
