"""Plain-NumPy twin of :mod:`volguard.kernels.lets_be_rational` (same algorithm, vectorised).

Every branch is evaluated with boolean masks over whole arrays; the special functions come
from :mod:`scipy.special` instead of our numba versions (the starting values use the exact
``ndtri``), so agreement of the two modules checks the algorithm, not a shared helper. It is the
reference for tests and a fallback where numba is unwanted; it is several times slower.

References
----------
Jaeckel, P. (2015), Let's be rational, Wilmott 2015(75), 40-53, doi:10.1002/wilm.10395.
Jaeckel, P. (2017), Let's be rational, revised working paper and reference source with the
third-order Householder iteration limited to two steps, http://www.jaeckel.org.
"""

from __future__ import annotations

import numpy as np

from volguard._typing import BoolArray, FloatArray
from volguard.kernels.black76 import normalised_vega_np, scaled_black_otm_np
from volguard.kernels.lets_be_rational import (
    ABOVE_UPPER_BOUND,
    BELOW_INTRINSIC,
    DBL_EPSILON,
    DBL_MAX,
    DBL_MIN,
    HOUSEHOLDER_STEPS,
    ILL_POSED,
    ILL_POSED_ULPS,
    INVALID_INPUT,
    MAX_RATIONAL_CUBIC_R,
    MIN_RATIONAL_CUBIC_R,
    NON_FINITE_INPUT,
    OK,
    ONE_OVER_SQRT_THREE,
    PI_OVER_SIX,
    SQRT_DBL_MAX,
    SQRT_PI_OVER_TWO,
    SQRT_THREE,
    TINY_BETA,
    TWO_PI,
    TWO_PI_OVER_SQRT_27,
    ZERO_TIME,
    Int8Array,
)
from volguard.kernels.normal import (
    ONE_OVER_SQRT_TWO_PI,
    inverse_norm_cdf_np,
    norm_cdf_np,
    norm_pdf_np,
)


def _rational_cubic(
    x: FloatArray,
    x_l: FloatArray,
    x_r: FloatArray,
    y_l: FloatArray,
    y_r: FloatArray,
    d_l: FloatArray,
    d_r: FloatArray,
    r: FloatArray,
) -> FloatArray:
    h = x_r - x_l
    t = (x - x_l) / np.where(h != 0.0, h, 1.0)
    omt = 1.0 - t
    t2 = t * t
    omt2 = omt * omt
    num = (
        y_r * t2 * t
        + (r * y_r - h * d_r) * t2 * omt
        + (r * y_l + h * d_l) * t * omt2
        + y_l * omt2 * omt
    )
    cubic = num / (1.0 + (r - 3.0) * t * omt)
    linear = y_r * t + y_l * (1.0 - t)
    out = np.where(r < MAX_RATIONAL_CUBIC_R, cubic, linear)
    return np.asarray(np.where(h != 0.0, out, 0.5 * (y_l + y_r)), dtype=np.float64)


def _minimum_r(d_l: FloatArray, d_r: FloatArray, slope: FloatArray, prefer: bool) -> FloatArray:
    monotonic = (d_l * slope >= 0.0) & (d_r * slope >= 0.0)
    convex = (d_l <= slope) & (slope <= d_r)
    concave = (d_l >= slope) & (slope >= d_r)
    shaped = convex | concave
    r1 = np.where(
        monotonic,
        np.where(
            slope != 0.0,
            (d_r + d_l) / np.where(slope != 0.0, slope, 1.0),
            MAX_RATIONAL_CUBIC_R if prefer else -DBL_MAX,
        ),
        -DBL_MAX,
    )
    s_m_dl = slope - d_l
    dr_m_s = d_r - slope
    both = (s_m_dl != 0.0) & (dr_m_s != 0.0)
    dr_m_dl = d_r - d_l
    r_shape = np.maximum(
        np.abs(dr_m_dl / np.where(both, dr_m_s, 1.0)),
        np.abs(dr_m_dl / np.where(both, s_m_dl, 1.0)),
    )
    fallback = MAX_RATIONAL_CUBIC_R if prefer else -DBL_MAX
    r2 = np.where(shaped, np.where(both, r_shape, fallback), -DBL_MAX)
    r2 = np.where(~shaped & monotonic & prefer, MAX_RATIONAL_CUBIC_R, r2)
    out = np.maximum(MIN_RATIONAL_CUBIC_R, np.maximum(r1, r2))
    return np.asarray(np.where(monotonic | shaped, out, MIN_RATIONAL_CUBIC_R), dtype=np.float64)


def _r_fit(
    x_l: FloatArray,
    x_r: FloatArray,
    y_l: FloatArray,
    y_r: FloatArray,
    d_l: FloatArray,
    d_r: FloatArray,
    second: FloatArray,
    prefer: bool,
    *,
    left: bool,
) -> FloatArray:
    h = x_r - x_l
    slope = (y_r - y_l) / h
    num = 0.5 * h * second + (d_r - d_l)
    den = slope - d_l if left else d_r - slope
    r = np.where(
        den != 0.0,
        num / np.where(den != 0.0, den, 1.0),
        np.where(num > 0.0, MAX_RATIONAL_CUBIC_R, MIN_RATIONAL_CUBIC_R),
    )
    return np.maximum(r, _minimum_r(d_l, d_r, slope, prefer))


def _lower_map(x: FloatArray, s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    ax = np.abs(x)
    z = ONE_OVER_SQRT_THREE * ax / s
    y = z * z
    s2 = s * s
    phi_m = norm_cdf_np(-z)
    pdf = norm_pdf_np(z)
    fpp = (
        PI_OVER_SIX
        * y
        / (s2 * s)
        * phi_m
        * (8.0 * SQRT_THREE * s * ax + (3.0 * s2 * (s2 - 8.0) - 8.0 * x * x) * phi_m / pdf)
        * np.exp(2.0 * y + 0.25 * s2)
    )
    phi2 = phi_m * phi_m
    fp = TWO_PI * y * phi2 * np.exp(y + 0.125 * s2)
    f = TWO_PI_OVER_SQRT_27 * ax * (phi2 * phi_m)
    return f, fp, fpp


def _upper_map(x: FloatArray, s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    f = norm_cdf_np(-0.5 * s)
    w = (x / s) ** 2
    fp = -0.5 * np.exp(0.5 * w)
    fpp = SQRT_PI_OVER_TWO * np.exp(w + 0.125 * s * s) * w / s
    return f, fp, fpp


def normalised_implied_vol_otm_np(
    beta: FloatArray, x: FloatArray, ln_beta: FloatArray
) -> FloatArray:
    """NumPy twin of :func:`~volguard.kernels.lets_be_rational.normalised_implied_vol_otm`."""
    one = np.ones_like(beta)
    zero = np.zeros_like(beta)
    b_max = np.exp(0.5 * x)
    s_c = np.sqrt(-2.0 * x)
    f_c, e_c, sc_c = scaled_black_otm_np(x, s_c)
    b_c = np.where(sc_c, f_c * np.exp(e_c), f_c)
    v_c = np.where(s_c > 0.0, normalised_vega_np(x, s_c), ONE_OVER_SQRT_TWO_PI)
    lower = beta < b_c
    # lower half
    s_l = s_c - b_c / v_c
    f_lb, e_lb, sc_lb = scaled_black_otm_np(x, s_l)
    b_l = np.where(sc_lb, f_lb * np.exp(e_lb), f_lb)
    lowest = lower & (beta < b_l)
    f_l, fp_l, fpp_l = _lower_map(x, s_l)
    r_ll = _r_fit(zero, b_l, zero, f_l, one, fp_l, fpp_l, True, left=False)
    f_low = _rational_cubic(beta, zero, b_l, zero, f_l, one, fp_l, r_ll)
    u = beta / b_l
    f_low = np.where(f_low > 0.0, f_low, (f_l * u + b_l * (1.0 - u)) * u)
    p_low = np.cbrt(f_low / (TWO_PI_OVER_SQRT_27 * np.abs(x)))
    tiny = beta <= TINY_BETA * b_l
    p_low = np.where(tiny, np.exp((ln_beta - np.log(TWO_PI_OVER_SQRT_27 * np.abs(x))) / 3.0), p_low)
    s_low = np.abs(x / (SQRT_THREE * inverse_norm_cdf_np(p_low)))
    s_low = np.where(p_low > 0.0, s_low, 0.0)
    v_l = normalised_vega_np(x, s_l)
    r_lm = _r_fit(b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, zero, False, left=False)
    s_lm = _rational_cubic(beta, b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, r_lm)
    # upper half
    s_h = np.where(v_c > DBL_MIN, s_c + (b_max - b_c) / v_c, s_c)
    f_hb, e_hb, sc_hb = scaled_black_otm_np(x, s_h)
    b_h = np.where(sc_hb, f_hb * np.exp(e_hb), f_hb)
    upper_mid = ~lower & (beta <= b_h)
    v_h = normalised_vega_np(x, s_h)
    r_hm = _r_fit(b_c, b_h, s_c, s_h, 1.0 / v_c, 1.0 / v_h, zero, False, left=True)
    s_hm = _rational_cubic(beta, b_c, b_h, s_c, s_h, 1.0 / v_c, 1.0 / v_h, r_hm)
    f_h, fp_h, fpp_h = _upper_map(x, s_h)
    finite = (fpp_h > -SQRT_DBL_MAX) & (fpp_h < SQRT_DBL_MAX)
    r_hh = _r_fit(
        b_h, b_max, f_h, zero, fp_h, -0.5 * one, np.where(finite, fpp_h, 0.0), True, left=True
    )
    f_high = np.where(
        finite, _rational_cubic(beta, b_h, b_max, f_h, zero, fp_h, -0.5 * one, r_hh), -1.0
    )
    hh = b_max - b_h
    uh = (beta - b_h) / hh
    f_high = np.where(f_high > 0.0, f_high, (f_h * (1.0 - uh) + 0.5 * hh * uh) * (1.0 - uh))
    s_high = -2.0 * inverse_norm_cdf_np(f_high)
    highest = ~lower & ~upper_mid
    # pick the branch
    s = np.select([lowest, lower, upper_mid], [s_low, s_lm, s_hm], s_high)
    s_left = np.select([lowest, lower, upper_mid], [zero, s_l, s_c], s_h)
    s_right = np.select([lowest, lower, upper_mid], [s_l, s_c, s_h], np.inf)
    mode = np.select([lowest, highest & (beta > 0.5 * b_max)], [1, 2], 0)
    s = _bounded(s, s, s_left, s_right)
    ln_bmax_m_beta = np.log(np.where(mode == 2, b_max - beta, 1.0))
    active = np.ones(beta.shape, dtype=bool)
    for _ in range(HOUSEHOLDER_STEPS):
        f_s, e_s, scaled = scaled_black_otm_np(x, s)
        h = x / s
        t = 0.5 * s
        ev = np.exp(np.where(scaled, e_s, -0.5 * (h * h + t * t)))
        b = np.where(scaled, f_s * ev, f_s)
        bp = ONE_OVER_SQRT_TWO_PI * ev
        b2 = h * h / s - 0.25 * s
        b3 = b2 * b2 - 3.0 * (h / s) ** 2 - 0.25
        # lowest branch: g = 1/ln b - 1/ln beta
        f_pos = np.where(f_s > 0.0, f_s, 1.0)
        ln_b = np.where(scaled, e_s + np.log(f_pos), np.log(f_pos))
        bpob = np.where(scaled, ONE_OVER_SQRT_TWO_PI / f_pos, bp / f_pos)
        c = (ln_b + 2.0) / ln_b
        nu1 = (ln_beta - ln_b) * ln_b / ln_beta / bpob
        h2_1 = b2 - bpob * c
        h3_1 = (
            b3
            + bpob * bpob * 2.0 * (ln_b * ln_b + 3.0 * ln_b + 3.0) / (ln_b * ln_b)
            - 3.0 * b2 * bpob * c
        )
        # highest branch: g = ln((b_max - beta)/(b_max - b))
        bm_b = b_max - b
        q = bp / np.where(bm_b > 0.0, bm_b, 1.0)
        nu2 = -(ln_bmax_m_beta - np.log(np.where(bm_b > 0.0, bm_b, 1.0))) / q
        h2_2 = q + b2
        h3_2 = 2.0 * q * q + 3.0 * q * b2 + b3
        # middle: g = b - beta
        nu0 = (beta - b) / bp
        nu = np.select([mode == 1, mode == 2], [nu1, nu2], nu0)
        h2 = np.select([mode == 1, mode == 2], [h2_1, h2_2], b2)
        h3 = np.select([mode == 1, mode == 2], [h3_1, h3_2], b3)
        ok = np.select(
            [mode == 1, mode == 2],
            [f_s > 0.0, (bm_b > DBL_MIN) & (bp > DBL_MIN)],
            bp > DBL_MIN,
        )
        active &= ok
        ds = nu * (1.0 + 0.5 * h2 * nu) / (1.0 + nu * (h2 + h3 * nu / 6.0))
        s = np.where(active, _bounded(s + ds, s, s_left, s_right), s)
    return np.asarray(s, dtype=np.float64)


def _bounded(
    s_new: FloatArray, s: FloatArray, s_left: FloatArray, s_right: FloatArray
) -> FloatArray:
    below = ~(s_new > s_left)
    above = ~(s_new < s_right)
    low = np.where(s > s_left, 0.5 * (s + s_left), s_left)
    high = np.where(s < s_right, 0.5 * (s + s_right), s_right)
    out = np.where(below, low, np.where(above, high, s_new))
    # a NaN starting value (no bracket information left) restarts inside the bracket
    restart = 0.5 * (s_left + np.minimum(s_right, 1.0))
    return np.asarray(np.where(np.isnan(out), restart, out), dtype=np.float64)


def implied_vol_np(
    price: FloatArray,
    forward: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    is_call: BoolArray,
    discount: FloatArray,
) -> tuple[FloatArray, Int8Array]:
    """NumPy twin of :func:`~volguard.kernels.lets_be_rational.implied_vol_kernel`.

    Same arguments (1-D float64 arrays of one length, ``is_call`` boolean), same result:
    ``(vol, status)`` with NaN volatility wherever ``status != 0``.
    """
    n = price.shape[0]
    status = np.full(n, OK, dtype=np.int8)
    vol = np.full(n, np.nan, dtype=np.float64)
    with np.errstate(all="ignore"):
        finite = (
            np.isfinite(price)
            & np.isfinite(forward)
            & np.isfinite(strike)
            & np.isfinite(t)
            & np.isfinite(discount)
        )
        invalid = finite & ((forward <= 0.0) | (strike <= 0.0) | (discount <= 0.0) | (t < 0.0))
        zero_t = finite & ~invalid & (t == 0.0)
        status[~finite] = NON_FINITE_INPUT
        status[invalid] = INVALID_INPUT
        status[zero_t] = ZERO_TIME
        live = finite & ~invalid & ~zero_t
        undiscounted = price / discount
        intrinsic = np.where(
            is_call, np.maximum(forward - strike, 0.0), np.maximum(strike - forward, 0.0)
        )
        upper = np.where(is_call, forward, strike)
        above = live & (undiscounted >= upper)
        status[above] = ABOVE_UPPER_BOUND
        live &= ~above
        time_value = undiscounted - intrinsic
        tol = ILL_POSED_ULPS * DBL_EPSILON * np.abs(undiscounted)
        below = live & (time_value < -tol)
        status[below] = BELOW_INTRINSIC
        live &= ~below
        flat = live & (time_value <= tol)
        status[flat] = ILL_POSED
        live &= ~flat
        ratio = forward / strike
        x = np.where(
            (ratio > 0.0) & np.isfinite(ratio), np.log(ratio), np.log(forward) - np.log(strike)
        )
        x = -np.abs(x)
        beta = time_value / (np.sqrt(forward) * np.sqrt(strike))
        above2 = live & (beta >= np.exp(0.5 * x))
        status[above2] = ABOVE_UPPER_BOUND
        live &= ~above2
        if live.any():
            bl, xl, tvl = beta[live], x[live], time_value[live]
            ln_beta = np.where(
                bl > 1e-290,
                np.log(np.where(bl > 0.0, bl, 1.0)),
                np.log(tvl) - 0.5 * (np.log(forward[live]) + np.log(strike[live])),
            )
            s = normalised_implied_vol_otm_np(bl, xl, ln_beta)
            v = s / np.sqrt(t[live])
            good = (v > 0.0) & (v < np.inf)
            idx = np.flatnonzero(live)
            vol[idx[good]] = v[good]
            status[idx[~good]] = ILL_POSED
    return vol, status
