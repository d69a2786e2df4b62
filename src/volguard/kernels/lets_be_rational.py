"""Implied Black volatility by Jaeckel's "Let's Be Rational" (numba, serial and parallel).

Written from the published algorithm (Jaeckel 2015, 2017); the plain-NumPy twin is
:mod:`volguard.kernels.lets_be_rational_numpy` and is tested against this module.

Outline (normalised units: ``beta = time value / sqrt(F K)``, ``x = -|ln(F/K)|`` after
reduction to the out-of-the-money call by put-call parity, ``s = vol * sqrt(t)``):

1. The normalised price ``b(x, s)`` rises from 0 to ``b_max = exp(x/2)`` with an inflexion at
   ``s_c = sqrt(2|x|)``. The tangent at ``s_c`` defines ``s_l = s_c - b_c/v_c`` and
   ``s_h = s_c + (b_max - b_c)/v_c``, splitting the price axis into four branches.
2. Initial guess: a convexity-preserving rational cubic (Delbourgo and Gregory 1985) that
   interpolates ``s(beta)`` on the two middle branches; on the lowest branch it interpolates
   ``f_l(beta) = 2 pi |x| / sqrt(27) * Phi(-|x|/(sqrt(3) s))**3`` and on the highest
   ``f_h(beta) = Phi(-s/2)``, maps that are nearly linear in ``beta`` and invert in closed form.
3. Two third-order Householder steps (quartic convergence) on branch-specific objectives:
   ``1/ln b(s) - 1/ln beta`` (lowest), ``ln((b_max - beta)/(b_max - b(s)))`` (highest,
   ``beta > b_max/2``), and
   ``b(s) - beta`` otherwise. Each step is
   ``ds = nu (1 + h2 nu/2) / (1 + nu (h2 + h3 nu/6))`` with ``nu = -g/g'``, ``h2 = g''/g'``,
   ``h3 = g'''/g'``, built from ``b''/b' = x**2/s**3 - s/4`` and
   ``b'''/b' = (b''/b')**2 - 3 x**2/s**4 - 1/4``.

Inputs are assumed validated except for the conditions reported as status codes
(:class:`~volguard.kernels.status.IVStatus`); the kernels never raise.

References
----------
Jaeckel, P. (2015), Let's be rational, Wilmott 2015(75), 40-53, doi:10.1002/wilm.10395.
Jaeckel, P. (2017), Let's be rational, revised working paper and reference source with the
third-order Householder iteration limited to two steps, http://www.jaeckel.org.
Delbourgo, R. and Gregory, J. A. (1985), Shape preserving piecewise rational interpolation,
SIAM J. Sci. Stat. Comput. 6(4), 967-976, doi:10.1137/0906065.

Size: one published algorithm (rational initial guesses, Householder steps, the four
branches), kept whole so it reads against the paper.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from volguard._typing import BoolArray, FloatArray
from volguard.kernels._jit import jit, jit_parallel, prange
from volguard.kernels.black76 import normalised_black_otm, normalised_vega, scaled_black_otm
from volguard.kernels.normal import ONE_OVER_SQRT_TWO, ONE_OVER_SQRT_TWO_PI, erfcx

DBL_EPSILON = 2.220446049250313e-16
DBL_MIN = 2.2250738585072014e-308
DBL_MAX = 1.7976931348623157e308
SQRT_DBL_EPSILON = math.sqrt(DBL_EPSILON)
SQRT_DBL_MAX = math.sqrt(DBL_MAX)
TWO_PI = 2.0 * math.pi
TWO_PI_OVER_SQRT_27 = 2.0 * math.pi / math.sqrt(27.0)
SQRT_THREE = math.sqrt(3.0)
ONE_OVER_SQRT_THREE = 1.0 / math.sqrt(3.0)
PI_OVER_SIX = math.pi / 6.0
SQRT_PI_OVER_TWO = math.sqrt(0.5 * math.pi)
MIN_RATIONAL_CUBIC_R = -(1.0 - SQRT_DBL_EPSILON)
MAX_RATIONAL_CUBIC_R = 2.0 / (DBL_EPSILON * DBL_EPSILON)
ILL_POSED_ULPS = 4.0
"""Time value at or below ``4 * eps * price`` (undiscounted) is reported ``ill_posed``."""
CENTRE_ERFCX_MIN = 2.0 * (2.0 * DBL_EPSILON ** (1.0 / 6.0)) ** 2
"""Smallest ``|x|`` whose inflexion point ``s_c`` lies in the erfcx region (``t >= tau``)."""
CENTRE_ERFCX_MAX = 200.0
"""Largest ``|x|`` whose inflexion point lies above the asymptotic region (``h >= -10``)."""
TINY_BETA = 1e-100
"""Below ``beta = 1e-100 * b_l`` the lowest-branch map is inverted directly in logarithms."""
HOUSEHOLDER_STEPS = 2
"""Iterations after the rational guess; two reach float64 accuracy (Jaeckel 2017)."""

Int8Array = npt.NDArray[np.int8]

OK = 0
BELOW_INTRINSIC = 1
ABOVE_UPPER_BOUND = 2
ZERO_TIME = 3
NON_FINITE_INPUT = 4
ILL_POSED = 5
INVALID_INPUT = 6


# --- rational cubic interpolation (Delbourgo and Gregory 1985; Jaeckel 2015 section 5) -------


@jit
def rational_cubic(
    x: float, x_l: float, x_r: float, y_l: float, y_r: float, d_l: float, d_r: float, r: float
) -> float:
    """Rational cubic through ``(x_l, y_l)``, ``(x_r, y_r)`` with slopes ``d_l``, ``d_r``.

    ``R(t) = [y_r t^3 + (r y_r - h d_r) t^2 (1-t) + (r y_l + h d_l) t (1-t)^2 + y_l (1-t)^3]
    / [1 + (r - 3) t (1-t)]`` with ``h = x_r - x_l``, ``t = (x - x_l)/h``; ``r = 3`` is the
    cubic Hermite spline, ``r -> inf`` the straight line.
    """
    h = x_r - x_l
    if abs(h) <= 0.0:
        return 0.5 * (y_l + y_r)
    t = (x - x_l) / h
    if r < MAX_RATIONAL_CUBIC_R:
        omt = 1.0 - t
        t2 = t * t
        omt2 = omt * omt
        num = (
            y_r * t2 * t
            + (r * y_r - h * d_r) * t2 * omt
            + (r * y_l + h * d_l) * t * omt2
            + y_l * omt2 * omt
        )
        return num / (1.0 + (r - 3.0) * t * omt)
    return y_r * t + y_l * (1.0 - t)


@jit
def _minimum_r(d_l: float, d_r: float, slope: float, prefer_shape: bool) -> float:
    """Smallest control parameter keeping the interpolant monotone and convex/concave."""
    monotonic = d_l * slope >= 0.0 and d_r * slope >= 0.0
    convex = d_l <= slope <= d_r
    concave = d_l >= slope >= d_r
    if not monotonic and not convex and not concave:
        return MIN_RATIONAL_CUBIC_R
    r1 = -DBL_MAX
    r2 = -DBL_MAX
    if monotonic:
        if slope != 0.0:
            r1 = (d_r + d_l) / slope
        elif prefer_shape:
            r1 = MAX_RATIONAL_CUBIC_R
    if convex or concave:
        s_m_dl = slope - d_l
        dr_m_s = d_r - slope
        if s_m_dl != 0.0 and dr_m_s != 0.0:
            dr_m_dl = d_r - d_l
            r2 = max(abs(dr_m_dl / dr_m_s), abs(dr_m_dl / s_m_dl))
        elif prefer_shape:
            r2 = MAX_RATIONAL_CUBIC_R
    elif monotonic and prefer_shape:
        r2 = MAX_RATIONAL_CUBIC_R
    return max(MIN_RATIONAL_CUBIC_R, max(r1, r2))


@jit
def _r_fit_left(
    x_l: float,
    x_r: float,
    y_l: float,
    y_r: float,
    d_l: float,
    d_r: float,
    second_l: float,
    prefer_shape: bool,
) -> float:
    """Control parameter matching ``second_l`` at ``x_l``, raised to the shape minimum."""
    h = x_r - x_l
    num = 0.5 * h * second_l + (d_r - d_l)
    den = (y_r - y_l) / h - d_l
    r = num / den if den != 0.0 else (MAX_RATIONAL_CUBIC_R if num > 0.0 else MIN_RATIONAL_CUBIC_R)
    return max(r, _minimum_r(d_l, d_r, (y_r - y_l) / h, prefer_shape))


@jit
def _r_fit_right(
    x_l: float,
    x_r: float,
    y_l: float,
    y_r: float,
    d_l: float,
    d_r: float,
    second_r: float,
    prefer_shape: bool,
) -> float:
    """Control parameter matching ``second_r`` at ``x_r``, raised to the shape minimum."""
    h = x_r - x_l
    num = 0.5 * h * second_r + (d_r - d_l)
    den = d_r - (y_r - y_l) / h
    r = num / den if den != 0.0 else (MAX_RATIONAL_CUBIC_R if num > 0.0 else MIN_RATIONAL_CUBIC_R)
    return max(r, _minimum_r(d_l, d_r, (y_r - y_l) / h, prefer_shape))


# --- the two transformation maps of the outer branches ---------------------------------------


@jit
def _lower_map(x: float, s: float) -> tuple[float, float, float]:
    """``f_l`` and its first two derivatives in ``beta`` at ``s`` (lowest branch).

    ``f_l = 2 pi |x| / sqrt(27) Phi(-z)**3`` with ``z = |x|/(sqrt(3) s)``, ``y = z**2``:
    ``f_l' = 2 pi y Phi(-z)**2 exp(y + s**2/8)`` and
    ``f_l'' = pi/6 y/s**3 Phi(-z) (8 sqrt(3) s |x| + (3 s**2 (s**2 - 8) - 8 x**2)
    Phi(-z)/phi(z)) exp(2y + s**2/4)``.
    """
    ax = abs(x)
    z = ONE_OVER_SQRT_THREE * ax / s
    y = z * z
    s2 = s * s
    gauss = math.exp(-0.5 * y)  # sqrt(2 pi) phi(z)
    phi_m = 0.5 * gauss * erfcx(z * ONE_OVER_SQRT_TWO)  # Phi(-z), z >= 0
    pdf = gauss / math.sqrt(TWO_PI)
    growth = math.exp(y + 0.125 * s2)
    fpp = (
        PI_OVER_SIX
        * y
        / (s2 * s)
        * phi_m
        * (8.0 * SQRT_THREE * s * ax + (3.0 * s2 * (s2 - 8.0) - 8.0 * x * x) * phi_m / pdf)
        * (growth * growth)
    )
    phi2 = phi_m * phi_m
    fp = TWO_PI * y * phi2 * growth
    f = TWO_PI_OVER_SQRT_27 * ax * (phi2 * phi_m)
    return f, fp, fpp


@jit
def _inverse_lower_map(x: float, f: float) -> float:
    """``s`` with ``f_l(s) = f``: ``|x| / (sqrt(3) |Phi^-1((f sqrt(27)/(2 pi |x|))^(1/3))|)``."""
    if f <= 0.0:
        return 0.0
    p = (f / (TWO_PI_OVER_SQRT_27 * abs(x))) ** (1.0 / 3.0)
    return abs(x / (SQRT_THREE * _inverse_norm_cdf_guess(p)))


@jit
def _upper_map(x: float, s: float) -> tuple[float, float, float]:
    """``f_h = Phi(-s/2)``, ``f_h' = -exp(w/2)/2``, ``f_h'' = sqrt(pi/2) w/s exp(w + s**2/8)``,
    ``w = (x/s)**2`` (derivatives in ``beta``; highest branch)."""
    gauss = math.exp(-0.125 * s * s)  # sqrt(2 pi) phi(s/2)
    f = 0.5 * gauss * erfcx(0.5 * s * ONE_OVER_SQRT_TWO)  # Phi(-s/2)
    w = (x / s) ** 2
    half_w = math.exp(0.5 * w)
    fp = -0.5 * half_w
    fpp = SQRT_PI_OVER_TWO * (half_w * half_w / gauss) * w / s
    return f, fp, fpp


@jit
def _inverse_norm_cdf_guess(p: float) -> float:
    """``Phi^-1(p)`` for ``0 < p <= 1/2`` to about 4.5e-4 (Abramowitz and Stegun 26.2.23).

    Only used for starting values of the outer branches; the two third-order Householder steps
    then reach float64 accuracy (checked by the tests; a Halley polish of this value changed no
    result on the benchmark set and costs 10 % of the run time).
    """
    if not (p > 0.0):
        return -math.inf
    q = min(p, 0.5)
    t = math.sqrt(-2.0 * math.log(q))
    z = -(
        t
        - (2.515517 + t * (0.802853 + t * 0.010328))
        / (1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308)))
    )
    return z


# --- the solver ------------------------------------------------------------------------------


@jit
def _householder_step(nu: float, h2: float, h3: float) -> float:
    return nu * (1.0 + 0.5 * h2 * nu) / (1.0 + nu * (h2 + h3 * nu / 6.0))


@jit
def _bounded(s_new: float, s: float, s_left: float, s_right: float) -> float:
    """Keep an iterate inside the branch bracket (halve the distance to a crossed bound)."""
    if not (s_new > s_left):
        return 0.5 * (s + s_left) if s > s_left else s_left
    if not (s_new < s_right):
        return 0.5 * (s + s_right) if s < s_right else s_right
    return s_new


@jit
def normalised_implied_vol_otm(beta: float, x: float, ln_beta: float) -> float:
    """Total implied standard deviation ``s`` with ``b(x, s) = beta`` for ``x <= 0``.

    Requires ``0 < beta < exp(x/2)`` (checked by the caller); ``ln_beta = ln(beta)``, passed
    separately so that normalised prices below the float64 normal range (``beta`` subnormal
    or zero after normalisation) keep full relative accuracy on the lowest branch.
    """
    return _solve_otm(beta, x, ln_beta, math.exp(0.5 * x))


@jit
def _solve_otm(beta: float, x: float, ln_beta: float, b_max: float) -> float:
    """:func:`normalised_implied_vol_otm` with ``b_max = exp(x/2)`` already computed."""
    s_c = math.sqrt(-2.0 * x)
    # at the inflexion s_c = sqrt(2|x|): h = -t, exp(-(h^2 + t^2)/2) = b_max, so
    # b_c = b_max (erfcx(0) - erfcx(sqrt|x|)) / 2 and v_c = b_max / sqrt(2 pi)
    if CENTRE_ERFCX_MIN <= -x <= CENTRE_ERFCX_MAX:
        b_c = 0.5 * b_max * (1.0 - erfcx(s_c * ONE_OVER_SQRT_TWO))
    else:
        b_c = normalised_black_otm(x, s_c)
    v_c = ONE_OVER_SQRT_TWO_PI * b_max
    s_left = 0.0
    s_right = math.inf
    mode = 0  # 0: b - beta, 1: lowest (1/ln b), 2: highest (ln of distance to b_max)
    if beta < b_c:
        s_l = s_c - b_c / v_c
        b_l = normalised_black_otm(x, s_l)
        if beta < b_l:
            if beta > TINY_BETA * b_l:
                f_l, fp_l, fpp_l = _lower_map(x, s_l)
                r_ll = _r_fit_right(0.0, b_l, 0.0, f_l, 1.0, fp_l, fpp_l, True)
                f = rational_cubic(beta, 0.0, b_l, 0.0, f_l, 1.0, fp_l, r_ll)
                if not (f > 0.0):
                    u = beta / b_l
                    f = (f_l * u + b_l * (1.0 - u)) * u
                s = _inverse_lower_map(x, f)
            else:
                # f_l(beta) = beta (1 + O(beta)): invert the map in logarithms
                p = math.exp((ln_beta - math.log(TWO_PI_OVER_SQRT_27 * abs(x))) / 3.0)
                s = abs(x / (SQRT_THREE * _inverse_norm_cdf_guess(p)))
            s_right = s_l
            mode = 1
        else:
            v_l = normalised_vega(x, s_l)
            r_lm = _r_fit_right(b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, 0.0, False)
            s = rational_cubic(beta, b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, r_lm)
            s_left = s_l
            s_right = s_c
    else:
        s_h = s_c + (b_max - b_c) / v_c if v_c > DBL_MIN else s_c
        b_h = normalised_black_otm(x, s_h)
        if beta <= b_h:
            v_h = normalised_vega(x, s_h)
            r_hm = _r_fit_left(b_c, b_h, s_c, s_h, 1.0 / v_c, 1.0 / v_h, 0.0, False)
            s = rational_cubic(beta, b_c, b_h, s_c, s_h, 1.0 / v_c, 1.0 / v_h, r_hm)
            s_left = s_c
            s_right = s_h
        else:
            f_h, fp_h, fpp_h = _upper_map(x, s_h)
            f = -1.0
            if -SQRT_DBL_MAX < fpp_h < SQRT_DBL_MAX:
                r_hh = _r_fit_left(b_h, b_max, f_h, 0.0, fp_h, -0.5, fpp_h, True)
                f = rational_cubic(beta, b_h, b_max, f_h, 0.0, fp_h, -0.5, r_hh)
            if not (f > 0.0):
                hh = b_max - b_h
                u = (beta - b_h) / hh
                f = (f_h * (1.0 - u) + 0.5 * hh * u) * (1.0 - u)
            s = -2.0 * _inverse_norm_cdf_guess(f)
            s_left = s_h
            if beta > 0.5 * b_max:
                mode = 2
    if not (s > s_left and s < s_right):
        s = _bounded(s, s, s_left, s_right) if s > 0.0 else 0.5 * (s_left + min(s_right, 1.0))
    ln_bmax_m_beta = math.log(b_max - beta) if mode == 2 else 0.0
    for _ in range(HOUSEHOLDER_STEPS):
        f_s, e_s, scaled = scaled_black_otm(x, s)
        h = x / s
        t = 0.5 * s
        if scaled:
            ev = math.exp(e_s)
            b = f_s * ev
        else:
            ev = math.exp(-0.5 * (h * h + t * t))
            b = f_s
        bp = ONE_OVER_SQRT_TWO_PI * ev
        b2 = h * h / s - 0.25 * s
        b3 = b2 * b2 - 3.0 * (h / s) ** 2 - 0.25
        if mode == 1:
            if not (f_s > 0.0):
                break
            if scaled:
                ln_b = e_s + math.log(f_s)
                bpob = ONE_OVER_SQRT_TWO_PI / f_s
            else:
                ln_b = math.log(f_s)
                bpob = bp / f_s
            c = (ln_b + 2.0) / ln_b
            nu = (ln_beta - ln_b) * ln_b / ln_beta / bpob
            h2 = b2 - bpob * c
            h3 = b3 + bpob * bpob * 2.0 * (ln_b * ln_b + 3.0 * ln_b + 3.0) / (ln_b * ln_b)
            h3 -= 3.0 * b2 * bpob * c
        elif mode == 2:
            bm_b = b_max - b
            if not (bm_b > DBL_MIN and bp > DBL_MIN):
                break
            g = ln_bmax_m_beta - math.log(bm_b)
            q = bp / bm_b
            nu = -g / q
            h2 = q + b2
            h3 = 2.0 * q * q + 3.0 * q * b2 + b3
        else:
            if not (bp > DBL_MIN):
                break
            nu = (beta - b) / bp
            h2 = b2
            h3 = b3
        ds = _householder_step(nu, h2, h3)
        s = _bounded(s + ds, s, s_left, s_right)
    return s


@jit
def implied_vol_scalar(
    price: float,
    forward: float,
    strike: float,
    t: float,
    is_call: bool,
    discount: float,
) -> tuple[float, int]:
    """Implied Black-76 volatility and status code of one option (never raises).

    Parameters are as in :func:`implied_vol_kernel`; returns ``(vol, status)`` with ``vol``
    NaN unless ``status == 0`` (ok).
    """
    if not (
        math.isfinite(price)
        and math.isfinite(forward)
        and math.isfinite(strike)
        and math.isfinite(t)
        and math.isfinite(discount)
    ):
        return math.nan, NON_FINITE_INPUT
    if forward <= 0.0 or strike <= 0.0 or discount <= 0.0 or t < 0.0:
        return math.nan, INVALID_INPUT
    if t == 0.0:
        return math.nan, ZERO_TIME
    undiscounted = price / discount
    if is_call:
        intrinsic = max(forward - strike, 0.0)
        upper = forward
    else:
        intrinsic = max(strike - forward, 0.0)
        upper = strike
    if undiscounted >= upper:
        return math.nan, ABOVE_UPPER_BOUND
    time_value = undiscounted - intrinsic
    tol = ILL_POSED_ULPS * DBL_EPSILON * abs(undiscounted)
    if time_value < -tol:
        return math.nan, BELOW_INTRINSIC
    if time_value <= tol:
        return math.nan, ILL_POSED
    ratio = forward / strike
    x = math.log(ratio) if 0.0 < ratio < math.inf else math.log(forward) - math.log(strike)
    x = -abs(x)
    beta = time_value / (math.sqrt(forward) * math.sqrt(strike))
    b_max = math.exp(0.5 * x)
    if beta >= b_max:
        return math.nan, ABOVE_UPPER_BOUND
    if beta > 1e-290:
        ln_beta = math.log(beta)
    else:
        ln_beta = math.log(time_value) - 0.5 * (math.log(forward) + math.log(strike))
    s = _solve_otm(beta, x, ln_beta, b_max)
    vol = s / math.sqrt(t)
    if not (vol > 0.0 and vol < math.inf):
        return math.nan, ILL_POSED
    return vol, OK


@jit
def _iv_loop(
    price: FloatArray,
    forward: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    is_call: BoolArray,
    discount: FloatArray,
    vol: FloatArray,
    status: Int8Array,
) -> None:
    for i in range(vol.shape[0]):
        vol[i], status[i] = implied_vol_scalar(
            price[i], forward[i], strike[i], t[i], is_call[i], discount[i]
        )


@jit_parallel
def _iv_loop_parallel(
    price: FloatArray,
    forward: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    is_call: BoolArray,
    discount: FloatArray,
    vol: FloatArray,
    status: Int8Array,
) -> None:
    for i in prange(vol.shape[0]):
        vol[i], status[i] = implied_vol_scalar(
            price[i], forward[i], strike[i], t[i], is_call[i], discount[i]
        )


def implied_vol_kernel(
    price: FloatArray,
    forward: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    is_call: BoolArray,
    discount: FloatArray,
    *,
    parallel: bool = True,
) -> tuple[FloatArray, Int8Array]:
    """Implied Black-76 volatilities of 1-D float64 arrays of one length (numba).

    Parameters
    ----------
    price : ndarray, shape (n,)
        Option premium, USD per unit of underlying (discounted with ``discount``).
    forward, strike : ndarray, shape (n,)
        Forward and strike, USD.
    t : ndarray, shape (n,)
        Time to expiry, years.
    is_call : ndarray of bool, shape (n,)
    discount : ndarray, shape (n,)
        Discount factor of the premium.
    parallel : bool
        Use all numba threads (``numba.set_num_threads``) when True.

    Returns
    -------
    vol : ndarray, shape (n,)
        Volatility, decimal per sqrt(year); NaN where ``status != 0``.
    status : ndarray of int8, shape (n,)
        :class:`~volguard.kernels.status.IVStatus` codes.
    """
    n = price.shape[0]
    vol = np.empty(n, dtype=np.float64)
    status = np.empty(n, dtype=np.int8)
    loop = _iv_loop_parallel if parallel else _iv_loop
    loop(price, forward, strike, t, is_call, discount, vol, status)
    return vol, status
