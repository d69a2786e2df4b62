"""Static-arbitrage checks against known arbitrage-free and arbitrageable surfaces."""

from __future__ import annotations

import numpy as np
import pytest

from volguard._typing import FloatArray
from volguard.arbitrage import check_static_arbitrage, durrleman_g
from volguard.models.parametric.svi import svi_raw

# Gatheral & Jacquier (2014), Example 3.1: Axel Vogt's raw SVI slice (T = 1), their example of a
# smile with butterfly arbitrage (g < 0 on part of the right wing).
VOGT = {"a": -0.0410, "b": 0.1331, "rho": 0.3060, "m": 0.3586, "sigma": 0.4153}


def _svi_g(k: FloatArray, p: dict[str, float]) -> FloatArray:
    """Durrleman's g of a raw SVI slice with the closed-form derivatives."""
    x = k - p["m"]
    root = np.sqrt(x**2 + p["sigma"] ** 2)
    dw = p["b"] * (p["rho"] + x / root)
    d2w = p["b"] * p["sigma"] ** 2 / root**3
    return durrleman_g(svi_raw(k, **p), dw, d2w, k)


def test_flat_surface_is_arbitrage_free() -> None:
    report = check_static_arbitrage(lambda k, t: 0.25 * t + 0 * k, np.array([0.1, 0.5, 1.0]))
    assert report.total == 0 and report.butterfly_worst == 0.0
    assert report.n_points == 3 * 251


def test_vogt_slice_has_butterfly_arbitrage_where_g_is_negative() -> None:
    report = check_static_arbitrage(lambda k, t: svi_raw(k, **VOGT) * t, np.array([1.0]))
    mesh = np.round(np.arange(-1.5, 1.0 + 1e-9, 0.01), 10)
    exact = _svi_g(mesh, VOGT)
    assert report.butterfly_count == np.sum(exact < -1e-8) > 0
    assert report.calendar_count == 0
    assert report.butterfly_worst == pytest.approx(exact.min(), abs=1e-6)
    assert report.butterfly_at[0][0] == pytest.approx(mesh[np.argmin(exact)])


def test_an_arbitrage_free_slice_passes() -> None:
    p = {"a": 0.02, "b": 0.2, "rho": -0.4, "m": 0.05, "sigma": 0.2}
    k = np.linspace(-1, 1, 41)
    assert np.all(_svi_g(k, p) > 0)
    report = check_static_arbitrage(lambda kk, tt: svi_raw(kk, **p) + 0 * tt, np.array([1.0]), k)
    assert report.butterfly_count == 0


def test_calendar_violations_are_found_and_located() -> None:
    def crossing(k: FloatArray, t: FloatArray) -> FloatArray:
        # variance falls between t = 0.5 and t = 1 for k > 0.2 only
        return np.where((t >= 1.0) & (k > 0.2), 0.9 * 0.04 * 0.5, 0.04 * t)

    report = check_static_arbitrage(crossing, np.array([0.5, 1.0]))
    assert report.calendar_count == np.sum(np.round(np.arange(-1.5, 1.0 + 1e-9, 0.01), 10) > 0.2)
    assert all(k > 0.2 and t == 1.0 for k, t in report.calendar_at)


def test_negative_or_nan_variance_breaks_the_bounds() -> None:
    report = check_static_arbitrage(lambda k, t: np.where(k > 0.9, np.nan, k), np.array([1.0]))
    assert report.bounds_count == np.sum(np.arange(-1.5, 1.0 + 1e-9, 0.01) < 0) + 10
