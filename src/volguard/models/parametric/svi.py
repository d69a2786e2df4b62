"""``svi``: Gatheral's raw SVI smile per expiry, fitted by variable projection.

``w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2))``. With ``y = (k - m) / sigma`` the
slice is linear in ``(a, d, c) = (a, rho b sigma, b sigma)``: ``w = a + d y + c sqrt(y^2 + 1)``
(Zeliade 2009, "quasi-explicit calibration"). For each ``(m, sigma)`` the best ``(a, c, d)``
is a bounded linear least-squares problem in ``u = c + d`` and ``v = c - d``; the outer problem
is two-dimensional. The box ``0 <= u, v <= 2 sigma`` is ``b >= 0``, ``|rho| <= 1`` and Lee's
moment bound ``b (1 + |rho|) <= 2`` on the wings; ``a >= 0`` keeps ``w > 0``.

Fallback: a slice whose fit fails (too few quotes or a non-finite optimum) is fitted flat at
its at-the-money vol (``b = 0``), flagged in the result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import least_squares, lsq_linear

from volguard._typing import FloatArray
from volguard.models.base import SliceEngine
from volguard.models.parametric.black76_flat import atm_vol
from volguard.models.quotes import FitQuotes

MIN_QUOTES = 5
LEE_SLOPE = 2.0


def svi_raw(k: FloatArray, a: float, b: float, rho: float, m: float, sigma: float) -> FloatArray:
    """Raw SVI total variance.

    References
    ----------
    Gatheral, J. (2004), A parsimonious arbitrage-free implied volatility parameterization,
    Global Derivatives. Gatheral, J. and Jacquier, A. (2014), Quantitative Finance 14(1),
    doi:10.1080/14697688.2013.819986.

    Examples
    --------
    >>> float(svi_raw(np.array(0.0), 0.04, 0.0, 0.0, 0.0, 0.1))
    0.04
    """
    x = np.asarray(k, dtype=float) - m
    w: FloatArray = a + b * (rho * x + np.sqrt(x * x + sigma * sigma))
    return w


def _inner(
    m: float, sigma: float, k: FloatArray, w: FloatArray, sw: FloatArray, w_max: float
) -> tuple[FloatArray, FloatArray]:
    """Best ``(a, u, v)`` for fixed ``(m, sigma)`` and the weighted residuals."""
    y = (k - m) / sigma
    root = np.sqrt(y * y + 1.0)
    design = np.column_stack([np.ones_like(y), (root + y) / 2, (root - y) / 2])  # a, u, v
    upper = [w_max, LEE_SLOPE * sigma, LEE_SLOPE * sigma]
    sol = lsq_linear(design * sw[:, None], w * sw, bounds=([0.0, 0.0, 0.0], upper), method="bvls")
    coef = np.asarray(sol.x, dtype=float)
    return coef, (design @ coef - w) * sw


def fit_svi_slice(
    k: FloatArray, t: float, vol: FloatArray, weight: FloatArray
) -> tuple[dict[str, float], bool]:
    """Fit raw SVI to one smile; returns the parameters and whether the optimiser converged.

    Residuals are in vol: total-variance errors are scaled by ``1 / (2 vol t)`` (first order).
    """
    w = vol**2 * t
    sw = np.sqrt(weight) / (2.0 * vol * t)
    w_max = float(np.max(w)) * 2.0
    span = max(float(k.max() - k.min()), 0.05)
    m0 = float(k[np.argmin(w)])
    lo = [float(k.min()) - span, 1e-3]
    hi = [float(k.max()) + span, 2.0 * span + 1.0]
    sol = least_squares(
        lambda p: _inner(p[0], p[1], k, w, sw, w_max)[1],
        x0=[np.clip(m0, lo[0], hi[0]), np.clip(0.2 * span, lo[1], hi[1])],
        bounds=(lo, hi),
        method="trf",
        x_scale="jac",
        xtol=1e-10,
        ftol=1e-12,
    )
    m, sigma = (float(x) for x in sol.x)
    (a, u, v), _ = _inner(m, sigma, k, w, sw, w_max)
    c, d = (u + v) / 2, (u - v) / 2
    b = c / sigma
    rho = d / c if c > 0 else 0.0
    return {"a": float(a), "b": float(b), "rho": float(rho), "m": m, "sigma": sigma}, bool(
        sol.success
    )


class SVI(SliceEngine):
    """Raw SVI per expiry slice (see the module docstring for the fit and its constraints).

    Parameters
    ----------
    weighting : {'vega', 'spread', 'open_interest', 'none'}
        Weights of the quotes in the least-squares fit.
    """

    name = "svi"

    def __init__(self, weighting: str = "vega") -> None:
        self.weighting = weighting

    def _calibrate(
        self, quotes: FitQuotes
    ) -> tuple[dict[str, Any], bool, str | None, tuple[str, ...]]:
        params, times, notes = [], [], []
        converged, fallback = True, None
        for i, expiry in enumerate(quotes.expiries):
            s = quotes.slice(i)
            t = float(np.median(s.t))
            fitted: dict[str, float] | None = None
            if len(s) >= MIN_QUOTES:
                fitted, ok = fit_svi_slice(s.k, t, s.mid_iv, s.weight)
                converged &= ok
                if not all(np.isfinite(list(fitted.values()))):
                    fitted = None
            if fitted is None:
                flat = atm_vol(s.k, s.mid_iv) ** 2 * t
                fitted = {"a": flat, "b": 0.0, "rho": 0.0, "m": 0.0, "sigma": 0.1}
                fallback = "flat at-the-money vol on slices that could not be fitted"
                notes.append(f"{expiry}: {len(s)} quotes, fitted flat at the ATM vol")
            params.append(fitted)
            times.append(t)
        self.slice_params_ = params
        self.slice_t_ = np.asarray(times)
        by_expiry = {str(e): p for e, p in zip(quotes.expiries, params, strict=True)}
        return by_expiry, converged, fallback, tuple(notes)

    def slice_variance(self, i: int, k: FloatArray) -> FloatArray:
        return svi_raw(k, **self.slice_params_[i])
