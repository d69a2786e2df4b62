"""COS pricing of European options under Heston and Bates, with the analytic parameter gradient.

Pure vectorised NumPy kernels: they assume validated input (``t > 0``, ``forward > 0``,
``strike > 0``, ``v0 >= 0``, ``kappa > 0``, ``theta > 0``, ``sigma > 0``, ``-1 < rho < 1``,
``lam >= 0``, ``sigma_j >= 0``) and do no checking; validation belongs to the engine that calls
them.

Everything is written on the forward: the state variable is ``X = ln(F_T / F_0)`` under the
T-forward measure, so no rate or dividend appears, and prices are USD per one unit of
underlying, ``discount * E[payoff]`` (pass ``discount=1.0`` for undiscounted forward prices).
Log-moneyness is ``k = ln(K / F)``; to price on ``k`` directly use ``forward=1.0`` and
``strike=exp(k)``: the result is the price normalised by the forward.

Parameter vectors (one parameter set per call, any number of expiries and strikes):

* Heston: ``(v0, kappa, theta, sigma, rho)``: initial variance (1/year), mean-reversion speed
  (1/year), long-run variance (1/year), vol of variance (1/year), spot-variance correlation.
* Bates: ``(v0, kappa, theta, sigma, rho, lam, mu_j, sigma_j)``: Heston plus Merton log-normal
  jumps with intensity ``lam`` (jumps per year), mean log-jump ``mu_j`` and log-jump volatility
  ``sigma_j``; the drift is compensated so that ``F_t`` stays a martingale.

References
----------
.. [1] Fang, F. and Oosterlee, C. W. (2008). A novel pricing method for European options based
   on Fourier-cosine series expansions. SIAM J. Sci. Comput. 31(2), 826-848.
   doi:10.1137/080718061
.. [2] Albrecher, H., Mayer, P., Schoutens, W. and Tistaert, J. (2007). The little Heston trap.
   Wilmott Magazine, January 2007, 83-92.
.. [3] Cui, Y., del Bano Rollin, S. and Germano, G. (2017). Full and fast calibration of the
   Heston stochastic volatility model. European J. Oper. Res. 263(2), 625-638.
   doi:10.1016/j.ejor.2017.05.018
.. [4] Bates, D. S. (1996). Jumps and stochastic volatility: exchange rate processes implicit in
   Deutsche Mark options. Rev. Financ. Stud. 9(1), 69-107. doi:10.1093/rfs/9.1.69

Size: one COS engine (characteristic functions, truncation, the sums in numba and their NumPy
twins, prices, gradients and greeks) over one set of cached terms; split, the twins would
live apart from the kernels they are tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from volguard._typing import ArrayLike, FloatArray, IntArray
from volguard.kernels import _heston_cos_nb as _nb

ComplexArray = npt.NDArray[np.complex128]

AUTO_TERMS = (128, 256, 512, 1024, 2048, 4096)
"""Candidate numbers of COS terms of :func:`auto_terms` (one N for a set of expiries)."""

EXPIRY_TERMS = (
    *(base * step // 4 for base in (64, 128, 256, 512, 1024, 2048) for step in (4, 5, 6, 7)),
    4096,
)
"""Candidate N of the per-expiry automatic choice (``n_terms=None``): 64 to 4096 in quarter
octaves (64, 80, 96, 112, 128, 160, ...)."""

AUTO_CF_TOL = 1e-12
"""Automatic N: the smallest candidate with ``|phi(N pi / (b - a))| <= AUTO_CF_TOL`` (per expiry
in the pricers, :func:`terms_per_expiry`; at every expiry in :func:`auto_terms`)."""

DEFAULT_TRUNCATION_L = 10.0
"""Default half-width of the truncation range in cumulant standard deviations (Fang-Oosterlee)."""

HESTON_PARAMS = ("v0", "kappa", "theta", "sigma", "rho")
"""Order of the Heston parameter vector and of the rows of its gradient."""

BATES_PARAMS = (*HESTON_PARAMS, "lam", "mu_j", "sigma_j")
"""Order of the Bates parameter vector and of the rows of its gradient."""


class CosGreeks(NamedTuple):
    """Prices and sensitivities from :func:`heston_greeks` / :func:`bates_greeks`.

    All arrays have the broadcast shape of the inputs.
    """

    price: FloatArray
    """Option value, USD per one unit of underlying."""
    delta: FloatArray
    """dPrice/dF with the variance and the strike held fixed (dimensionless)."""
    gamma: FloatArray
    """d2Price/dF2 with the variance and the strike held fixed (1/USD)."""
    vega_v0: FloatArray
    """dPrice/dv0, USD per unit of initial variance."""


# --------------------------------------------------------------------------------------------
# characteristic functions


def _log1p_complex(w: ComplexArray) -> ComplexArray:
    """``log(1 + w)`` accurate for small ``|w|`` (NumPy's complex log1p is not)."""
    re = w.real
    im = w.imag
    real_part = 0.5 * np.log1p(re * (2.0 + re) + im * im)
    return real_part + 1j * np.arctan2(im, 1.0 + re)


class _HestonParts(NamedTuple):
    psi: ComplexArray  # log characteristic function
    grad: ComplexArray | None  # d psi / d params, shape (5, *u.shape)


def _heston_log_cf(u: ComplexArray, t: FloatArray, p: Sequence[float], grad: bool) -> _HestonParts:
    """Heston log-CF of ``ln(F_T/F_0)`` in the little-trap form, optionally with its gradient."""
    v0, kappa, theta, sigma, rho = (float(x) for x in p[:5])
    iu = 1j * u
    zeta = u * u + iu  # u (u + i)
    beta = kappa - rho * sigma * iu
    d = np.sqrt(beta * beta + sigma * sigma * zeta)
    s = beta + d
    inv_s = 1.0 / s
    r = -zeta * inv_s  # (beta - d) / sigma^2, written without cancellation
    g = (sigma * sigma) * r * inv_s  # (beta - d) / (beta + d)
    e = np.exp(-d * t)
    one_ge = 1.0 - g * e
    one_e = 1.0 - e
    one_g = 1.0 - g
    dd = r * one_e / one_ge
    ell = _log1p_complex(g * one_e / one_g)  # ln((1 - g e) / (1 - g))
    c_hat = r * t - (2.0 / (sigma * sigma)) * ell
    psi = kappa * theta * c_hat + v0 * dd
    if not grad:
        return _HestonParts(psi, None)

    out = np.empty((5, *psi.shape), dtype=np.complex128)
    out[0] = dd
    out[2] = kappa * c_hat
    # (beta_p, sigma_p) for p = kappa, sigma, rho
    for row, beta_p, sig_p in (
        (1, np.ones_like(iu), 0.0),
        (3, -rho * iu, 1.0),
        (4, -sigma * iu, 0.0),
    ):
        d_p = (beta * beta_p + sig_p * sigma * zeta) / d
        s_p = beta_p + d_p
        r_p = -r * s_p / s
        g_p = g * (2.0 * sig_p / sigma - 2.0 * s_p / s)
        e_p = -t * d_p * e
        ge_p = g_p * e + g * e_p
        dd_p = (r_p * one_e - r * e_p) / one_ge + r * one_e * ge_p / (one_ge * one_ge)
        ell_p = -ge_p / one_ge + g_p / one_g
        c_hat_p = r_p * t - 2.0 * ell_p / (sigma * sigma)
        if sig_p:
            c_hat_p = c_hat_p + 4.0 * ell / sigma**3
        out[row] = kappa * theta * c_hat_p + v0 * dd_p
        if row == 1:
            out[row] += theta * c_hat
    return _HestonParts(psi, out)


def _jump_log_cf(
    u: ComplexArray, t: FloatArray, p: Sequence[float], grad: bool
) -> tuple[ComplexArray, ComplexArray | None]:
    """Compensated Merton jump part of the Bates log-CF, optionally with its gradient."""
    lam, mu_j, sigma_j = (float(x) for x in p[5:8])
    iu = 1j * u
    jump = np.exp(iu * mu_j - 0.5 * sigma_j * sigma_j * u * u)
    mean_jump = np.exp(mu_j + 0.5 * sigma_j * sigma_j)  # E[e^J]
    psi = lam * t * (jump - 1.0) - iu * lam * t * (mean_jump - 1.0)
    if not grad:
        return psi, None
    out = np.empty((3, *psi.shape), dtype=np.complex128)
    out[0] = t * (jump - 1.0) - iu * t * (mean_jump - 1.0)
    out[1] = lam * t * iu * (jump - mean_jump)
    out[2] = lam * t * sigma_j * (-u * u * jump - iu * mean_jump)
    return psi, out


def heston_cf(u: ArrayLike, t: ArrayLike, params: Sequence[float]) -> ComplexArray:
    """Characteristic function of ``X = ln(F_T / F_0)`` under Heston.

    Parameters
    ----------
    u : array_like, complex or real
        Fourier argument (dimensionless); broadcast against ``t``.
    t : array_like
        Time to expiry, ACT/365 years, ``t > 0``.
    params : sequence of 5 floats
        ``(v0, kappa, theta, sigma, rho)``, see the module docstring.

    Returns
    -------
    ndarray of complex
        ``E[exp(i u X)]``, broadcast shape of ``u`` and ``t``.

    Notes
    -----
    The little-Heston-trap form [2]_, with ``beta = kappa - rho sigma i u``,
    ``d = sqrt(beta^2 + sigma^2 (u^2 + i u))`` (principal root), ``g = (beta - d)/(beta + d)``::

        ln phi = kappa theta / sigma^2 [(beta - d) t - 2 ln((1 - g e^{-dt}) / (1 - g))]
                 + v0 / sigma^2 (beta - d) (1 - e^{-dt}) / (1 - g e^{-dt})

    ``beta - d`` is evaluated as ``-sigma^2 (u^2 + i u) / (beta + d)`` so that the form stays
    accurate as ``sigma -> 0``; the logarithm is a complex ``log1p``.

    References
    ----------
    .. [2] Albrecher, Mayer, Schoutens, Tistaert (2007), Wilmott Magazine Jan. 2007, 83-92.

    Examples
    --------
    >>> import numpy as np
    >>> p = (0.0175, 1.5768, 0.0398, 0.5751, -0.5711)
    >>> phi = heston_cf(np.array([0.0, -1j]), 1.0, p)  # phi(0) = 1 and E[F_T/F_0] = 1
    >>> np.allclose(phi, [1.0, 1.0])
    True
    """
    uu = np.asarray(u, dtype=np.complex128)
    tt = np.asarray(t, dtype=np.float64)
    uu, tt = np.broadcast_arrays(uu, tt)
    return np.exp(_heston_log_cf(uu, tt, params, grad=False).psi)


def bates_cf(u: ArrayLike, t: ArrayLike, params: Sequence[float]) -> ComplexArray:
    """Characteristic function of ``X = ln(F_T / F_0)`` under Bates (Heston + Merton jumps).

    Parameters
    ----------
    u : array_like, complex or real
        Fourier argument (dimensionless); broadcast against ``t``.
    t : array_like
        Time to expiry, ACT/365 years, ``t > 0``.
    params : sequence of 8 floats
        ``(v0, kappa, theta, sigma, rho, lam, mu_j, sigma_j)``, see the module docstring.

    Returns
    -------
    ndarray of complex
        ``E[exp(i u X)]``, broadcast shape of ``u`` and ``t``.

    Notes
    -----
    ``phi_Bates(u) = phi_Heston(u) * exp(lam t (exp(i u mu_j - sigma_j^2 u^2 / 2) - 1)
    - i u lam t (exp(mu_j + sigma_j^2 / 2) - 1))``; the second term is the compensator that keeps
    the forward a martingale [4]_.

    References
    ----------
    .. [4] Bates (1996), Rev. Financ. Stud. 9(1), 69-107. doi:10.1093/rfs/9.1.69

    Examples
    --------
    >>> import numpy as np
    >>> p = (0.04, 2.0, 0.04, 0.5, -0.7, 0.5, -0.1, 0.2)
    >>> np.allclose(bates_cf(np.array([0.0, -1j]), 0.5, p), [1.0, 1.0])
    True
    """
    uu = np.asarray(u, dtype=np.complex128)
    tt = np.asarray(t, dtype=np.float64)
    uu, tt = np.broadcast_arrays(uu, tt)
    psi = _heston_log_cf(uu, tt, params, grad=False).psi + _jump_log_cf(uu, tt, params, False)[0]
    return np.exp(psi)


# --------------------------------------------------------------------------------------------
# cumulants and the truncation range


def cos_cumulants(
    t: ArrayLike, params: Sequence[float]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Cumulants c1, c2, c4 of ``X = ln(F_T / F_0)`` under Heston (5 params) or Bates (8).

    Parameters
    ----------
    t : array_like
        Time to expiry, ACT/365 years, ``> 0``.
    params : sequence of 5 or 8 floats
        Heston or Bates parameter vector.

    Returns
    -------
    c1, c2, c4 : ndarray
        Mean, variance and fourth cumulant of ``X`` (dimensionless), shape of ``t``.

    Notes
    -----
    ``c1`` is in closed form (zero drift on the forward; [1]_ lists it with a drift)::

        c1 = (1 - e^{-kappa t}) (theta - v0) / (2 kappa) - theta t / 2
             [+ lam t (mu_j - (e^{mu_j + sigma_j^2/2} - 1))]

    ``c2`` and ``c4`` come from the even part of the log characteristic function on the real
    line, ``Re ln phi(u) = -c2 u^2/2 + c4 u^4/24 - c6 u^6/720 + O(u^8)``, fitted exactly at
    ``u = h, 2h, 3h`` with ``h = 0.1 / sqrt(max(v0, theta) t)`` (three evaluations of the
    characteristic function, valid for any parameters since ``phi`` is finite on the real
    line). They only set the truncation range, so their few-digit accuracy is ample; the
    closed-form Heston ``c4`` is lengthy and Fang-Oosterlee omit it, but dropping it makes
    the range too narrow for strongly skewed smiles (5e-5 error at the money in their own
    T = 1 example with L = 12).

    Examples
    --------
    >>> c1, c2, c4 = cos_cumulants(1.0, (0.04, 1.0, 0.04, 1e-6, 0.0))
    >>> round(float(c1), 10), round(float(c2), 8), abs(float(c4)) < 1e-9
    (-0.02, 0.04, True)
    """
    tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
    v0, kappa, theta = (float(x) for x in params[:3])
    c1 = -np.expm1(-kappa * tt) * (theta - v0) / (2.0 * kappa) - 0.5 * theta * tt
    if len(params) > 5:
        lam, mu_j, sigma_j = (float(x) for x in params[5:8])
        c1 = c1 + lam * tt * (mu_j - np.expm1(mu_j + 0.5 * sigma_j**2))
    h = 0.1 / np.sqrt(max(v0, theta) * tt)
    u = h[:, None] * np.array([1.0, 2.0, 3.0])
    uc = u.astype(np.complex128)
    tc = tt[:, None]
    psi = _heston_log_cf(uc, tc, params, grad=False).psi
    if len(params) > 5:
        psi = psi + _jump_log_cf(uc, tc, params, grad=False)[0]
    # solve  [-u^2/2, u^4/24, -u^6/720] (c2, c4, c6) = Re psi  with u = h (1, 2, 3)
    y = psi.real / (h[:, None] ** 2)
    # in units of h: -c2/2 m^2 + (c4 h^2/24) m^4 - (c6 h^4/720) m^6 = y_m, m = 1, 2, 3
    sol = _nb._CUMULANT_SOLVE @ y.T  # (3, nT): c2, c4 h^2, c6 h^4
    c2 = sol[0]
    c4 = sol[1] / h**2
    shape = np.shape(t)
    return c1.reshape(shape), c2.reshape(shape), c4.reshape(shape)


def truncation_range(
    t: ArrayLike, params: Sequence[float], trunc_l: float = DEFAULT_TRUNCATION_L
) -> tuple[FloatArray, FloatArray]:
    """Truncation range ``[a, b]`` of ``X = ln(F_T / F_0)`` per expiry (Fang-Oosterlee).

    Parameters
    ----------
    t : array_like
        Times to expiry, ACT/365 years, ``> 0``.
    params : sequence of 5 or 8 floats
        Heston or Bates parameter vector.
    trunc_l : float, default 10.0
        Half-width L in cumulant standard deviations.

    Returns
    -------
    a, b : ndarray
        Lower and upper ends of the range of ``X`` (dimensionless), shape ``(len(t),)`` (a
        scalar ``t`` gives shape ``(1,)``).

    Notes
    -----
    ``[a, b] = c1 -+ L sqrt(|c2| + sqrt(|c4|))`` with the cumulants of :func:`cos_cumulants`
    [1]_; with jumps (``lam > 0``) the half-width is at least ``|mu_j| + L sigma_j``, so that a
    single rare jump fits even where the cumulants are tiny (short expiries). The pricers use a
    numba twin of this function, tested against it.

    Examples
    --------
    >>> a, b = truncation_range([1.0], (0.04, 1.0, 0.04, 1e-6, 0.0))
    >>> round(float(a[0]), 3), round(float(b[0]), 3)
    (-2.02, 1.98)
    """
    tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
    c1, c2, c4 = cos_cumulants(tt, params)
    half = trunc_l * np.sqrt(np.abs(c2) + np.sqrt(np.abs(c4)))
    if len(params) > 5 and float(params[5]) > 0.0:
        mu_j, sigma_j = float(params[6]), float(params[7])
        half = np.maximum(half, abs(mu_j) + trunc_l * sigma_j)
    return c1 - half, c1 + half


# --------------------------------------------------------------------------------------------
# the number of terms


def _log_abs_cf_at_candidates(
    t: FloatArray, a: FloatArray, b: FloatArray, params: Sequence[float], ladder: Sequence[int]
) -> FloatArray:
    """``ln |phi(N pi / (b - a))|`` for every candidate N of ``ladder``, (nT, len(ladder))."""
    cand = np.asarray(ladder, dtype=np.float64)
    u = (np.pi * cand[None, :] / (b - a)[:, None]).astype(np.complex128)
    tc = np.asarray(t, dtype=np.float64)[:, None]
    log_abs = _heston_log_cf(u, tc, params, grad=False).psi.real
    if len(params) > 5:
        log_abs = log_abs + _jump_log_cf(u, tc, params, grad=False)[0].real
    return log_abs


def terms_per_expiry(t: ArrayLike, a: ArrayLike, b: ArrayLike, params: Sequence[float]) -> IntArray:
    """Automatic number of COS terms for each expiry (what the pricers use with ``n_terms=None``).

    Parameters
    ----------
    t : array_like, shape (nT,)
        Times to expiry, ACT/365 years, ``> 0``.
    a, b : array_like, shape (nT,)
        Truncation ranges, e.g. from :func:`truncation_range`.
    params : sequence of 5 or 8 floats
        Heston or Bates parameter vector.

    Returns
    -------
    ndarray of int, shape (nT,)
        Per expiry, the smallest N in :data:`EXPIRY_TERMS` with
        ``|phi(N pi / (b - a))| <= AUTO_CF_TOL`` (the last candidate if none qualifies).

    Notes
    -----
    The first term left out of the series has the weight ``phi(N pi / (b - a))``; ``|phi|``
    decays with ``u`` slowly for short expiries with a high vol of variance, fast for long
    ones. The pricers use a numba twin of this function, tested against it.

    Examples
    --------
    >>> p = (0.36, 2.0, 0.49, 1.2, -0.35)
    >>> t = np.array([0.02, 1.0])
    >>> terms_per_expiry(t, *truncation_range(t, p), p).tolist()
    [80, 224]
    """
    tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
    aa = np.atleast_1d(np.asarray(a, dtype=np.float64))
    bb = np.atleast_1d(np.asarray(b, dtype=np.float64))
    ok = _log_abs_cf_at_candidates(tt, aa, bb, params, EXPIRY_TERMS) <= np.log(AUTO_CF_TOL)
    first = np.where(ok.any(axis=1), np.argmax(ok, axis=1), len(EXPIRY_TERMS) - 1)
    return np.asarray(EXPIRY_TERMS, dtype=np.int64)[first]


def auto_terms(t: ArrayLike, a: ArrayLike, b: ArrayLike, params: Sequence[float]) -> int:
    """One number of COS terms for a whole set of expiries (e.g. fixed for a calibration run).

    Parameters
    ----------
    t : array_like, shape (nT,)
        Times to expiry, ACT/365 years, ``> 0``.
    a, b : array_like, shape (nT,)
        Truncation ranges, e.g. from :func:`truncation_range`.
    params : sequence of 5 or 8 floats
        Heston or Bates parameter vector.

    Returns
    -------
    int
        The smallest N in :data:`AUTO_TERMS` with ``|phi(N pi / (b - a))| <= AUTO_CF_TOL`` at
        every expiry (the last candidate if none qualifies); where ``|phi(u)|`` decreases in
        ``u`` (the usual case) at least the largest of :func:`terms_per_expiry`, whose ladder
        is finer. The pricers' automatic choice (``n_terms=None``) is per expiry.

    Examples
    --------
    >>> p = (0.36, 2.0, 0.49, 1.2, -0.35)
    >>> t = np.array([0.1, 1.0])
    >>> auto_terms(t, *truncation_range(t, p), p)
    256
    """
    tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
    aa = np.atleast_1d(np.asarray(a, dtype=np.float64))
    bb = np.atleast_1d(np.asarray(b, dtype=np.float64))
    log_abs = _log_abs_cf_at_candidates(tt, aa, bb, params, AUTO_TERMS)
    ok = np.all(log_abs <= np.log(AUTO_CF_TOL), axis=0)
    return int(AUTO_TERMS[int(np.argmax(ok))] if ok.any() else AUTO_TERMS[-1])


# --------------------------------------------------------------------------------------------
# the COS engine


class _CosResult(NamedTuple):
    price: FloatArray
    grad: FloatArray | None
    delta: FloatArray | None
    gamma: FloatArray | None


def _cos_sums_numpy(
    coef: FloatArray,
    offsets: IntArray,
    a: FloatArray,
    b: FloatArray,
    x: FloatArray,
    order: IntArray,
    bounds: IntArray,
    want_density: bool,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Plain-NumPy twin of :func:`volguard.kernels._heston_cos_nb.cos_sums_nb` (same contract).

    Per expiry, the sums over j for all its strikes are two real matrix products of the
    strikes' ``cos``/``sin`` ``(u_j (c - a))`` rows with weight vectors built from the
    coefficients; the rows come from ``e^{i j theta} = e^{i 16 q theta} e^{i r theta}``
    tables, one complex product per entry.
    """
    m = coef.shape[0]
    n_opt = x.shape[0]
    e_psi = np.zeros((m, n_opt))
    e_chi = np.zeros((m, n_opt))
    density = np.zeros(n_opt)
    block = 16
    j_lo = np.arange(block, dtype=np.float64)
    for g in range(a.shape[0]):
        idx = order[bounds[g] : bounds[g + 1]]
        if idx.size == 0:
            continue
        n_terms = int(offsets[g + 1] - offsets[g])
        vecs = coef[:, offsets[g] : offsets[g + 1]]  # (m, N)
        width = b[g] - a[g]
        u = np.arange(n_terms, dtype=np.float64) * np.pi / width
        # put payoff coefficients on [a, c], c = clip(k, a, b):
        #   psi_j = sin(u_j (c - a)) / u_j  (c - a at j = 0),
        #   chi_j = (e^c (cos + u_j sin)(u_j (c - a)) - e^a) / (1 + u_j^2)
        inv_1pu2 = 1.0 / (1.0 + u * u)
        u_safe = np.where(u == 0.0, 1.0, u)
        w_sin_psi = np.where(u == 0.0, 0.0, vecs / u_safe)
        w_cos_chi = vecs * inv_1pu2
        w_sin_chi = vecs * (u * inv_1pu2)
        sum_w_chi = w_cos_chi.sum(axis=1)  # (m,)
        cos_w = np.concatenate([w_cos_chi, vecs[:1]], axis=0) if want_density else w_cos_chi
        sin_w = np.concatenate([w_sin_psi, w_sin_chi], axis=0)
        c_o = np.clip(x[idx], a[g], b[g])
        theta = np.pi * (c_o - a[g]) / width
        n_pad = -(-n_terms // block) * block
        j_hi = np.arange(0, n_pad, block, dtype=np.float64)
        lo = np.exp(1j * np.outer(theta, j_lo))
        hi = np.exp(1j * np.outer(theta, j_hi))
        phase = (hi[:, :, None] * lo[:, None, :]).reshape(len(idx), n_pad)[:, :n_terms]
        cos_part = phase.real @ cos_w.T  # (n_g, m [+1])
        sin_part = phase.imag @ sin_w.T  # (n_g, 2m)
        ec = np.exp(c_o)[:, None]
        e_psi[:, idx] = (vecs[:, 0][None, :] * (c_o - a[g])[:, None] + sin_part[:, :m]).T
        e_chi[:, idx] = (ec * (cos_part[:, :m] + sin_part[:, m:]) - np.exp(a[g]) * sum_w_chi).T
        if want_density:
            density[idx] = cos_part[:, m]
    return e_psi, e_chi, density


def _param_vector(params: Sequence[float]) -> FloatArray:
    """``(v0, kappa, theta, sigma, rho, lam, mu_j, sigma_j)`` as float64, ``lam = 0`` for Heston."""
    out = np.zeros(8)
    out[: len(params)] = np.asarray(params, dtype=np.float64)[:8]
    return out


def _cos(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    params: Sequence[float],
    discount: ArrayLike,
    n_terms: int | None,
    trunc_l: float,
    want_grad: bool,
    want_greeks: bool,
    use_numba: bool = True,
    numba_setup: bool | None = None,
) -> _CosResult:
    """The COS engine behind every public pricer.

    ``use_numba`` picks the numba kernels (default) or their plain-NumPy twins;
    ``numba_setup`` (default: ``use_numba``) does the same for the truncation range and the
    per-expiry N alone, so that tests can compare the two summation kernels on identical
    coefficients.
    """
    if numba_setup is None:
        numba_setup = use_numba
    f_b, k_b, t_b, c_b, df_b = np.broadcast_arrays(
        np.asarray(forward, dtype=np.float64),
        np.asarray(strike, dtype=np.float64),
        np.asarray(t, dtype=np.float64),
        np.asarray(is_call, dtype=np.bool_),
        np.asarray(discount, dtype=np.float64),
    )
    shape = f_b.shape
    fwd = f_b.ravel()
    strk = k_b.ravel()
    call = c_b.ravel()
    disc = df_b.ravel()
    logm = np.log(strk / fwd)

    # distinct expiries and the options of each: order[bounds[g]:bounds[g + 1]] (one sort)
    t_flat = t_b.ravel()
    order = np.argsort(t_flat, kind="stable")
    t_sorted = t_flat[order]
    new_group = np.empty(t_sorted.shape[0], dtype=np.bool_)
    new_group[:1] = True
    np.not_equal(t_sorted[1:], t_sorted[:-1], out=new_group[1:])
    t_u = t_sorted[new_group]
    n_t = t_u.shape[0]
    bounds = np.append(np.flatnonzero(new_group), t_sorted.shape[0]).astype(np.int64)
    p8 = _param_vector(params)
    if numba_setup:
        a, b = _nb.truncation_range_nb(t_u, p8, float(trunc_l), _nb._CUMULANT_SOLVE)
    else:
        a, b = truncation_range(t_u, params, trunc_l)
    if n_terms is not None:
        n_g = np.full(n_t, int(n_terms), dtype=np.int64)
    elif numba_setup:
        cand = np.asarray(EXPIRY_TERMS, dtype=np.float64)
        n_g = _nb.terms_per_expiry_nb(t_u, a, b, p8, cand, float(np.log(AUTO_CF_TOL)))
    else:
        n_g = terms_per_expiry(t_u, a, b, params)

    # one characteristic-function evaluation for all expiries, each on its own N terms,
    # flattened: expiry g owns the columns offsets[g]:offsets[g + 1]
    offsets = np.zeros(n_t + 1, dtype=np.int64)
    np.cumsum(n_g, out=offsets[1:])
    g_of = np.repeat(np.arange(n_t), n_g)
    j = (np.arange(offsets[-1]) - offsets[g_of]).astype(np.float64)
    width = (b - a)[g_of]
    u = j * np.pi / width
    tcol = t_u[g_of]
    dpsi: ComplexArray | None = None
    if use_numba and not want_grad:
        psi = _nb.log_cf_nb(u, tcol, p8)
    elif use_numba:
        psi, dpsi = _nb.log_cf_grad_nb(u, tcol, p8, 8 if len(params) > 5 else 5)
    else:
        uc = u.astype(np.complex128)
        parts = _heston_log_cf(uc, tcol, params, grad=want_grad)
        psi, dpsi = parts.psi, parts.grad
        if len(params) > 5:
            psi_j, dpsi_j = _jump_log_cf(uc, tcol, params, grad=want_grad)
            psi = psi + psi_j
            if want_grad:
                assert dpsi is not None and dpsi_j is not None
                dpsi = np.concatenate([dpsi, dpsi_j], axis=0)
    # density coefficients A_j = 2/(b-a) Re[phi(u_j) e^{-i u_j a}], first one halved
    scale = 2.0 / width
    scale[offsets[:-1]] = 1.0 / (b - a)
    arg = psi.imag - u * a[g_of]
    amp = np.exp(psi.real) * scale
    if want_grad:
        assert dpsi is not None
        rot = np.empty_like(psi)
        rot.real = amp * np.cos(arg)
        rot.imag = amp * np.sin(arg)
        coef = np.concatenate([rot.real[None], (dpsi * rot[None]).real], axis=0)
    else:
        coef = (amp * np.cos(arg))[None]  # (m, total): A, then dA/dp
    m = coef.shape[0]

    sums = _nb.cos_sums_nb if use_numba else _cos_sums_numpy
    e_psi, e_chi, density = sums(
        np.ascontiguousarray(coef), offsets, a, b, logm, order.astype(np.int64), bounds, want_greeks
    )

    put_all = disc[None, :] * (strk[None, :] * e_psi - fwd[None, :] * e_chi)  # (m, n) USD
    put = np.maximum(put_all[0], 0.0)
    price = np.where(call, put + disc * (fwd - strk), put)

    grad = put_all[1:].reshape((m - 1, *shape)) if want_grad else None

    delta = gamma = None
    if want_greeks:
        put_delta = -disc * e_chi[0]
        delta = np.where(call, put_delta + disc, put_delta).reshape(shape)
        inv = np.empty(order.shape[0], dtype=np.int64)  # expiry index of each option
        inv[order] = np.cumsum(new_group) - 1
        inside = (logm > a[inv]) & (logm < b[inv])
        gamma = np.where(inside, disc * strk / (fwd * fwd) * density, 0.0).reshape(shape)

    return _CosResult(price.reshape(shape), grad, delta, gamma)


_PRICE_DOC = """
    Parameters
    ----------
    forward : array_like
        Forward price F of the underlying for each option's expiry, USD, ``> 0``.
    strike : array_like
        Strike K, USD, ``> 0``.
    t : array_like
        Time to expiry, ACT/365 years, ``> 0``.
    is_call : array_like of bool
        True for calls, False for puts.
    params : sequence of floats
        {params}
    discount : array_like, default 1.0
        Discount factor to the payment date (dimensionless); 1.0 gives undiscounted prices.
    n_terms : int or None, default None
        Number of COS terms N. None picks, per expiry, the smallest N in :data:`EXPIRY_TERMS`
        at which ``|phi(N pi / (b - a))| <= 1e-12`` (:func:`terms_per_expiry`; 128-256 for
        typical crypto surfaces, more for high vol of variance with a low Feller ratio, whose
        characteristic function decays slowly). Fix N in a calibration loop to keep the
        objective smooth (:func:`auto_terms` gives one N for a set of expiries).
    trunc_l : float, default 10.0
        Half-width L of the truncation range in cumulant standard deviations.

    All array inputs are broadcast together; the output has the broadcast shape.
"""


def heston_price(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    params: Sequence[float],
    is_call: ArrayLike,
    *,
    discount: ArrayLike = 1.0,
    n_terms: int | None = None,
    trunc_l: float = DEFAULT_TRUNCATION_L,
) -> FloatArray:
    """European option prices under Heston by the COS method, a whole surface in one call.

    {doc}
    Returns
    -------
    ndarray
        Option values, USD per one unit of underlying.

    Notes
    -----
    With ``X = ln(F_T/F)`` truncated to ``[a, b] = c1 -+ L sqrt(|c2| + sqrt(|c4|))`` ([1]_;
    cumulants from :func:`cos_cumulants`), ``u_j = j pi / (b - a)``, the put is
    ([1]_)::

        P = D sum'_j Re[phi(u_j) e^{-i u_j a}] 2/(b-a) (K psi_j(a, c) - F chi_j(a, c))
        chi_j(a, c) = int_a^c e^x cos(u_j (x - a)) dx,  psi_j(a, c) = int_a^c cos(u_j (x - a)) dx

    with ``c = clip(ln(K/F), a, b)`` and the first term of the sum halved. Per call: the
    truncation ranges and the per-expiry N come from a numba kernel (a few scalar
    characteristic-function values per expiry); the characteristic function is evaluated once,
    vectorised, on all expiries' terms together; one numba kernel then accumulates the sums
    over j of every option, with ``cos``/``sin`` ``(u_j (c - a))`` from a rotation recurrence
    (restarted every 32 terms) instead of tables. A plain-NumPy twin of each kernel is tested
    against it. Calls come from put-call
    parity ``C = P + D (F - K)``, as recommended in [1]_ (put coefficients are bounded by K). Deep
    out-of-the-money calls therefore carry an absolute, not relative, error of about
    ``1e-13 F``.

    References
    ----------
    .. [1] Fang and Oosterlee (2008), SIAM J. Sci. Comput. 31(2), 826-848. doi:10.1137/080718061

    Examples
    --------
    Fang and Oosterlee (2008), Heston example (S0 = 100, r = 0, T = 1):

    >>> p = (0.0175, 1.5768, 0.0398, 0.5751, -0.5711)
    >>> round(float(heston_price(100.0, 100.0, 1.0, p, True)), 7)
    5.7851554
    """
    return _cos(forward, strike, t, is_call, params, discount, n_terms, trunc_l, False, False).price


def bates_price(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    params: Sequence[float],
    is_call: ArrayLike,
    *,
    discount: ArrayLike = 1.0,
    n_terms: int | None = None,
    trunc_l: float = DEFAULT_TRUNCATION_L,
) -> FloatArray:
    """European option prices under Bates (Heston + Merton jumps) by the COS method.

    {doc}
    Returns
    -------
    ndarray
        Option values, USD per one unit of underlying.

    Notes
    -----
    As :func:`heston_price` with :func:`bates_cf` in place of :func:`heston_cf`. With
    ``lam > 0`` the truncation half-width is at least ``|mu_j| + L sigma_j``, so that one jump
    fits in the range even where the cumulants are tiny (short expiries).

    Examples
    --------
    With zero intensity Bates is Heston:

    >>> p = (0.0175, 1.5768, 0.0398, 0.5751, -0.5711)
    >>> round(float(bates_price(100.0, 100.0, 1.0, (*p, 0.0, -0.1, 0.2), True)), 7)
    5.7851554
    """
    return _cos(forward, strike, t, is_call, params, discount, n_terms, trunc_l, False, False).price


def heston_price_grad(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    params: Sequence[float],
    is_call: ArrayLike,
    *,
    discount: ArrayLike = 1.0,
    n_terms: int | None = None,
    trunc_l: float = DEFAULT_TRUNCATION_L,
) -> tuple[FloatArray, FloatArray]:
    """Heston COS prices and their analytic gradient with respect to the 5 parameters.

    {doc}
    Returns
    -------
    price : ndarray
        Option values, USD per one unit of underlying, broadcast shape ``S``.
    grad : ndarray, shape ``(5, *S)``
        ``d price / d (v0, kappa, theta, sigma, rho)``, USD per unit of each parameter (the
        order of :data:`HESTON_PARAMS`). Calls and puts share it (parity does not depend on
        the parameters).

    Notes
    -----
    The COS sum is differentiated term by term with the truncation range held fixed [3]_:
    ``d/dp Re[phi e^{-iua}] = Re[phi (d ln phi / dp) e^{-iua}]``. ``d ln phi/dp`` is in closed
    form: ``d ln phi/d v0 = D``, ``d ln phi/d theta = C/theta`` and, for ``p`` in
    ``(kappa, sigma, rho)``, the chain rule through ``beta``, ``d``, ``g`` and ``e^{-dt}`` of
    the little-trap form (see :func:`heston_cf`). The gradient costs about three
    characteristic-function evaluations, against ten for central differences.

    References
    ----------
    .. [3] Cui, del Bano Rollin, Germano (2017), EJOR 263(2), 625-638.
       doi:10.1016/j.ejor.2017.05.018

    Examples
    --------
    >>> p = (0.0175, 1.5768, 0.0398, 0.5751, -0.5711)
    >>> price, grad = heston_price_grad(100.0, [90.0, 110.0], 1.0, p, False)
    >>> grad.shape
    (5, 2)
    """
    res = _cos(forward, strike, t, is_call, params, discount, n_terms, trunc_l, True, False)
    assert res.grad is not None
    return res.price, res.grad


def bates_price_grad(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    params: Sequence[float],
    is_call: ArrayLike,
    *,
    discount: ArrayLike = 1.0,
    n_terms: int | None = None,
    trunc_l: float = DEFAULT_TRUNCATION_L,
) -> tuple[FloatArray, FloatArray]:
    """Bates COS prices and their analytic gradient with respect to the 8 parameters.

    {doc}
    Returns
    -------
    price : ndarray
        Option values, USD per one unit of underlying, broadcast shape ``S``.
    grad : ndarray, shape ``(8, *S)``
        Derivatives in the order of :data:`BATES_PARAMS`, USD per unit of each parameter.

    Notes
    -----
    As :func:`heston_price_grad`; the jump part of ``ln phi`` is
    ``lam t (J - 1) - i u lam t (m - 1)`` with ``J = exp(i u mu_j - sigma_j^2 u^2/2)`` and
    ``m = exp(mu_j + sigma_j^2/2)``, whose derivatives are elementary.

    Examples
    --------
    >>> p = (0.04, 2.0, 0.04, 0.5, -0.7, 0.5, -0.1, 0.2)
    >>> bates_price_grad(100.0, 100.0, 0.5, p, True)[1].shape
    (8,)
    """
    res = _cos(forward, strike, t, is_call, params, discount, n_terms, trunc_l, True, False)
    assert res.grad is not None
    return res.price, res.grad


def _greeks(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    params: Sequence[float],
    discount: ArrayLike,
    n_terms: int | None,
    trunc_l: float,
    vega: bool,
) -> CosGreeks:
    res = _cos(forward, strike, t, is_call, params, discount, n_terms, trunc_l, vega, True)
    assert res.delta is not None and res.gamma is not None
    vega_v0 = res.grad[0] if res.grad is not None else np.full_like(res.price, np.nan)
    return CosGreeks(res.price, res.delta, res.gamma, vega_v0)


def heston_greeks(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    params: Sequence[float],
    is_call: ArrayLike,
    *,
    discount: ArrayLike = 1.0,
    n_terms: int | None = None,
    trunc_l: float = DEFAULT_TRUNCATION_L,
    vega: bool = True,
) -> CosGreeks:
    """Heston COS price, delta and gamma in the forward (variance fixed) and vega in v0.

    {doc}
    Returns
    -------
    CosGreeks
        ``price`` (USD), ``delta`` (dPrice/dF), ``gamma`` (d2Price/dF2, 1/USD) and ``vega_v0``
        (dPrice/dv0, USD per unit variance; NaN with ``vega=False``, which skips the parameter
        gradient and takes about half the time), each of the broadcast shape.

    Notes
    -----
    Differentiating the COS put in F at fixed K, the moving upper limit ``c = ln(K/F)`` of the
    payoff integral contributes nothing (the payoff vanishes there), so::

        dP/dF = -D sum' A_j chi_j(a, c),    d2P/dF2 = D K / F^2 f_X(ln(K/F)),

    with ``A_j`` the density coefficients and ``f_X`` the COS density; call delta adds ``D``.
    This is the "sticky-variance" delta: ``v0`` is held fixed while F moves.

    Examples
    --------
    >>> p = (0.0175, 1.5768, 0.0398, 0.5751, -0.5711)
    >>> g = heston_greeks(100.0, 100.0, 1.0, p, True)
    >>> bool(0.0 < g.delta < 1.0 and g.gamma > 0.0 and g.vega_v0 > 0.0)
    True
    """
    return _greeks(forward, strike, t, is_call, params, discount, n_terms, trunc_l, vega)


def bates_greeks(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    params: Sequence[float],
    is_call: ArrayLike,
    *,
    discount: ArrayLike = 1.0,
    n_terms: int | None = None,
    trunc_l: float = DEFAULT_TRUNCATION_L,
    vega: bool = True,
) -> CosGreeks:
    """Bates COS price, delta, gamma (variance fixed) and vega in v0; see :func:`heston_greeks`.

    {doc}
    Returns
    -------
    CosGreeks
        As :func:`heston_greeks`.

    Examples
    --------
    >>> p = (0.04, 2.0, 0.04, 0.5, -0.7, 0.5, -0.1, 0.2)
    >>> g = bates_greeks(100.0, 100.0, 0.5, p, False)
    >>> bool(-1.0 < g.delta < 0.0)
    True
    """
    return _greeks(forward, strike, t, is_call, params, discount, n_terms, trunc_l, vega)


for _fn, _p in (
    (heston_price, "``(v0, kappa, theta, sigma, rho)``, see the module docstring."),
    (bates_price, "``(v0, kappa, theta, sigma, rho, lam, mu_j, sigma_j)``, see the module."),
    (heston_price_grad, "``(v0, kappa, theta, sigma, rho)``, see the module docstring."),
    (bates_price_grad, "``(v0, kappa, theta, sigma, rho, lam, mu_j, sigma_j)``."),
    (heston_greeks, "``(v0, kappa, theta, sigma, rho)``, see the module docstring."),
    (bates_greeks, "``(v0, kappa, theta, sigma, rho, lam, mu_j, sigma_j)``."),
):
    assert _fn.__doc__ is not None
    _fn.__doc__ = _fn.__doc__.replace(
        "{doc}", _PRICE_DOC.format(params=_p).strip("\n").lstrip() + "\n"
    )
