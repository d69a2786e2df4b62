"""Black-76 prices and forward greeks: numba kernels and their plain-NumPy twins.

Conventions (all kernels; inputs are assumed validated and already broadcast to 1-D arrays
of one length):

* ``forward`` F and ``strike`` K in USD per unit of underlying, ``t`` in years (ACT/365),
  ``vol`` as a decimal per sqrt(year), ``is_call`` boolean, ``discount`` the discount factor
  ``D`` to the premium payment date (1.0 on Deribit, where premiums are forward values).
* Prices are ``D * sqrt(F*K) * b(x, s)`` with the *normalised* Black function ``b`` of
  Jaeckel (2015), ``x = ln(F/K)``, ``s = vol*sqrt(t)``; out-of-the-money values are computed
  without cancellation (relative accuracy near float64 even at 1e-300), in-the-money values
  as intrinsic plus the out-of-the-money time value.

Normalised Black (call, theta = +1)::

    b(x, s) = exp(x/2) Phi(x/s + s/2) - exp(-x/2) Phi(x/s - s/2)

and ``b_put(x, s) = b_call(-x, s)``. With ``h = x/s`` and ``t = s/2``, ``x = 2 h t`` and
``b = exp(-(h**2 + t**2)/2) / sqrt(2 pi) * (Y(h+t) - Y(h-t))`` where
``Y(z) = Phi(z)/phi(z) = sqrt(pi/2) erfcx(-z/sqrt(2))`` is the Mills ratio.

References
----------
Black, F. (1976), The pricing of commodity contracts, J. Financial Economics 3, 167-179,
doi:10.1016/0304-405X(76)90024-6.
Jaeckel, P. (2015), Let's be rational, Wilmott 2015(75), 40-53, doi:10.1002/wilm.10395.

Size: the numba kernels and their NumPy twins side by side, so each twin sits next to the
kernel it is tested against.
"""

from __future__ import annotations

import math

import numpy as np

from volguard._typing import BoolArray, FloatArray
from volguard.kernels._jit import jit, jit_parallel, prange
from volguard.kernels.normal import (
    ONE_OVER_SQRT_TWO,
    ONE_OVER_SQRT_TWO_PI,
    SQRT_PI_OVER_TWO,
    SQRT_TWO_PI,
    erfcx,
    erfcx_np,
    norm_cdf_fast,
    norm_cdf_np,
    norm_pdf_np,
)

ASYMPTOTIC_H = -10.0
"""Below ``h = x/s = -10`` (and ``h + t < -10 + TAU``) the asymptotic series of ``Y`` is used."""
UNDERFLOW_H = -38.0
"""Below ``h = -38`` the out-of-the-money normalised price is < 1e-314: returned as 0."""
SMALL_T = 2.0 * 2.220446049250313e-16 ** (1.0 / 6.0)
"""``tau = 2 eps**(1/6)``: below ``t = s/2 = tau`` the Taylor series in ``t`` is used."""
CDF_BRANCH = 0.85
"""Above ``h + t = 0.85`` the first Black term dominates and the plain formula is accurate."""


# ---------------------------------------------------------------------------------------------
# numba scalar kernels
# ---------------------------------------------------------------------------------------------


@jit
def _asymptotic_d(h: float, t: float) -> float:
    """``Y(h+t) - Y(h-t)`` for ``h < -10``, ``h + t < -10 + tau`` by the asymptotic series.

    With ``u = t/|h|``, ``w = |h| / ((h+t)(h-t))`` and ``P_m(u) = ((1+u)**m - (1-u)**m) / 2``::

        Y(h+t) - Y(h-t) = 2 sum_n (-1)**n (2n-1)!! P_{2n+1}(u) w**(2n+1)

    ``P`` and ``Q_m = ((1+u)**m + (1-u)**m) / 2`` follow the cancellation-free recursion
    ``P_{m+2} = (1+u**2) P_m + 2u Q_m``, ``Q_{m+2} = (1+u**2) Q_m + 2u P_m``.
    """
    ah = -h
    u = t / ah
    w = ah / ((h + t) * (h - t))
    w2 = w * w
    one_u2 = 1.0 + u * u
    two_u = 2.0 * u
    p = u
    q = 1.0
    wp = w
    total = p * wp
    dfact = 1.0
    for n in range(1, 40):
        p, q = one_u2 * p + two_u * q, one_u2 * q + two_u * p
        wp *= w2
        dfact *= -(2.0 * n - 1.0)
        term = dfact * p * wp
        total += term
        if abs(term) <= 1e-17 * total:
            break
    return 2.0 * total


@jit
def _small_t_d(h: float, t: float) -> float:
    """``Y(h+t) - Y(h-t) = 2 sum_{k odd} Y^(k)(h) t**k / k!`` for ``t < tau``, up to ``t**9``.

    Derivatives of the Mills ratio: ``Y' = 1 + h Y``, ``Y^(n+1) = h Y^(n) + n Y^(n-1)``.
    """
    y0 = SQRT_PI_OVER_TWO * erfcx(-h * ONE_OVER_SQRT_TWO)
    y1 = 1.0 + h * y0
    y2 = y0 + h * y1
    y3 = h * y2 + 2.0 * y1
    y4 = h * y3 + 3.0 * y2
    y5 = h * y4 + 4.0 * y3
    y6 = h * y5 + 5.0 * y4
    y7 = h * y6 + 6.0 * y5
    y8 = h * y7 + 7.0 * y6
    y9 = h * y8 + 8.0 * y7
    t2 = t * t
    series = y1 + t2 * (y3 / 6.0 + t2 * (y5 / 120.0 + t2 * (y7 / 5040.0 + t2 * (y9 / 362880.0))))
    return 2.0 * t * series


@jit
def scaled_black_otm(x: float, s: float) -> tuple[float, float, bool]:
    """``(f, e, scaled)`` with ``b(x, s) = f * exp(e)`` if ``scaled`` else ``b = f``; ``x <= 0``.

    ``e = -(h**2 + t**2)/2`` is the exponent shared with the normalised vega, so that
    ``ln b`` and ``b'/b`` are available without underflow down to ``b ~ 1e-308`` and below.
    Four regions (Jaeckel 2015, section 3): asymptotic series (``h < -10``), Taylor series in
    ``t`` (``t < tau``), plain formula (``h + t > 0.85``), and the ``erfcx`` form otherwise.
    """
    if not (s > 0.0):
        return 0.0, 0.0, False
    h = x / s
    t = 0.5 * s
    e = -0.5 * (h * h + t * t)
    if h < ASYMPTOTIC_H and t < SMALL_T - h + ASYMPTOTIC_H:
        if h < -1e100:
            return 0.0, e, True
        return ONE_OVER_SQRT_TWO_PI * _asymptotic_d(h, t), e, True
    if t < SMALL_T:
        return ONE_OVER_SQRT_TWO_PI * _small_t_d(h, t), e, True
    if h + t > CDF_BRANCH:
        b = math.exp(0.5 * x) * norm_cdf_fast(h + t) - math.exp(-0.5 * x) * norm_cdf_fast(h - t)
        return b, 0.0, False
    d = erfcx(-(h + t) * ONE_OVER_SQRT_TWO) - erfcx(-(h - t) * ONE_OVER_SQRT_TWO)
    return 0.5 * d, e, True


@jit
def normalised_black_otm(x: float, s: float) -> float:
    """Normalised out-of-the-money Black call ``b(x, s)`` for ``x <= 0``, ``s >= 0``.

    Relative accuracy of a few 1e-16 (up to about 1e-13 next to region boundaries where the
    two Mills ratios nearly cancel); returns 0 where the value is below about 1e-314
    (``h < -38``) and for ``s <= 0``. See :func:`scaled_black_otm` for the regions.
    """
    if not (s > 0.0) or x < UNDERFLOW_H * s:
        return 0.0
    f, e, scaled = scaled_black_otm(x, s)
    return f * math.exp(e) if scaled else f


@jit
def normalised_vega(x: float, s: float) -> float:
    """``db/ds = exp(-(x**2/s**2 + s**2/4)/2) / sqrt(2 pi)`` (same for calls and puts)."""
    if not (s > 0.0):
        return 0.0
    h = x / s
    t = 0.5 * s
    return ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * (h * h + t * t))


@jit
def otm_time_value(sqrt_fk_d: float, x: float, s: float) -> float:
    """``sqrt_fk_d * b(x, s)`` for ``x <= 0``, rounded once even where it is subnormal.

    ``sqrt_fk_d = D sqrt(F K)``. Where ``exp(e)`` of :func:`scaled_black_otm` would leave the
    normal range the product is formed in logarithms, ``exp(e + ln(sqrt_fk_d f))``.
    """
    f, e, scaled = scaled_black_otm(x, s)
    if not scaled:
        return sqrt_fk_d * f
    if e > -700.0:
        return sqrt_fk_d * f * math.exp(e)
    if not (f > 0.0):
        return 0.0
    return math.exp(e + math.log(sqrt_fk_d * f))


@jit
def black76_price_scalar(
    forward: float, strike: float, t: float, vol: float, is_call: bool, discount: float
) -> float:
    """Black-76 price ``D * (intrinsic + sqrt(F K) b(-|x|, s))`` of one option, in USD."""
    intrinsic = max(forward - strike, 0.0) if is_call else max(strike - forward, 0.0)
    s = vol * math.sqrt(t)
    x = math.log(forward / strike)
    sqrt_fk_d = discount * math.sqrt(forward) * math.sqrt(strike)
    return discount * intrinsic + otm_time_value(sqrt_fk_d, -abs(x), s)


@jit
def _price_loop(
    forward: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    vol: FloatArray,
    is_call: BoolArray,
    discount: FloatArray,
    out: FloatArray,
) -> None:
    for i in range(out.shape[0]):
        out[i] = black76_price_scalar(forward[i], strike[i], t[i], vol[i], is_call[i], discount[i])


@jit_parallel
def _price_loop_parallel(
    forward: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    vol: FloatArray,
    is_call: BoolArray,
    discount: FloatArray,
    out: FloatArray,
) -> None:
    for i in prange(out.shape[0]):
        out[i] = black76_price_scalar(forward[i], strike[i], t[i], vol[i], is_call[i], discount[i])


@jit
def _greeks_one(
    forward: float,
    strike: float,
    t: float,
    vol: float,
    is_call: bool,
    discount: float,
    out: FloatArray,
    i: int,
) -> None:
    """Price, delta, gamma, vega, theta, vanna, volga of option ``i`` into ``out[:, i]``.

    One pass: the Gaussian factor ``exp(-(h**2 + t**2)/2)`` of the normalised price is reused
    for ``phi(d1) = exp(-(h**2 + t**2)/2) sqrt(K/F) / sqrt(2 pi)`` and, in the erfcx region of
    the price (most options), the price's two ``erfcx`` values give ``Phi(d1)`` too
    (``Phi(z) = exp(-z**2/2) erfcx(-z/sqrt 2) / 2``): the whole set costs two ``erfcx``, one
    ``exp`` and one ``log``. Elsewhere the price comes from :func:`scaled_black_otm` and the
    delta from one more ``erfcx``.
    """
    sqrt_t = math.sqrt(t)
    s = vol * sqrt_t
    ratio = strike / forward
    x = -math.log(ratio)
    intrinsic = max(forward - strike, 0.0) if is_call else max(strike - forward, 0.0)
    sqrt_kf = math.sqrt(ratio)  # sqrt(K/F) = exp(-x/2)
    sqrt_fk_d = discount * forward * sqrt_kf
    if not (s > 0.0):
        out[0, i] = discount * intrinsic
        itm = forward > strike if is_call else forward < strike
        sign = 1.0 if is_call else -1.0
        out[1, i] = discount * sign if itm else 0.0
        for k in range(2, 7):
            out[k, i] = 0.0
        return
    inv_s = 1.0 / s
    h = x * inv_s
    t_half = 0.5 * s
    d1 = h + t_half
    d2 = d1 - s
    h_o = -abs(h)  # the out-of-the-money reduction: x -> -|x|
    a = h_o + t_half
    e = -0.5 * (h * h + t_half * t_half)
    asymptotic = h_o < ASYMPTOTIC_H and t_half < SMALL_T - h_o + ASYMPTOTIC_H
    if not asymptotic and t_half >= SMALL_T and a <= CDF_BRANCH and e > -700.0:
        # erfcx region of the normalised price: Phi(+-d1) reuses its two erfcx values,
        # Phi(z) = exp(-z^2/2) erfcx(-z/sqrt 2) / 2 with d1 = a (x <= 0) or -c (x > 0)
        ea = erfcx(-a * ONE_OVER_SQRT_TWO)
        ec = erfcx(-(h_o - t_half) * ONE_OVER_SQRT_TWO)
        gauss = math.exp(e)
        tv = sqrt_fk_d * 0.5 * (ea - ec) * gauss
        pdf = ONE_OVER_SQRT_TWO_PI * gauss * sqrt_kf
        half_g = 0.5 * gauss * sqrt_kf  # exp(-d1^2/2) / 2
        if x <= 0.0:
            cdf_d1 = half_g * ea
            cdf_md1 = 1.0 - cdf_d1
        else:
            cdf_md1 = half_g * ec
            cdf_d1 = 1.0 - cdf_md1
    else:
        f_b, _e_b, scaled = scaled_black_otm(-abs(x), s)
        if e > -700.0:
            gauss = math.exp(e)
            tv = sqrt_fk_d * f_b * (gauss if scaled else 1.0)
            pdf = ONE_OVER_SQRT_TWO_PI * gauss * sqrt_kf
        else:
            tv = math.exp(e + math.log(sqrt_fk_d * f_b)) if (scaled and f_b > 0.0) else 0.0
            if not scaled:
                tv = sqrt_fk_d * f_b
            pdf = ONE_OVER_SQRT_TWO_PI * math.exp(e - 0.5 * x)
        tail = 0.5 * SQRT_TWO_PI * pdf * erfcx(abs(d1) * ONE_OVER_SQRT_TWO)
        cdf_d1 = tail if d1 < 0.0 else 1.0 - tail
        cdf_md1 = tail if d1 > 0.0 else 1.0 - tail
    out[0, i] = discount * intrinsic + tv
    out[1, i] = discount * cdf_d1 if is_call else -discount * cdf_md1
    dpdf = discount * pdf
    out[2, i] = dpdf * inv_s / forward
    vega = dpdf * forward * sqrt_t
    out[3, i] = vega
    out[4, i] = -0.5 * dpdf * forward * vol * vol * inv_s  # vol / sqrt(t) = vol**2 / s
    inv_vol = 1.0 / vol
    out[5, i] = -dpdf * d2 * inv_vol
    out[6, i] = vega * d1 * d2 * inv_vol


@jit
def _greeks_loop(
    forward: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    vol: FloatArray,
    is_call: BoolArray,
    discount: FloatArray,
    out: FloatArray,
) -> None:
    for i in range(out.shape[1]):
        _greeks_one(forward[i], strike[i], t[i], vol[i], is_call[i], discount[i], out, i)


@jit_parallel
def _greeks_loop_parallel(
    forward: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    vol: FloatArray,
    is_call: BoolArray,
    discount: FloatArray,
    out: FloatArray,
) -> None:
    for i in prange(out.shape[1]):
        _greeks_one(forward[i], strike[i], t[i], vol[i], is_call[i], discount[i], out, i)


GREEK_NAMES: tuple[str, ...] = ("price", "delta", "gamma", "vega", "theta", "vanna", "volga")
"""Rows of the array returned by :func:`greeks_kernel`, in order."""


def price_kernel(
    forward: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    vol: FloatArray,
    is_call: BoolArray,
    discount: FloatArray,
    *,
    parallel: bool = True,
) -> FloatArray:
    """Black-76 prices (USD) of 1-D validated arrays of one length (numba)."""
    out = np.empty(forward.shape[0], dtype=np.float64)
    loop = _price_loop_parallel if parallel else _price_loop
    loop(forward, strike, t, vol, is_call, discount, out)
    return out


def greeks_kernel(
    forward: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    vol: FloatArray,
    is_call: BoolArray,
    discount: FloatArray,
    *,
    parallel: bool = True,
) -> FloatArray:
    """Array of shape ``(7, n)``: the rows of :data:`GREEK_NAMES` (numba)."""
    out = np.empty((len(GREEK_NAMES), forward.shape[0]), dtype=np.float64)
    loop = _greeks_loop_parallel if parallel else _greeks_loop
    loop(forward, strike, t, vol, is_call, discount, out)
    return out


# ---------------------------------------------------------------------------------------------
# plain-NumPy twin
# ---------------------------------------------------------------------------------------------


def _asymptotic_d_np(h: FloatArray, t: FloatArray) -> FloatArray:
    ah = -h
    u = t / ah
    w = ah / ((h + t) * (h - t))
    w2 = w * w
    one_u2 = 1.0 + u * u
    two_u = 2.0 * u
    p = u.copy()
    q = np.ones_like(u)
    wp = w.copy()
    total = p * wp
    dfact = 1.0
    for n in range(1, 40):
        p, q = one_u2 * p + two_u * q, one_u2 * q + two_u * p
        wp = wp * w2
        dfact *= -(2.0 * n - 1.0)
        term = dfact * p * wp
        total = total + term
        if np.all(np.abs(term) <= 1e-17 * total):
            break
    return np.asarray(2.0 * total, dtype=np.float64)


def _small_t_d_np(h: FloatArray, t: FloatArray) -> FloatArray:
    y0 = SQRT_PI_OVER_TWO * erfcx_np(-h * ONE_OVER_SQRT_TWO)
    y1 = 1.0 + h * y0
    y2 = y0 + h * y1
    y3 = h * y2 + 2.0 * y1
    y4 = h * y3 + 3.0 * y2
    y5 = h * y4 + 4.0 * y3
    y6 = h * y5 + 5.0 * y4
    y7 = h * y6 + 6.0 * y5
    y8 = h * y7 + 7.0 * y6
    y9 = h * y8 + 8.0 * y7
    t2 = t * t
    series = y1 + t2 * (y3 / 6.0 + t2 * (y5 / 120.0 + t2 * (y7 / 5040.0 + t2 * (y9 / 362880.0))))
    return np.asarray(2.0 * t * series, dtype=np.float64)


def scaled_black_otm_np(x: FloatArray, s: FloatArray) -> tuple[FloatArray, FloatArray, BoolArray]:
    """NumPy twin of :func:`scaled_black_otm`: ``b = f * exp(e)`` where ``scaled``, else ``f``."""
    x, s = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(s, dtype=np.float64))
    f = np.zeros(x.shape, dtype=np.float64)
    pos = s > 0.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        h = np.where(pos, x / np.where(pos, s, 1.0), -np.inf)
        t = 0.5 * s
        e = np.where(pos, -0.5 * (h * h + t * t), 0.0)
        asym = pos & (h < ASYMPTOTIC_H) & (t < SMALL_T - h + ASYMPTOTIC_H)
        live_asym = asym & (h >= -1e100)
        small = pos & ~asym & (t < SMALL_T)
        cdf = pos & ~asym & ~small & (h + t > CDF_BRANCH)
        rest = pos & ~asym & ~small & ~cdf
        for mask, fn in ((live_asym, _asymptotic_d_np), (small, _small_t_d_np)):
            if mask.any():
                f[mask] = ONE_OVER_SQRT_TWO_PI * fn(h[mask], t[mask])
        if cdf.any():
            hm, tm, xm = h[cdf], t[cdf], x[cdf]
            f[cdf] = np.exp(0.5 * xm) * norm_cdf_np(hm + tm) - np.exp(-0.5 * xm) * norm_cdf_np(
                hm - tm
            )
        if rest.any():
            hm, tm = h[rest], t[rest]
            f[rest] = 0.5 * (
                erfcx_np(-(hm + tm) * ONE_OVER_SQRT_TWO) - erfcx_np(-(hm - tm) * ONE_OVER_SQRT_TWO)
            )
    scaled = pos & ~cdf
    return f, np.where(scaled, e, 0.0), scaled


def normalised_black_otm_np(x: FloatArray, s: FloatArray) -> FloatArray:
    """NumPy twin of :func:`normalised_black_otm` (same regions, same formulas)."""
    f, e, scaled = scaled_black_otm_np(x, s)
    x, s = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(s, dtype=np.float64))
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        out = np.where(scaled, f * np.exp(e), f)
    return np.asarray(np.where((s > 0.0) & (x >= UNDERFLOW_H * s), out, 0.0), dtype=np.float64)


def normalised_vega_np(x: FloatArray, s: FloatArray) -> FloatArray:
    """NumPy twin of :func:`normalised_vega`."""
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        h = np.where(s > 0.0, x / np.where(s > 0.0, s, 1.0), -np.inf)
        t = 0.5 * s
        return np.asarray(ONE_OVER_SQRT_TWO_PI * np.exp(-0.5 * (h * h + t * t)), dtype=np.float64)


def price_np(
    forward: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    vol: FloatArray,
    is_call: BoolArray,
    discount: FloatArray,
) -> FloatArray:
    """NumPy twin of :func:`price_kernel`."""
    intrinsic = np.where(
        is_call, np.maximum(forward - strike, 0.0), np.maximum(strike - forward, 0.0)
    )
    s = vol * np.sqrt(t)
    x = np.log(forward / strike)
    sqrt_fk_d = discount * np.sqrt(forward) * np.sqrt(strike)
    f, e, scaled = scaled_black_otm_np(-np.abs(x), s)
    with np.errstate(divide="ignore", under="ignore", over="ignore", invalid="ignore"):
        direct = sqrt_fk_d * f * np.exp(e)
        via_log = np.where(f > 0.0, np.exp(e + np.log(np.where(f > 0.0, sqrt_fk_d * f, 1.0))), 0.0)
        tv = np.where(scaled, np.where(e > -700.0, direct, via_log), sqrt_fk_d * f)
    return np.asarray(discount * intrinsic + tv, dtype=np.float64)


def greeks_np(
    forward: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    vol: FloatArray,
    is_call: BoolArray,
    discount: FloatArray,
) -> FloatArray:
    """NumPy twin of :func:`greeks_kernel`: array ``(7, n)`` in the order of GREEK_NAMES."""
    out = np.zeros((len(GREEK_NAMES), forward.shape[0]), dtype=np.float64)
    out[0] = price_np(forward, strike, t, vol, is_call, discount)
    sqrt_t = np.sqrt(t)
    s = vol * sqrt_t
    x = np.log(forward / strike)
    pos = s > 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.where(pos, x / np.where(pos, s, 1.0) + 0.5 * s, 0.0)
        d2 = d1 - s
        dpdf = discount * norm_pdf_np(d1)
        delta = np.where(is_call, discount * norm_cdf_np(d1), -discount * norm_cdf_np(-d1))
        itm = np.where(is_call, forward > strike, forward < strike)
        delta0 = np.where(itm, np.where(is_call, discount, -discount), 0.0)
        out[1] = np.where(pos, delta, delta0)
        vega = dpdf * forward * sqrt_t
        out[2] = np.where(pos, dpdf / (forward * s), 0.0)
        out[3] = np.where(pos, vega, 0.0)
        out[4] = np.where(pos, -0.5 * dpdf * forward * vol / sqrt_t, 0.0)
        out[5] = np.where(pos, -dpdf * d2 / vol, 0.0)
        out[6] = np.where(pos, vega * d1 * d2 / vol, 0.0)
    return out
