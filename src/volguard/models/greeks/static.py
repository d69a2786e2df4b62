"""Static deltas: the Black-76 delta moved by an assumed implied-vol response to the forward.

Every delta of this package has the form

.. math:: \\Delta = \\Delta_{BS} + \\mathcal{V}\\,\\frac{\\partial\\sigma}{\\partial F}
          = \\Delta_{BS} + \\frac{\\mathcal{V}}{F}\\,\\beta,
          \\qquad \\beta = \\frac{\\partial \\sigma}{\\partial \\ln F},

with :math:`\\Delta_{BS}` and :math:`\\mathcal{V}` (vega per 1.00 of vol) the Black-76 greeks at
the option's own implied vol. The spot-vol slope :math:`\\beta` (vol per unit of log forward)
names the smile dynamics [1]_: sticky strike is :math:`\\beta = 0` (the Black-76 delta at the
quote's vol); sticky moneyness keeps the vol of each ``k = ln(K/F)``, so
:math:`\\beta = -\\partial\\sigma/\\partial k` (the smile slope, about +0.2 for BTC's
downward-sloping smile); the minimum-variance and regime-aware deltas estimate :math:`\\beta`
from the hedging errors themselves.

References
----------
.. [1] Derman, E. (1999). Regimes of volatility. Risk 12(4), 55-59.
.. [2] Bergomi, L. (2016). Stochastic Volatility Modeling, ch. 2 (the skew stickiness ratio).
   Chapman and Hall/CRC. doi:10.1201/b19649
"""

from __future__ import annotations

import numpy as np

from volguard._typing import ArrayLike, FloatArray


def delta_with_beta(
    delta_bs: ArrayLike, vega: ArrayLike, forward: ArrayLike, beta: ArrayLike
) -> FloatArray:
    """The delta of an option whose implied vol moves by ``beta`` per unit of ``ln F``.

    Parameters
    ----------
    delta_bs : array_like
        Black-76 delta at the option's implied vol.
    vega : array_like
        Black-76 vega, USD per 1.00 of vol (per unit of underlying).
    forward : array_like
        Forward of the option's expiry, USD (> 0).
    beta : array_like
        ``d sigma / d ln F`` (decimal vol per unit of log forward). All inputs broadcast.

    Returns
    -------
    ndarray
        ``delta_bs + vega * beta / forward``.

    Examples
    --------
    >>> float(delta_with_beta(0.5, 2000.0, 100000.0, -0.5))
    0.49
    """
    out: FloatArray = np.asarray(delta_bs, dtype=float) + np.asarray(
        vega, dtype=float
    ) * np.asarray(beta, dtype=float) / np.asarray(forward, dtype=float)
    return out


def min_variance_delta(
    delta_bs: ArrayLike,
    vega: ArrayLike,
    forward: ArrayLike,
    t: ArrayLike,
    coefficients: tuple[float, float, float],
) -> FloatArray:
    """The minimum-variance delta of Hull and White (2017):
    ``delta_bs + vega / (F sqrt(t)) (a + b delta_bs + c delta_bs^2)``, i.e.
    :func:`delta_with_beta` with ``beta = (a + b delta_bs + c delta_bs^2) / sqrt(t)``.

    Parameters
    ----------
    delta_bs, vega, forward : array_like
        As for :func:`delta_with_beta`.
    t : array_like
        Years to expiry (> 0).
    coefficients : tuple of float
        ``(a, b, c)``, fitted by least squares of the Black-76 hedge's error on
        ``vega / sqrt(t) (dF / F) (1, delta_bs, delta_bs^2)`` (Hull and White 2017, eq. 4).

    Examples
    --------
    >>> float(min_variance_delta(0.5, 2000.0, 100000.0, 0.25, (-0.1, 0.0, 0.0)))
    0.496

    References
    ----------
    Hull, J. and White, A. (2017). Optimal delta hedging for options. Journal of Banking and
    Finance 82, 180-190. doi:10.1016/j.jbankfin.2017.05.006
    """
    a, b, c = coefficients
    d = np.asarray(delta_bs, dtype=float)
    beta = (a + b * d + c * d**2) / np.sqrt(np.asarray(t, dtype=float))
    return delta_with_beta(d, vega, forward, beta)


def smile_slope(
    k: ArrayLike, vol: ArrayLike, expiry: ArrayLike, use: ArrayLike | None = None
) -> FloatArray:
    """``d sigma / d k`` of each quote from its neighbours on its own expiry's smile.

    Central differences over the distinct log-moneyness of the ``use`` quotes of each expiry
    (quotes sharing ``k`` have their implied vols averaged), one-sided at the ends, linearly
    interpolated to every quote's ``k`` (held flat beyond the ends); an expiry with fewer than
    two used strikes gets 0 (no slope is observed). Pass the out-of-the-money quotes as
    ``use``: in-the-money vols carry the rounding of a price made mostly of intrinsic value.

    Parameters
    ----------
    k : array_like, shape (n,)
        Forward log-moneyness ``ln(K/F)``.
    vol : array_like, shape (n,)
        Implied vols (decimal).
    expiry : array_like, shape (n,)
        Any key equal for the quotes of one expiry.
    use : array_like of bool, shape (n,), optional
        The quotes the smile is built from (default: all).

    Returns
    -------
    ndarray, shape (n,)
        The slope at each quote, vol per unit of ``k``.

    Examples
    --------
    >>> smile_slope([-0.1, 0.0, 0.1], [0.52, 0.50, 0.49], ["a", "a", "a"]).round(3).tolist()
    [-0.2, -0.15, -0.1]
    """
    k_arr = np.asarray(k, dtype=float)
    vol_arr = np.asarray(vol, dtype=float)
    used = np.ones(k_arr.size, bool) if use is None else np.asarray(use, dtype=bool)
    _, group = np.unique(np.asarray(expiry), return_inverse=True)
    out = np.zeros(k_arr.size)
    for g in range(group.max() + 1 if group.size else 0):
        rows = np.flatnonzero(group == g)
        basis = rows[used[rows] & np.isfinite(vol_arr[rows])]
        grid, at = np.unique(k_arr[basis], return_inverse=True)
        if grid.size < 2:
            continue
        mean_vol = np.bincount(at, weights=vol_arr[basis]) / np.bincount(at)
        out[rows] = np.interp(k_arr[rows], grid, np.gradient(mean_vol, grid))
    return out


def sticky_moneyness_delta(
    delta_bs: ArrayLike, vega: ArrayLike, forward: ArrayLike, slope: ArrayLike
) -> FloatArray:
    """Delta when each log-moneyness keeps its vol: ``beta = -slope`` (:func:`smile_slope`).

    Examples
    --------
    >>> float(sticky_moneyness_delta(0.5, 2000.0, 100000.0, -0.2))
    0.504
    """
    return delta_with_beta(delta_bs, vega, forward, -np.asarray(slope, dtype=float))
