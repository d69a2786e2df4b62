"""Numba kernels of the COS pricer in :mod:`volguard.kernels.heston_cos`.

Internal: the public functions live in :mod:`volguard.kernels.heston_cos`, which also holds
the plain-NumPy twin of every kernel here (``_heston_log_cf`` + ``_jump_log_cf`` with and
without the gradient, ``truncation_range``, ``terms_per_expiry`` and the per-expiry matrix
products of ``_cos_sums_numpy``); ``tests/kernels/test_heston_cos.py`` checks the two against
each other. Inputs are assumed validated (see that module's docstring).

Parameters arrive as one float64 vector of length 8, ``(v0, kappa, theta, sigma, rho, lam,
mu_j, sigma_j)``, with ``lam = 0`` for Heston.
"""

from __future__ import annotations

import math

import numpy as np

from volguard._typing import FloatArray, IntArray
from volguard.kernels._jit import jit

_RESEED = 32
"""The cos/sin rotation recurrence restarts from exact values every ``_RESEED`` terms."""

# (c2, c4 h^2, c6 h^4) = _CUMULANT_SOLVE @ (Re psi(m h) / h^2)_{m = 1, 2, 3}: the inverse of
# [[-m^2/2, m^4/24, -m^6/720]]_{m=1,2,3}, as in volguard.kernels.heston_cos.cos_cumulants
_CUMULANT_SOLVE = np.linalg.inv(
    np.array([[-(m**2) / 2.0, m**4 / 24.0, -(m**6) / 720.0] for m in (1.0, 2.0, 3.0)])
)


@jit
def _log_cf_real_u(u: float, t: float, p: FloatArray) -> complex:  # pragma: no cover - numba
    """``ln phi(u)`` at real ``u``: little-trap Heston plus compensated Merton jumps."""
    v0, kappa, theta, sigma, rho = p[0], p[1], p[2], p[3], p[4]
    iu = complex(0.0, u)
    zeta = u * u + iu
    beta = kappa - rho * sigma * iu
    d = np.sqrt(beta * beta + sigma * sigma * zeta)
    s = beta + d
    r = -zeta / s
    g = sigma * sigma * r / s
    e = np.exp(-d * t)
    one_e = 1.0 - e
    dd = r * one_e / (1.0 - g * e)
    w = g * one_e / (1.0 - g)
    ell = complex(
        0.5 * math.log1p(w.real * (2.0 + w.real) + w.imag * w.imag),
        math.atan2(w.imag, 1.0 + w.real),
    )
    c_hat = r * t - 2.0 * ell / (sigma * sigma)
    psi = kappa * theta * c_hat + v0 * dd
    lam = p[5]
    if lam > 0.0:
        mu_j, sigma_j = p[6], p[7]
        jump = np.exp(iu * mu_j - 0.5 * sigma_j * sigma_j * u * u)
        mean_jump = math.exp(mu_j + 0.5 * sigma_j * sigma_j)
        psi += lam * t * (jump - 1.0) - iu * lam * t * (mean_jump - 1.0)
    return complex(psi)


@jit
def log_cf_nb(u: FloatArray, t: FloatArray, p: FloatArray) -> np.ndarray:  # pragma: no cover
    """``ln phi(u_i)`` at expiry ``t_i`` for every ``i`` (real ``u``), one pass, no temporaries.

    Twin of ``_heston_log_cf`` + ``_jump_log_cf`` without the gradient.
    """
    out = np.empty(u.size, dtype=np.complex128)
    for i in range(u.size):
        out[i] = _log_cf_real_u(u[i], t[i], p)
    return out


@jit
def _heston_grad_term(
    beta_p: complex,
    sig_p: float,
    beta: complex,
    zeta: complex,
    inv_d: complex,
    inv_s: complex,
    r: complex,
    g: complex,
    e: complex,
    one_e: complex,
    inv_ge: complex,
    inv_g: complex,
    dd: complex,
    ell: complex,
    t: float,
    p: FloatArray,
) -> complex:  # pragma: no cover - numba
    """``d psi / d p`` for ``p`` in (kappa, sigma, rho) through ``beta`` and ``sigma``.

    ``beta_p = d beta / d p``, ``sig_p = d sigma / d p`` (1 for sigma, else 0); the theta term
    of kappa is the caller's. The chain rule of ``_heston_log_cf`` with its divisions by ``d``,
    ``s``, ``1 - g e`` and ``1 - g`` as products with their reciprocals (``inv_*``) and
    ``r (1 - e) / (1 - g e) = dd``.
    """
    v0, kappa, theta, sigma = p[0], p[1], p[2], p[3]
    d_p = (beta * beta_p + sig_p * sigma * zeta) * inv_d
    s_p_s = (beta_p + d_p) * inv_s  # s_p / s
    r_p = -r * s_p_s
    g_p = g * (2.0 * sig_p / sigma - 2.0 * s_p_s)
    e_p = -t * d_p * e
    ge_p = g_p * e + g * e_p
    dd_p = (r_p * one_e - r * e_p + dd * ge_p) * inv_ge
    ell_p = g_p * inv_g - ge_p * inv_ge
    two_sig2 = 2.0 / (sigma * sigma)  # real: no complex division
    c_hat_p = r_p * t - two_sig2 * ell_p
    if sig_p != 0.0:
        c_hat_p = c_hat_p + (2.0 * two_sig2 / sigma) * ell
    return complex(kappa * theta * c_hat_p + v0 * dd_p)


@jit
def log_cf_grad_nb(
    u: FloatArray, t: FloatArray, p: FloatArray, n_params: int
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - numba
    """``ln phi(u_i)`` at expiry ``t_i`` and its parameter gradient (real ``u``), one pass.

    Twin of ``_heston_log_cf`` + ``_jump_log_cf`` with ``grad=True``: the same little-trap
    formulas and chain rule, element by element, without the complex temporaries, and four
    complex reciprocals per element in place of the twin's twenty-odd divisions.

    Parameters
    ----------
    u, t : ndarray, shape (n,)
        Real Fourier arguments and their expiries (ACT/365 years).
    p : ndarray, shape (8,)
        ``(v0, kappa, theta, sigma, rho, lam, mu_j, sigma_j)``.
    n_params : int
        5 (Heston: no jump part, no jump rows) or 8 (Bates: the jump rows even at ``lam = 0``).

    Returns
    -------
    psi : ndarray of complex, shape (n,)
        ``ln phi(u_i)``.
    grad : ndarray of complex, shape (n_params, n)
        ``d ln phi(u_i) / d p_k`` in the order of ``p``.
    """
    n = u.size
    psi = np.empty(n, dtype=np.complex128)
    grad = np.empty((n_params, n), dtype=np.complex128)
    v0, kappa, theta, sigma, rho = p[0], p[1], p[2], p[3], p[4]
    lam, mu_j, sigma_j = p[5], p[6], p[7]
    sig2 = sigma * sigma
    mean_jump = math.exp(mu_j + 0.5 * sigma_j * sigma_j)  # E[e^J]
    one = complex(1.0, 0.0)
    for i in range(n):
        ui = u[i]
        ti = t[i]
        iu = complex(0.0, ui)
        zeta = complex(ui * ui, ui)  # u (u + i)
        beta = complex(kappa, -rho * sigma * ui)
        d = np.sqrt(beta * beta + sig2 * zeta)
        s = beta + d
        inv_s = 1.0 / s
        r = -zeta * inv_s  # (beta - d) / sigma^2, without cancellation
        g = sig2 * r * inv_s  # (beta - d) / (beta + d)
        e = np.exp(-d * ti)
        one_e = 1.0 - e
        inv_ge = 1.0 / (1.0 - g * e)
        inv_g = 1.0 / (1.0 - g)
        dd = r * one_e * inv_ge
        w = g * one_e * inv_g
        ell = complex(  # log1p(w) = ln((1 - g e) / (1 - g))
            0.5 * math.log1p(w.real * (2.0 + w.real) + w.imag * w.imag),
            math.atan2(w.imag, 1.0 + w.real),
        )
        c_hat = r * ti - (2.0 / sig2) * ell
        psi_i = kappa * theta * c_hat + v0 * dd
        grad[0, i] = dd
        grad[2, i] = kappa * c_hat
        # kappa, sigma, rho: through (beta_p, sigma_p) = (1, 0), (-rho i u, 1), (-sigma i u, 0)
        inv_d = 1.0 / d
        shared = (beta, zeta, inv_d, inv_s, r, g, e, one_e, inv_ge, inv_g, dd, ell, ti, p)
        grad[1, i] = _heston_grad_term(one, 0.0, *shared) + theta * c_hat
        grad[3, i] = _heston_grad_term(-rho * iu, 1.0, *shared)
        grad[4, i] = _heston_grad_term(-sigma * iu, 0.0, *shared)
        if n_params > 5:
            jump = np.exp(complex(-0.5 * sigma_j * sigma_j * ui * ui, ui * mu_j))
            psi_i += lam * ti * (jump - 1.0) - iu * lam * ti * (mean_jump - 1.0)
            grad[5, i] = ti * (jump - 1.0) - iu * ti * (mean_jump - 1.0)
            grad[6, i] = lam * ti * iu * (jump - mean_jump)
            grad[7, i] = lam * ti * sigma_j * (-ui * ui * jump - iu * mean_jump)
        psi[i] = psi_i
    return psi, grad


@jit
def truncation_range_nb(
    t: FloatArray, p: FloatArray, trunc_l: float, solve: FloatArray
) -> tuple[FloatArray, FloatArray]:  # pragma: no cover - numba
    """Twin of :func:`volguard.kernels.heston_cos.truncation_range` (``solve``: the 3x3 inverse)."""
    n = t.shape[0]
    a = np.empty(n)
    b = np.empty(n)
    v0, kappa, theta = p[0], p[1], p[2]
    lam, mu_j, sigma_j = p[5], p[6], p[7]
    for g in range(n):
        tg = t[g]
        c1 = -math.expm1(-kappa * tg) * (theta - v0) / (2.0 * kappa) - 0.5 * theta * tg
        if lam > 0.0:
            c1 += lam * tg * (mu_j - math.expm1(mu_j + 0.5 * sigma_j * sigma_j))
        h = 0.1 / math.sqrt(max(v0, theta) * tg)
        y0 = _log_cf_real_u(h, tg, p).real / (h * h)
        y1 = _log_cf_real_u(2.0 * h, tg, p).real / (h * h)
        y2 = _log_cf_real_u(3.0 * h, tg, p).real / (h * h)
        c2 = solve[0, 0] * y0 + solve[0, 1] * y1 + solve[0, 2] * y2
        c4 = (solve[1, 0] * y0 + solve[1, 1] * y1 + solve[1, 2] * y2) / (h * h)
        half = trunc_l * math.sqrt(abs(c2) + math.sqrt(abs(c4)))
        if lam > 0.0:
            half = max(half, abs(mu_j) + trunc_l * sigma_j)
        a[g] = c1 - half
        b[g] = c1 + half
    return a, b


@jit
def terms_per_expiry_nb(
    t: FloatArray, a: FloatArray, b: FloatArray, p: FloatArray, cand: FloatArray, log_tol: float
) -> IntArray:  # pragma: no cover - numba
    """Twin of :func:`volguard.kernels.heston_cos.terms_per_expiry`."""
    n = t.shape[0]
    out = np.empty(n, dtype=np.int64)
    for g in range(n):
        out[g] = int(cand[-1])
        for c in cand:
            if _log_cf_real_u(math.pi * c / (b[g] - a[g]), t[g], p).real <= log_tol:
                out[g] = int(c)
                break
    return out


@jit
def cos_sums_nb(
    coef: FloatArray,
    offsets: IntArray,
    a: FloatArray,
    b: FloatArray,
    x: FloatArray,
    order: IntArray,
    bounds: IntArray,
    want_density: bool,
) -> tuple[FloatArray, FloatArray, FloatArray]:  # pragma: no cover - numba
    """The COS sums of every option, expiry groups in parallel.

    Parameters
    ----------
    coef : ndarray, shape (m, total)
        Density coefficients ``A_j`` (row 0) and their parameter derivatives (rows 1..m-1),
        first term halved and scaled by ``2/(b-a)``; expiry ``g`` owns the columns
        ``offsets[g]:offsets[g+1]`` (its N terms).
    offsets : ndarray of int, shape (nT + 1,)
    a, b : ndarray, shape (nT,)
        Truncation range per expiry.
    x : ndarray, shape (n,)
        Log-moneyness ``ln(K/F)`` per option.
    order, bounds : ndarray of int
        The options of expiry ``g`` are ``order[bounds[g]:bounds[g+1]]``.
    want_density : bool
        Also return the COS density at ``clip(x, a, b)``.

    Returns
    -------
    e_psi, e_chi : ndarray, shape (m, n)
        ``sum'_j coef_j psi_j(a, c)`` and ``sum'_j coef_j chi_j(a, c)``, ``c = clip(x, a, b)``.
    density : ndarray, shape (n,)
        ``sum'_j A_j cos(u_j (c - a))`` (zeros unless ``want_density``).

    Notes
    -----
    ``cos(j theta)`` and ``sin(j theta)``, ``theta = pi (c - a)/(b - a)``, come from the
    rotation ``e^{i (j+1) theta} = e^{i j theta} e^{i theta}``, restarted from ``cos``/``sin``
    every 32 terms (rounding grows like the number of steps since the restart). The loop over
    terms is outside the loop over one expiry's options, so the options' recurrences are
    independent and the inner loop is throughput-, not latency-bound.
    """
    m = coef.shape[0]
    n_opt = x.shape[0]
    n_t = a.shape[0]
    e_psi = np.zeros((m, n_opt))
    e_chi = np.zeros((m, n_opt))
    density = np.zeros(n_opt)
    for g in range(n_t):
        lo = bounds[g]
        n_g = bounds[g + 1] - lo
        if n_g == 0:
            continue
        ag = a[g]
        width = b[g] - ag
        du = math.pi / width
        off = offsets[g]
        n_terms = offsets[g + 1] - off
        idx = order[lo : lo + n_g]
        c_rel = np.empty(n_g)  # c - a
        theta = np.empty(n_g)
        for q in range(n_g):
            c = min(max(x[idx[q]], ag), b[g])
            c_rel[q] = c - ag
            theta[q] = du * (c - ag)
        c1 = np.cos(theta)
        s1 = np.sin(theta)
        cj = np.ones(n_g)
        sj = np.zeros(n_g)
        acc_psi = np.zeros((m, n_g))
        acc_cc = np.zeros((m, n_g))
        acc_sc = np.zeros((m, n_g))
        dens = np.zeros(n_g)
        p0 = np.zeros(n_g)  # row 0 in 1-d arrays: the hot loop vectorises
        cc0 = np.zeros(n_g)
        sc0 = np.zeros(n_g)
        sum_cc = np.zeros(m)
        # j = 0: psi_0 = c - a, chi_0 = e^c - e^a
        for r in range(m):
            w = coef[r, off]
            sum_cc[r] += w
            for q in range(n_g):
                acc_psi[r, q] = w * c_rel[q]
                acc_cc[r, q] = w
        if want_density:
            w = coef[0, off]
            for q in range(n_g):
                dens[q] = w
        for j in range(1, n_terms):
            u = j * du
            inv_1pu2 = 1.0 / (1.0 + u * u)
            w = coef[0, off + j]
            w_psi = w / u
            w_cc = w * inv_1pu2
            w_sc = w_cc * u
            sum_cc[0] += w_cc
            if j % _RESEED == 0:
                for q in range(n_g):
                    cj[q] = math.cos(j * theta[q])
                    sj[q] = math.sin(j * theta[q])
                    p0[q] += w_psi * sj[q]
                    cc0[q] += w_cc * cj[q]
                    sc0[q] += w_sc * sj[q]
            else:  # rotation and row 0 in one loop over the options
                for q in range(n_g):
                    c = cj[q]
                    s = sj[q]
                    cn = c * c1[q] - s * s1[q]
                    sn = s * c1[q] + c * s1[q]
                    cj[q] = cn
                    sj[q] = sn
                    p0[q] += w_psi * sn
                    cc0[q] += w_cc * cn
                    sc0[q] += w_sc * sn
            for r in range(1, m):
                w = coef[r, off + j]
                w_psi = w / u
                w_cc = w * inv_1pu2
                w_sc = w_cc * u
                sum_cc[r] += w_cc
                for q in range(n_g):
                    acc_psi[r, q] += w_psi * sj[q]
                    acc_cc[r, q] += w_cc * cj[q]
                    acc_sc[r, q] += w_sc * sj[q]
            if want_density:
                w = coef[0, off + j]
                for q in range(n_g):
                    dens[q] += w * cj[q]
        acc_psi[0] += p0
        acc_cc[0] += cc0
        acc_sc[0] += sc0
        ea = math.exp(ag)
        for q in range(n_g):
            i = idx[q]
            ec = math.exp(ag + c_rel[q])
            for r in range(m):
                e_psi[r, i] = acc_psi[r, q]
                e_chi[r, i] = ec * (acc_cc[r, q] + acc_sc[r, q]) - ea * sum_cc[r]
            density[i] = dens[q]
    return e_psi, e_chi, density
