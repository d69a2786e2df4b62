"""Normal distribution helpers: numba versions against mpmath (50 digits) and SciPy."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from scipy import special

from volguard.kernels import _erfcx_table
from volguard.kernels.normal import (
    erfcx,
    erfcx_np,
    inverse_norm_cdf,
    inverse_norm_cdf_np,
    norm_cdf,
    norm_cdf_fast,
    norm_cdf_np,
    norm_pdf,
    norm_pdf_np,
)

mpmath.mp.dps = 50


def _erfcx_ref(z: float) -> float:
    zm = mpmath.mpf(z)
    return float(mpmath.exp(zm * zm) * mpmath.erfc(zm))


@pytest.mark.parametrize(
    "z", [-26.0, -10.3, -5.84, -1.0, -0.6, -0.1, 0.0, 0.3, 1.7, 3.7, 7.9, 11.99, 12.0, 26.1, 1e3]
)
def test_erfcx_against_mpmath(z: float) -> None:
    # own piecewise fit: relative error below 5e-16 on [-1, 12); 2 ulp elsewhere
    assert erfcx(z) == pytest.approx(_erfcx_ref(z), rel=6e-16, abs=0.0)


def test_erfcx_grid_against_scipy_and_table_claim() -> None:
    zs = np.linspace(-1.0, 40.0, 4001)
    ours = np.array([erfcx(z) for z in zs])
    assert np.max(np.abs(ours / special.erfcx(zs) - 1.0)) < 1e-15
    assert _erfcx_table.MAX_RELATIVE_ERROR < 5e-16
    assert erfcx(-27.0) == math.inf
    np.testing.assert_allclose(erfcx_np(zs), special.erfcx(zs), rtol=0)


@pytest.mark.parametrize("z", [-38.0, -20.0, -5.0, -1.0, 0.0, 0.5, 3.0, 8.0])
def test_norm_cdf_against_mpmath(z: float) -> None:
    ref = float(mpmath.ncdf(z))
    # relative accuracy in the lower tail limited by rounding z/sqrt(2): ~ z^2 * 1.1e-16
    tol = max(2e-16, z * z * 2.2e-16)
    assert norm_cdf(z) == pytest.approx(ref, rel=tol)
    assert norm_cdf_fast(z) == pytest.approx(ref, rel=tol)
    assert norm_cdf_np(z) == pytest.approx(ref, rel=max(tol, 1e-15))
    assert norm_pdf(z) == pytest.approx(float(mpmath.npdf(z)), rel=tol)
    assert norm_pdf_np(z) == pytest.approx(float(mpmath.npdf(z)), rel=tol)


@pytest.mark.parametrize("p", [1e-300, 1e-100, 1e-10, 0.01, 0.3, 0.5, 0.8, 1 - 1e-9])
def test_inverse_norm_cdf_round_trip(p: float) -> None:
    pm = mpmath.mpf(p)
    ref = float(mpmath.findroot(lambda z: mpmath.ncdf(z) - pm, float(special.ndtri(p))))
    assert inverse_norm_cdf(p) == pytest.approx(ref, rel=1e-13, abs=1e-15)
    assert inverse_norm_cdf_np(p) == pytest.approx(ref, rel=1e-13, abs=1e-15)


def test_inverse_norm_cdf_edges() -> None:
    assert inverse_norm_cdf(0.0) == -math.inf
    assert inverse_norm_cdf(1.0) == math.inf
    assert math.isnan(inverse_norm_cdf(-0.1))
    assert math.isnan(inverse_norm_cdf(1.5))
