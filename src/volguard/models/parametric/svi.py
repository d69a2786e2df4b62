"""``svi``: Gatheral's raw SVI smile per expiry, fitted by variable projection.

``w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2))``. With ``y = (k - m) / sigma`` the
slice is linear in ``(a, d, c) = (a, rho b sigma, b sigma)``: ``w = a + d y + c sqrt(y^2 + 1)``
(Zeliade 2009, "quasi-explicit calibration"). For each ``(m, sigma)`` the best ``(a, c, d)``
is a bounded linear least-squares problem in ``u = c + d`` and ``v = c - d``; the outer problem
is two-dimensional. The box ``0 <= u, v <= 2 sigma`` is ``b >= 0``, ``|rho| <= 1`` and Lee's
moment bound ``b (1 + |rho|) <= 2`` on the wings; ``a >= 0`` keeps ``w > 0``.

Two implementations of the same fit (same objective, same box, same bounds on ``(m, sigma)``):

- :func:`fit_svi_slice` (used by the engine): numba-compiled. The inner problem is solved exactly
  by enumerating the 27 faces of the box (each of ``a, u, v`` free, at its lower or at its upper
  bound), solving each face's reduced 3x3 normal system and keeping the best feasible solution
  (the minimum of a convex quadratic over a box lies in the relative interior of one face, where
  it is that face's unconstrained minimum). The outer problem is Nelder-Mead over
  ``(m, ln sigma)`` from the best points of a coarse grid and the reference start.
- :func:`fit_svi_slice_reference`: the NumPy/scipy twin (``lsq_linear`` BVLS inner problem,
  ``least_squares`` trust-region outer problem with a finite-difference Jacobian).

Fallback: a slice whose fit fails (too few quotes or a non-finite optimum) is fitted flat at
its at-the-money vol (``b = 0``), flagged in the result.

References
----------
Gatheral, J. (2004), A parsimonious arbitrage-free implied volatility parameterization with
application to the valuation of volatility derivatives, Global Derivatives & Risk Management.
Zeliade Systems (2009), Quasi-explicit calibration of Gatheral's SVI model, Zeliade white paper
ZWP-0005. Lee, R. (2004), The moment formula for implied volatility at extreme strikes,
Mathematical Finance 14(3), 469-480, doi:10.1111/j.0960-1627.2004.00200.x.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import least_squares, lsq_linear

from volguard._typing import FloatArray
from volguard.kernels._jit import jit
from volguard.market.smile import slice_atm_vol
from volguard.models.base import SliceEngine
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


def _slice_setup(
    k: FloatArray, t: float, vol: FloatArray, weight: FloatArray
) -> tuple[FloatArray, FloatArray, float, list[float], list[float], float]:
    """Targets, residual scales, box and ``(m, sigma)`` bounds and start shared by both fits.

    Residuals are in vol: total-variance errors are scaled by ``sqrt(weight) / (2 vol t)``.
    """
    w = vol**2 * t
    sw = np.sqrt(weight) / (2.0 * vol * t)
    w_max = float(np.max(w)) * 2.0
    span = max(float(k.max() - k.min()), 0.05)
    lo = [float(k.min()) - span, 1e-3]
    hi = [float(k.max()) + span, 2.0 * span + 1.0]
    m0 = float(np.clip(k[np.argmin(w)], lo[0], hi[0]))
    return w, sw, w_max, lo, hi, m0


def _to_raw(a: float, u: float, v: float, m: float, sigma: float) -> dict[str, float]:
    c, d = (u + v) / 2, (u - v) / 2
    b = c / sigma
    rho = d / c if c > 0 else 0.0
    return {"a": float(a), "b": float(b), "rho": float(rho), "m": float(m), "sigma": float(sigma)}


def fit_svi_slice_reference(
    k: FloatArray, t: float, vol: FloatArray, weight: FloatArray
) -> tuple[dict[str, float], bool, float]:
    """Reference twin of :func:`fit_svi_slice`: scipy ``lsq_linear`` inside ``least_squares``.

    Returns the raw parameters, the optimiser's success flag and the objective
    ``sum_i (sqrt(weight_i) (w_i - w(k_i)) / (2 vol_i t))^2`` (vol^2).
    """
    w, sw, w_max, lo, hi, m0 = _slice_setup(k, t, vol, weight)
    sol = least_squares(
        lambda p: _inner(p[0], p[1], k, w, sw, w_max)[1],
        x0=[m0, np.clip(0.2 * (hi[1] - 1.0) / 2.0, lo[1], hi[1])],
        bounds=(lo, hi),
        method="trf",
        x_scale="jac",
        xtol=1e-10,
        ftol=1e-12,
    )
    m, sigma = (float(x) for x in sol.x)
    (a, u, v), res = _inner(m, sigma, k, w, sw, w_max)
    return _to_raw(a, u, v, m, sigma), bool(sol.success), float(res @ res)


@jit
def _face_solve(
    ata: FloatArray,
    atb: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    out: FloatArray,
    work: FloatArray,
    free: np.ndarray,
) -> float:
    """Exact minimum of ``x' A x - 2 b' x`` over the box ``lower <= x <= upper`` (3 variables).

    Enumerates the 27 faces (each variable free, at its lower or at its upper bound), solves the
    free variables' normal system by Gaussian elimination with partial pivoting, keeps the
    feasible solutions and writes the best to ``out``; returns its value (``inf`` if none).
    ``work`` (15 floats) and ``free`` (3 integers) are scratch space.
    The all-free face comes first: when its solution is feasible it is the minimum (the
    quadratic is convex) and the other faces are skipped.
    """
    best = np.inf
    x = work[:3]
    mat = work[3:15].reshape((3, 4))
    for face in range(27):
        code = face
        nf = 0
        for j in range(3):
            state = code % 3
            code //= 3
            if state == 0:
                free[nf] = j
                nf += 1
                x[j] = 0.0
            elif state == 1:
                x[j] = lower[j]
            else:
                x[j] = upper[j]
        ok = True
        if nf > 0:
            for r in range(nf):
                i = free[r]
                rhs = atb[i]
                for j in range(3):
                    if x[j] != 0.0:
                        is_free = False
                        for q in range(nf):
                            if free[q] == j:
                                is_free = True
                        if not is_free:
                            rhs -= ata[i, j] * x[j]
                for c in range(nf):
                    mat[r, c] = ata[i, free[c]]
                mat[r, nf] = rhs
            scale = 0.0
            for r in range(nf):
                scale = max(scale, abs(mat[r, r]))
            for c in range(nf):  # forward elimination, partial pivoting
                piv = c
                for r in range(c + 1, nf):
                    if abs(mat[r, c]) > abs(mat[piv, c]):
                        piv = r
                if abs(mat[piv, c]) <= 1e-14 * scale:
                    ok = False
                    break
                if piv != c:
                    for q in range(nf + 1):
                        tmp = mat[c, q]
                        mat[c, q] = mat[piv, q]
                        mat[piv, q] = tmp
                for r in range(c + 1, nf):
                    f = mat[r, c] / mat[c, c]
                    for q in range(c, nf + 1):
                        mat[r, q] -= f * mat[c, q]
            if ok:
                for c in range(nf - 1, -1, -1):
                    acc = mat[c, nf]
                    for q in range(c + 1, nf):
                        acc -= mat[c, q] * x[free[q]]
                    x[free[c]] = acc / mat[c, c]
                for r in range(nf):
                    j = free[r]
                    tol = 1e-12 * (1.0 + upper[j])
                    if x[j] < lower[j] - tol or x[j] > upper[j] + tol:
                        ok = False
                    x[j] = min(max(x[j], lower[j]), upper[j])
        if not ok:
            continue
        val = 0.0
        for i in range(3):
            acc = -2.0 * atb[i]
            for j in range(3):
                acc += ata[i, j] * x[j]
            val += acc * x[i]
        if val < best:
            best = val
            for j in range(3):
                out[j] = x[j]
        if face == 0:  # all free and feasible: the unconstrained minimum is the box minimum
            break
    return best


@jit
def _vp_objective(
    m: float,
    sigma: float,
    k: FloatArray,
    w: FloatArray,
    sw: FloatArray,
    w_max: float,
    coef: FloatArray,
    work: FloatArray,
    free: np.ndarray,
    direct: bool,
) -> float:
    """Variable-projection objective at ``(m, sigma)``: the best ``(a, u, v)`` (into ``coef``)
    and its weighted sum of squared residuals.

    With ``direct`` the residuals are summed one by one (no cancellation: exact even at a zero
    residual); otherwise the sum is ``c0 + x' A x - 2 b' x`` from the normal equations (one
    pass; absolute rounding about 1e-16 ``c0``), which the search uses. ``work`` (33 floats)
    and ``free`` (3 integers) are scratch space."""
    a00 = a01 = a02 = a11 = a12 = a22 = 0.0
    b0 = b1 = b2 = c0 = 0.0
    for i in range(k.size):
        y = (k[i] - m) / sigma
        root = math.sqrt(y * y + 1.0)
        s = sw[i]
        x1 = s * 0.5 * (root + y)
        x2 = s * 0.5 * (root - y)
        target = s * w[i]
        a00 += s * s
        a01 += s * x1
        a02 += s * x2
        a11 += x1 * x1
        a12 += x1 * x2
        a22 += x2 * x2
        b0 += s * target
        b1 += x1 * target
        b2 += x2 * target
        c0 += target * target
    ata = work[15:24].reshape((3, 3))
    atb = work[24:27]
    ata[0, 0], ata[0, 1], ata[0, 2] = a00, a01, a02
    ata[1, 0], ata[1, 1], ata[1, 2] = a01, a11, a12
    ata[2, 0], ata[2, 1], ata[2, 2] = a02, a12, a22
    atb[0], atb[1], atb[2] = b0, b1, b2
    lower = work[27:30]
    upper = work[30:33]
    lower[:] = 0.0
    upper[0] = w_max
    upper[1] = LEE_SLOPE * sigma
    upper[2] = LEE_SLOPE * sigma
    quad = _face_solve(ata, atb, lower, upper, coef, work, free)
    if not np.isfinite(quad):
        return np.inf
    if not direct:
        return max(c0 + quad, 0.0)
    total = 0.0
    for i in range(k.size):
        y = (k[i] - m) / sigma
        root = math.sqrt(y * y + 1.0)
        r = sw[i] * (coef[0] + coef[1] * 0.5 * (root + y) + coef[2] * 0.5 * (root - y) - w[i])
        total += r * r
    return total


@jit
def _penalised(
    z0: float,
    z1: float,
    k: FloatArray,
    w: FloatArray,
    sw: FloatArray,
    w_max: float,
    bounds: FloatArray,
    coef: FloatArray,
    work: FloatArray,
    free: np.ndarray,
    direct: bool,
) -> float:
    """Objective at ``(m, ln sigma) = (z0, z1)``: evaluated at the point clipped into the bounds,
    growing with the squared distance outside them (so the simplex comes back inside)."""
    m = min(max(z0, bounds[0]), bounds[1])
    ls = min(max(z1, bounds[2]), bounds[3])
    dist = (z0 - m) ** 2 + (z1 - ls) ** 2
    f = _vp_objective(m, math.exp(ls), k, w, sw, w_max, coef, work, free, direct)
    penalised: float = f * (1.0 + 1e4 * dist) + dist
    return penalised


@jit
def _nelder_mead(
    start: FloatArray,
    step: FloatArray,
    k: FloatArray,
    w: FloatArray,
    sw: FloatArray,
    w_max: float,
    bounds: FloatArray,
    max_evals: int,
    xtol: float,
    ftol: float,
    direct: bool,
    out: FloatArray,
) -> tuple[float, int, bool]:
    """Nelder-Mead (standard coefficients 1, 2, 1/2, 1/2) over ``(m, ln sigma)``.

    Stops when the simplex is smaller than ``xtol`` in both coordinates and the spread of its
    values is below ``ftol`` times the best value (plus 1e-30), or after ``max_evals``.
    ``direct`` selects the exact residual sum (see :func:`_vp_objective`). Writes the best vertex
    to ``out``; returns its value, the evaluation count and convergence.
    """
    coef = np.empty(3)
    work = np.empty(33)
    free = np.empty(3, dtype=np.int64)
    simplex = np.empty((3, 2))
    vals = np.empty(3)
    for i in range(3):
        simplex[i, 0] = start[0]
        simplex[i, 1] = start[1]
    simplex[1, 0] += step[0]
    simplex[2, 1] += step[1]
    for i in range(3):
        vals[i] = _penalised(
            simplex[i, 0], simplex[i, 1], k, w, sw, w_max, bounds, coef, work, free, direct
        )
    evals = 3
    converged = False
    while evals < max_evals:
        # order: best 0, middle 1, worst 2
        for i in range(1, 3):
            j = i
            while j > 0 and vals[j] < vals[j - 1]:
                vals[j], vals[j - 1] = vals[j - 1], vals[j]
                for q in range(2):
                    simplex[j, q], simplex[j - 1, q] = simplex[j - 1, q], simplex[j, q]
                j -= 1
        size = max(
            max(abs(simplex[1, 0] - simplex[0, 0]), abs(simplex[2, 0] - simplex[0, 0])),
            max(abs(simplex[1, 1] - simplex[0, 1]), abs(simplex[2, 1] - simplex[0, 1])),
        )
        if size < xtol and vals[2] - vals[0] <= ftol * vals[0] + 1e-30:
            converged = True
            break
        c0 = 0.5 * (simplex[0, 0] + simplex[1, 0])
        c1 = 0.5 * (simplex[0, 1] + simplex[1, 1])
        r0 = 2.0 * c0 - simplex[2, 0]
        r1 = 2.0 * c1 - simplex[2, 1]
        fr = _penalised(r0, r1, k, w, sw, w_max, bounds, coef, work, free, direct)
        evals += 1
        if fr < vals[0]:
            e0 = 3.0 * c0 - 2.0 * simplex[2, 0]
            e1 = 3.0 * c1 - 2.0 * simplex[2, 1]
            fe = _penalised(e0, e1, k, w, sw, w_max, bounds, coef, work, free, direct)
            evals += 1
            if fe < fr:
                simplex[2, 0], simplex[2, 1], vals[2] = e0, e1, fe
            else:
                simplex[2, 0], simplex[2, 1], vals[2] = r0, r1, fr
            continue
        if fr < vals[1]:
            simplex[2, 0], simplex[2, 1], vals[2] = r0, r1, fr
            continue
        if fr < vals[2]:  # outside contraction
            q0 = c0 + 0.5 * (r0 - c0)
            q1 = c1 + 0.5 * (r1 - c1)
            fq = _penalised(q0, q1, k, w, sw, w_max, bounds, coef, work, free, direct)
            evals += 1
            if fq <= fr:
                simplex[2, 0], simplex[2, 1], vals[2] = q0, q1, fq
                continue
        else:  # inside contraction
            q0 = c0 + 0.5 * (simplex[2, 0] - c0)
            q1 = c1 + 0.5 * (simplex[2, 1] - c1)
            fq = _penalised(q0, q1, k, w, sw, w_max, bounds, coef, work, free, direct)
            evals += 1
            if fq < vals[2]:
                simplex[2, 0], simplex[2, 1], vals[2] = q0, q1, fq
                continue
        for i in range(1, 3):  # shrink towards the best vertex
            simplex[i, 0] = simplex[0, 0] + 0.5 * (simplex[i, 0] - simplex[0, 0])
            simplex[i, 1] = simplex[0, 1] + 0.5 * (simplex[i, 1] - simplex[0, 1])
            vals[i] = _penalised(
                simplex[i, 0], simplex[i, 1], k, w, sw, w_max, bounds, coef, work, free, direct
            )
            evals += 1
    best = 0
    for i in range(1, 3):
        if vals[i] < vals[best]:
            best = i
    out[0] = simplex[best, 0]
    out[1] = simplex[best, 1]
    return vals[best], evals, converged


GRID_M = 7
GRID_SIGMA = 7
N_STARTS = 2


@jit
def _fit_vp(
    k: FloatArray,
    w: FloatArray,
    sw: FloatArray,
    w_max: float,
    bounds: FloatArray,
    m0: float,
    sigma0: float,
    out: FloatArray,
) -> tuple[float, int, bool]:
    """The compiled fit: a 7 x 7 grid of ``(m, ln sigma)`` plus the reference start, loose
    Nelder-Mead runs from the 2 best points and from the reference start (normal-equation
    objective), then a tight
    Nelder-Mead polish of the best on the exact residual sum.

    ``bounds = (m_lo, m_hi, ln sigma_lo, ln sigma_hi)``. Writes ``(a, u, v, m, sigma)`` to
    ``out``; returns the objective, the number of objective evaluations and convergence.
    """
    coef = np.empty(3)
    work = np.empty(33)
    free = np.empty(3, dtype=np.int64)
    n_grid = GRID_M * GRID_SIGMA + 1
    cand = np.empty((n_grid, 2))
    vals = np.empty(n_grid)
    k_lo, k_hi = k.min(), k.max()
    idx = 0
    for i in range(GRID_M):
        m = k_lo + (k_hi - k_lo) * i / (GRID_M - 1)
        for j in range(GRID_SIGMA):
            ls = bounds[2] + (bounds[3] - bounds[2]) * (j + 0.5) / GRID_SIGMA
            cand[idx, 0] = m
            cand[idx, 1] = ls
            vals[idx] = _vp_objective(m, math.exp(ls), k, w, sw, w_max, coef, work, free, False)
            idx += 1
    cand[idx, 0] = m0
    cand[idx, 1] = math.log(sigma0)
    vals[idx] = _vp_objective(m0, sigma0, k, w, sw, w_max, coef, work, free, False)
    evals = n_grid
    order = np.argsort(vals)
    step = np.array([0.1 * (k_hi - k_lo) + 0.01, 0.5])
    best_val = np.inf
    best = np.empty(2)
    point = np.empty(2)
    ref = n_grid - 1  # the reference twin's start always gets a run too
    starts = [order[s] for s in range(N_STARTS)]
    if ref not in starts:
        starts.append(ref)
    for s in starts:  # explore, loosely
        val, n, _ = _nelder_mead(
            cand[s], step, k, w, sw, w_max, bounds, 300, 1e-3, 1e-6, False, point
        )
        evals += n
        if val < best_val:
            best_val = val
            best[0], best[1] = point[0], point[1]
    # polish the best with a fresh small simplex (this also restarts a collapsed one)
    small = np.array([1e-3 * step[0], 1e-3])
    _, n, converged = _nelder_mead(
        best.copy(), small, k, w, sw, w_max, bounds, 400, 1e-9, 1e-12, True, point
    )
    evals += n
    best[0], best[1] = point[0], point[1]
    m = min(max(best[0], bounds[0]), bounds[1])
    sigma = math.exp(min(max(best[1], bounds[2]), bounds[3]))
    f = _vp_objective(m, sigma, k, w, sw, w_max, coef, work, free, True)
    out[0], out[1], out[2], out[3], out[4] = coef[0], coef[1], coef[2], m, sigma
    return f, evals, converged


def fit_svi_slice_fast(
    k: FloatArray, t: float, vol: FloatArray, weight: FloatArray
) -> tuple[dict[str, float], bool, float]:
    """Fit raw SVI to one smile with the compiled variable-projection fit.

    Parameters
    ----------
    k : ndarray, shape (n,)
        Forward log-moneyness ``ln(K/F)`` of the quotes, sorted.
    t : float
        Years to expiry (ACT/365), ``> 0``.
    vol : ndarray, shape (n,)
        Target implied vols (decimal), ``> 0``.
    weight : ndarray, shape (n,)
        Quote weights, ``>= 0``.

    Returns
    -------
    params : dict
        ``a`` (total variance), ``b``, ``rho``, ``m`` (log-moneyness), ``sigma``.
    converged : bool
        Whether Nelder-Mead met its tolerance (simplex below 1e-9 in ``m`` and ``ln sigma``,
        values within 1e-12 relative).
    objective : float
        ``sum_i weight_i ((w_i - w(k_i)) / (2 vol_i t))^2``, vol^2 (first-order vol errors).

    Notes
    -----
    For fixed ``(m, sigma)`` the slice is ``w = a + u (r + y)/2 + v (r - y)/2`` with
    ``y = (k - m)/sigma``, ``r = sqrt(y^2 + 1)``, ``u = b sigma (1 + rho)``,
    ``v = b sigma (1 - rho)``; the box ``0 <= a <= 2 max(w)``, ``0 <= u, v <= 2 sigma`` is solved
    exactly over its 27 faces. The outer search minimises the projected objective over
    ``(m, ln sigma)`` within ``[min k - span, max k + span] x [1e-3, 2 span + 1]``.

    References
    ----------
    Zeliade Systems (2009), Quasi-explicit calibration of Gatheral's SVI model, ZWP-0005.

    Examples
    --------
    >>> k = np.linspace(-0.5, 0.5, 11)
    >>> vol = np.sqrt(svi_raw(k, 0.02, 0.1, -0.3, 0.0, 0.2) / 0.5)
    >>> p, ok, obj = fit_svi_slice_fast(k, 0.5, vol, np.ones_like(k))
    >>> ok, round(p["rho"], 6), obj < 1e-20
    (True, -0.3, True)
    """
    k = np.ascontiguousarray(k, dtype=float)
    w, sw, w_max, lo, hi, m0 = _slice_setup(k, t, vol, weight)
    bounds = np.array([lo[0], hi[0], math.log(lo[1]), math.log(hi[1])])
    sigma0 = float(np.clip(0.2 * (hi[1] - 1.0) / 2.0, lo[1], hi[1]))
    out = np.empty(5)
    f, _, converged = _fit_vp(k, w, np.ascontiguousarray(sw), w_max, bounds, m0, sigma0, out)
    return _to_raw(*(float(x) for x in out)), bool(converged), float(f)


def fit_svi_slice(
    k: FloatArray, t: float, vol: FloatArray, weight: FloatArray
) -> tuple[dict[str, float], bool]:
    """Fit raw SVI to one smile (the compiled fit); returns the parameters and convergence.

    See :func:`fit_svi_slice_fast`; residuals are in vol: total-variance errors are scaled by
    ``1 / (2 vol t)`` (first order).
    """
    params, converged, _ = fit_svi_slice_fast(k, t, vol, weight)
    return params, converged


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
                flat = slice_atm_vol(s.k, s.mid_iv) ** 2 * t
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
