"""``svi-plain``: raw SVI per expiry by plain least squares, the naive fit a desk writes first.

Each expiry's smile is the raw SVI total variance (Gatheral 2004)

.. math:: w(k) = a + b\\,(\\rho (k - m) + \\sqrt{(k - m)^2 + \\sigma^2})

fitted by unweighted least squares on the mid vols ``sqrt(w / t) - mid_iv`` (scipy's
trust-region reflective ``least_squares``, two starts), with only ``b >= 0``,
``|rho| <= 0.999`` and ``sigma >= 1e-4``: no arbitrage constraint, no weights. It is a baseline
of the lab's scorecard (:data:`volguard.lab.skill.BASELINES`): an engine that does not beat it
on the desk's protocol adds nothing a quant could not write in thirty lines.

Gatheral, J. (2004). A parsimonious arbitrage-free implied volatility parameterization with
application to the valuation of volatility derivatives. Global Derivatives & Risk Management.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import least_squares

from volguard._typing import FloatArray
from volguard.models.base import SliceEngine
from volguard.models.parametric.svi import svi_raw
from volguard.models.quotes import FitQuotes

_LOWER = np.array([-np.inf, 0.0, -0.999, -np.inf, 1e-4])
_UPPER = np.array([np.inf, np.inf, 0.999, np.inf, np.inf])
_MIN_W = 1e-12


def _residuals(p: FloatArray, k: FloatArray, t: float, vol: FloatArray) -> FloatArray:
    out: FloatArray = np.sqrt(np.maximum(svi_raw(k, *p), _MIN_W) / t) - vol
    return out


def _jacobian(p: FloatArray, k: FloatArray, t: float, vol: FloatArray) -> FloatArray:
    a, b, rho, m, sigma = p
    x = k - m
    r = np.sqrt(x * x + sigma**2)
    w = a + b * (rho * x + r)
    dw = np.column_stack([np.ones_like(x), rho * x + r, b * x, -b * (rho + x / r), b * sigma / r])
    scale = np.where(w > _MIN_W, 0.5 / np.sqrt(np.maximum(w, _MIN_W) * t), 0.0)
    out: FloatArray = scale[:, None] * dw
    return out


def fit_plain_svi(k: FloatArray, t: float, vol: FloatArray) -> tuple[FloatArray, bool]:
    """``(a, b, rho, m, sigma)`` of one expiry (``k`` log-moneyness, ``t`` years, ``vol`` mid
    vols, decimal) and whether the solver converged; the better of two starts (``sigma``
    0.05 and 0.3)."""
    best = None
    for sigma0 in (0.05, 0.3):
        x0 = np.array([0.5 * np.min(vol) ** 2 * t, 0.1, -0.2, float(k[np.argmin(vol)]), sigma0])
        sol = least_squares(
            _residuals,
            x0,
            jac=_jacobian,
            bounds=(_LOWER, _UPPER),
            x_scale="jac",
            max_nfev=200,
            args=(k, t, vol),
        )
        if best is None or sol.cost < best.cost:
            best = sol
    assert best is not None
    return np.asarray(best.x, dtype=float), bool(best.success)


class PlainSVI(SliceEngine):
    """Raw SVI per expiry by unweighted least squares on the mid vols (the naive baseline).

    Parameters
    ----------
    weighting : str
        Used only by the fit report (the fit itself is unweighted), as for ``black76-flat``.

    Examples
    --------
    >>> from volguard.models.quotes import FitQuotes
    >>> import pandas as pd
    >>> k = np.linspace(-0.4, 0.4, 9); t = 30 / 365
    >>> vol = np.sqrt(svi_raw(k, 0.004, 0.04, -0.3, 0.02, 0.1) / t)
    >>> one = np.ones(9)
    >>> q = FitQuotes(k, t * one, np.zeros(9, int), pd.DatetimeIndex(["2026-02-01"]), one,
    ...               vol, vol - 0.01, vol + 0.01, 0.01 * one, one)
    >>> engine = PlainSVI()
    >>> params, converged, _, _ = engine._calibrate(q)
    >>> converged, float(np.abs(engine.slice_variance(0, k) / t - vol**2).max()) < 1e-8
    (True, True)
    """

    name = "svi-plain"

    def __init__(self, weighting: str = "none") -> None:
        self.weighting = weighting

    def _calibrate(
        self, quotes: FitQuotes
    ) -> tuple[dict[str, Any], bool, str | None, tuple[str, ...]]:
        params, times, all_converged = [], [], True
        for i in range(len(quotes.expiries)):
            s = quotes.slice(i)
            t = float(np.median(s.t))
            p, converged = fit_plain_svi(s.k, t, s.mid_iv)
            params.append(p)
            times.append(t)
            all_converged &= converged
        self.params_ = np.asarray(params)
        self.slice_t_ = np.asarray(times)
        names = ("a", "b", "rho", "m", "sigma")
        report = {
            str(e): dict(zip(names, map(float, p), strict=True))
            for e, p in zip(quotes.expiries, params, strict=True)
        }
        return report, all_converged, None, ()

    def slice_variance(self, i: int, k: FloatArray) -> FloatArray:
        w: FloatArray = np.maximum(svi_raw(k, *self.params_[i]), _MIN_W)
        return w
