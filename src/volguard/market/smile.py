"""Smile facts of one snapshot: ATM vol, its term structure, the ATM skew, the risk reversal.

The one definition of each, used by the engines (a slice's ATM vol), the learned engines' state
features, the simulator's calibration targets, the lab's regime labels and the guard's regime
filter. Every function takes plain arrays of the quotes of ONE snapshot (``t`` ACT/365 years,
``k = ln(K/F)``, decimal vols) and works with any vol: the mid vols of
:class:`~volguard.market.quotes.QuoteVols` or the venue's marks.

* **ATM vol of an expiry**: the vol at ``k = 0`` by linear interpolation of its quotes in ``k``,
  the nearest quote's vol held outside the quoted strikes (:func:`slice_atm_vol`);
* **ATM vol at a tenor**: the expiries' ATM total variances ``sigma^2 t`` interpolated linearly
  in ``t``; before the first or after the last expiry the nearest expiry's ATM vol is held
  (:func:`atm_vol`), the way DVOL-like indices read a constant maturity;
* **ATM skew at a tenor**: ``dsigma/dk`` at ``k = 0``: per expiry the least-squares slope of vol on
  ``k`` over ``|k| < 0.1`` (widened to the three quotes nearest ``k = 0``), linear in ``t``
  between expiries, nearest held outside (:func:`atm_skew`);
* **risk reversal**: call minus put vol at the +-25 forward-delta strikes, averaged over the
  expiries of 20 to 45 days (:func:`risk_reversal`).
"""

from __future__ import annotations

import numpy as np

from volguard._typing import ArrayLike, FloatArray
from volguard.kernels.black76 import GREEK_NAMES, greeks_np
from volguard.market.clock import DAYS_PER_YEAR

TENORS_DAYS: tuple[int, ...] = (7, 14, 30, 60, 90, 180)
"""Tenors (calendar days) of :func:`atm_term_structure`."""
NEAR_ATM = 0.1
"""Half-width in log-moneyness of the window of the skew regression."""
RR_DAYS = (20.0, 45.0)
"""Expiries (days) whose 25-delta risk reversal is averaged by :func:`risk_reversal`."""


def slice_atm_vol(k: ArrayLike, vol: ArrayLike) -> float:
    """The vol at ``k = 0`` of one expiry by linear interpolation of its quotes (sorted by
    ``k``); outside the quoted range the nearest quote's vol.

    Examples
    --------
    >>> slice_atm_vol(np.array([-0.1, 0.1]), np.array([0.5, 0.3]))
    0.4
    """
    return float(np.interp(0.0, np.asarray(k, dtype=float), np.asarray(vol, dtype=float)))


def _slices(
    t: ArrayLike, k: ArrayLike, iv: ArrayLike
) -> list[tuple[float, FloatArray, FloatArray]]:
    """``(t, k, iv)`` of each expiry (rows grouped by ``t``), ``t`` ascending, ``k`` sorted."""
    t_arr, k_arr, iv_arr = (np.asarray(a, dtype=float) for a in (t, k, iv))
    ok = np.isfinite(t_arr) & np.isfinite(k_arr) & np.isfinite(iv_arr)
    t_arr, k_arr, iv_arr = t_arr[ok], k_arr[ok], iv_arr[ok]
    order = np.lexsort((k_arr, t_arr))
    t_arr, k_arr, iv_arr = t_arr[order], k_arr[order], iv_arr[order]
    if t_arr.size == 0:
        return []
    times, starts = np.unique(t_arr, return_index=True)
    ends = [*starts[1:], t_arr.size]
    return [
        (float(times[i]), k_arr[lo:hi], iv_arr[lo:hi])
        for i, (lo, hi) in enumerate(zip(starts, ends, strict=True))
    ]


def expiry_atm_vols(t: ArrayLike, k: ArrayLike, iv: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Years and ATM vol (:func:`slice_atm_vol`) of each expiry of the quotes, by years."""
    slices = _slices(t, k, iv)
    times = np.array([s[0] for s in slices])
    vols = np.array([slice_atm_vol(s[1], s[2]) for s in slices])
    return times, vols


def atm_vol(t: ArrayLike, k: ArrayLike, iv: ArrayLike, days: float = 30.0) -> float:
    """ATM vol (decimal) at ``days`` (ACT/365) of one snapshot's quotes; NaN without quotes.

    Examples
    --------
    >>> t = [20 / 365] * 2 + [40 / 365] * 2
    >>> round(atm_vol(t, [-0.1, 0.1] * 2, [0.5, 0.4, 0.6, 0.5]), 4)
    0.5188
    >>> round(atm_vol(t, [-0.1, 0.1] * 2, [0.5, 0.4, 0.6, 0.5], days=365), 4)  # 40 days held
    0.55
    """
    times, vols = expiry_atm_vols(t, k, iv)
    if times.size == 0:
        return float("nan")
    target = days / DAYS_PER_YEAR
    if target <= times[0]:
        return float(vols[0])
    if target >= times[-1]:
        return float(vols[-1])
    return float(np.sqrt(np.interp(target, times, vols**2 * times) / target))


def atm_term_structure(
    t: ArrayLike, k: ArrayLike, iv: ArrayLike, tenors_days: tuple[int, ...] = TENORS_DAYS
) -> dict[str, float]:
    """:func:`atm_vol` at each tenor, as ``atm_<days>d`` (decimal)."""
    return {f"atm_{days}d": atm_vol(t, k, iv, days) for days in tenors_days}


def _slice_skew(k: FloatArray, vol: FloatArray) -> float:
    near = np.abs(k) < NEAR_ATM
    if near.sum() < 3:
        near = np.zeros(k.size, dtype=bool)
        near[np.argsort(np.abs(k))[:3]] = True
    kk, vv = k[near], vol[near]
    if np.unique(kk).size < 2:
        return float("nan")
    return float(np.polyfit(kk, vv, 1)[0])


def atm_skew(t: ArrayLike, k: ArrayLike, iv: ArrayLike, days: float = 30.0) -> float:
    """ATM skew ``dsigma/dk`` (vol per unit of log-moneyness) at ``days``; NaN when no expiry
    has two distinct strikes.

    Examples
    --------
    >>> round(atm_skew([0.1] * 3, [-0.1, 0.0, 0.1], [0.6, 0.5, 0.45]), 3)
    -0.75
    """
    rows = [(s[0], _slice_skew(s[1], s[2])) for s in _slices(t, k, iv)]
    rows = [r for r in rows if np.isfinite(r[1])]
    if not rows:
        return float("nan")
    times, skews = np.array(rows).T
    return float(np.interp(days / DAYS_PER_YEAR, times, skews))  # held outside


def forward_delta(k: ArrayLike, t: ArrayLike, vol: ArrayLike, is_call: ArrayLike) -> FloatArray:
    """Black-76 forward delta (undiscounted) at log-moneyness ``k``: the kernel's delta
    (:func:`volguard.kernels.black76.greeks_np`) at ``F = 1``, ``K = e^k``; NaN in, NaN out.

    Examples
    --------
    >>> forward_delta([0.0, 0.0], [0.25, 0.25], [0.4, 0.4], [True, False]).round(4).tolist()
    [0.5398, -0.4602]
    """
    k_b, t_b, v_b, c_b = np.broadcast_arrays(
        np.asarray(k, dtype=float),
        np.asarray(t, dtype=float),
        np.asarray(vol, dtype=float),
        np.asarray(is_call, dtype=bool),
    )
    ones = np.ones(k_b.size)
    delta: FloatArray = greeks_np(
        ones, np.exp(k_b.ravel()), t_b.ravel(), v_b.ravel(), c_b.ravel(), ones
    )[GREEK_NAMES.index("delta")].reshape(k_b.shape)
    return delta


def risk_reversal(
    t: ArrayLike,
    k: ArrayLike,
    iv: ArrayLike,
    is_call: ArrayLike,
    delta: float = 0.25,
    days: tuple[float, float] = RR_DAYS,
) -> float:
    """Mean ``delta`` risk reversal (call vol minus put vol, decimal) over the expiries of
    ``days``: each side's smile read at forward delta ``+delta`` (calls) and ``-delta`` (puts)
    by linear interpolation in delta. Negative: puts richer (crash fear). NaN if no expiry
    qualifies.
    """
    t_arr, k_arr, iv_arr = (np.asarray(a, dtype=float) for a in (t, k, iv))
    call = np.asarray(is_call, dtype=bool)
    d = forward_delta(k_arr, t_arr, iv_arr, call)
    rr = []
    for tau in np.unique(t_arr[np.isfinite(t_arr)]):
        if not days[0] <= tau * DAYS_PER_YEAR <= days[1]:
            continue
        sides = [
            _vol_at_delta(d[m], iv_arr[m], target)
            for m, target in (((t_arr == tau) & call, delta), ((t_arr == tau) & ~call, -delta))
        ]
        if all(np.isfinite(sides)):
            rr.append(sides[0] - sides[1])
    return float(np.mean(rr)) if rr else float("nan")


def _vol_at_delta(delta: FloatArray, iv: FloatArray, target: float) -> float:
    ok = np.isfinite(delta) & np.isfinite(iv)
    delta, iv = delta[ok], iv[ok]
    if delta.size < 2:
        return float("nan")
    order = np.argsort(delta)
    d, v = delta[order], iv[order]
    if not d[0] <= target <= d[-1]:
        return float("nan")
    return float(np.interp(target, d, v))
