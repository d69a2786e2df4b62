"""SABR lognormal (Black-76) implied volatility: Hagan et al. (2002) with Obloj's (2008) leading
term, vectorised, exact at the money, with its analytic Jacobian in (alpha, rho, nu).

Pure NumPy kernels: they assume validated input (``forward > 0``, ``strike > 0``, ``t >= 0``,
``alpha > 0``, ``0 <= beta <= 1``, ``-1 < rho < 1``, ``nu >= 0``) and do no checking.

Model: ``dF = a_t F^beta dW1``, ``da = nu a_t dW2``, ``d<W1, W2> = rho dt``, ``a_0 = alpha``;
``F`` is the forward (USD), ``alpha`` has units USD^(1-beta) / sqrt(year), ``nu`` is 1/sqrt(year).
Volatilities are decimals per sqrt(year); time is ACT/365 years.

References
----------
.. [1] Hagan, P. S., Kumar, D., Lesniewski, A. S. and Woodward, D. E. (2002). Managing smile
   risk. Wilmott Magazine, September 2002, 84-108.
.. [2] Obloj, J. (2008). Fine-tune your smile: correction to Hagan et al. Wilmott Magazine,
   May 2008. arXiv:0708.0998
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from volguard._typing import ArrayLike, FloatArray

SabrVariant = Literal["obloj", "hagan"]
"""Leading term: ``"obloj"`` (default, Obloj 2008) or ``"hagan"`` (Hagan et al. 2002, 2.17a)."""

SABR_JAC_PARAMS = ("alpha", "rho", "nu")
"""Order of the rows of :func:`sabr_vol_jac` (beta is held fixed)."""

_SERIES_Z = 0.1
"""Below this ``|z|`` the ratio ``z / x(z)`` and its derivatives come from their series."""

_SERIES_TERMS = 22
"""Series terms; the remainder is below ``0.1**22 * 22**2 < 1e-19``."""


def _x_of_z(z: FloatArray, rho: FloatArray) -> FloatArray:
    """``x(z) = ln((sqrt(1 - 2 rho z + z^2) + z - rho) / (1 - rho))`` without cancellation.

    For ``z >= 0``: ``x = log1p(z (S + 1 + z - 2 rho) / ((S + 1)(1 - rho)))``, a sum of
    non-negative terms; ``x(z, rho) = -x(-z, -rho)`` covers ``z < 0``.
    """
    sgn = np.where(z < 0.0, -1.0, 1.0)
    zp = sgn * z
    rp = sgn * rho
    s = np.sqrt(1.0 - 2.0 * rp * zp + zp * zp)
    return sgn * np.log1p(zp * (s + 1.0 + zp - 2.0 * rp) / ((s + 1.0) * (1.0 - rp)))


def _ratio(
    z: FloatArray, rho: FloatArray, want_derivs: bool
) -> tuple[FloatArray, FloatArray | None, FloatArray | None]:
    """``R = z / x(z)`` and, optionally, ``dR/dz`` and ``dR/drho``; exact at ``z = 0``."""
    small = np.abs(z) < _SERIES_Z
    # series: x(z)/z = sum_n P_n(rho) z^n / (n+1) (Legendre generating function integrated)
    zs = np.where(small, z, 0.0)
    p_prev = np.ones_like(rho)  # P_0
    p_cur = rho.copy()  # P_1
    dp_prev = np.zeros_like(rho)  # P_0'
    dp_cur = np.ones_like(rho)  # P_1'
    q = np.ones_like(zs)
    q_z = np.zeros_like(zs)
    q_rho = np.zeros_like(zs)
    zpow = np.ones_like(zs)  # z^(n-1)
    for n in range(1, _SERIES_TERMS):
        q_z = q_z + n * p_cur * zpow / (n + 1)
        zpow = zpow * zs  # z^n
        q = q + p_cur * zpow / (n + 1)
        q_rho = q_rho + dp_cur * zpow / (n + 1)
        # Bonnet: (n+1) P_{n+1} = (2n+1) rho P_n - n P_{n-1}; P'_{n+1} = P'_{n-1} + (2n+1) P_n
        p_next = ((2 * n + 1) * rho * p_cur - n * p_prev) / (n + 1)
        dp_next = dp_prev + (2 * n + 1) * p_cur
        p_prev, p_cur = p_cur, p_next
        dp_prev, dp_cur = dp_cur, dp_next
    r_series = 1.0 / q

    zc = np.where(small, 1.0, z)  # dummy away from the series region
    x = _x_of_z(zc, rho)
    r_closed = zc / x
    r = np.where(small, r_series, r_closed)
    if not want_derivs:
        return r, None, None
    s = np.sqrt(1.0 - 2.0 * rho * zc + zc * zc)
    r_z_closed = (x - zc / s) / (x * x)
    x_rho = zc * zc * (s + 1.0 + rho * zc - 2.0 * rho * rho) / ((s + 1.0) ** 2 * (1.0 - rho**2) * s)
    r_rho_closed = -zc * x_rho / (x * x)
    r_z = np.where(small, -q_z * r_series**2, r_z_closed)
    r_rho = np.where(small, -q_rho * r_series**2, r_rho_closed)
    return r, r_z, r_rho


def _x_over_sinh(s: FloatArray) -> FloatArray:
    """``s / sinh(s)``, 1 at 0."""
    small = np.abs(s) < 1e-4
    ss = np.where(small, 1.0, s)
    return np.where(small, 1.0 - s * s / 6.0, ss / np.sinh(ss))


def _sabr(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    alpha: ArrayLike,
    beta: ArrayLike,
    rho: ArrayLike,
    nu: ArrayLike,
    variant: SabrVariant,
    want_jac: bool,
) -> tuple[FloatArray, FloatArray | None]:
    f, k, tt, a, b, r, v = (
        np.asarray(x, dtype=np.float64)
        for x in np.broadcast_arrays(forward, strike, t, alpha, beta, rho, nu)
    )
    q = 1.0 - b
    y = np.log(f / k)
    fk_q2 = np.exp(0.5 * q * np.log(f * k))  # (F K)^((1 - beta)/2)
    if variant == "obloj":
        h = _x_over_sinh(0.5 * q * y)
        g = h / fk_q2  # alpha G = alpha q y / (F^q - K^q)
        z0 = fk_q2 * y / h  # (F^q - K^q) / q
    else:
        qy2 = (q * y) ** 2
        g = 1.0 / (fk_q2 * (1.0 + qy2 / 24.0 + qy2 * qy2 / 1920.0))
        z0 = fk_q2 * y
    z = v * z0 / a
    ratio, r_z, r_rho = _ratio(z, r, want_jac)
    i0 = a * g * ratio
    i1 = (
        q * q * a * a / (24.0 * fk_q2 * fk_q2)
        + r * b * v * a / (4.0 * fk_q2)
        + (2.0 - 3.0 * r * r) * v * v / 24.0
    )
    corr = 1.0 + i1 * tt
    vol = i0 * corr
    if not want_jac:
        return vol, None
    assert r_z is not None and r_rho is not None
    di0 = np.stack([g * (ratio - z * r_z), a * g * r_rho, g * r_z * z0])
    di1 = np.stack(
        [
            q * q * a / (12.0 * fk_q2 * fk_q2) + r * b * v / (4.0 * fk_q2),
            b * v * a / (4.0 * fk_q2) - r * v * v / 4.0,
            r * b * a / (4.0 * fk_q2) + (2.0 - 3.0 * r * r) * v / 12.0,
        ]
    )
    jac = di0 * corr + i0 * tt * di1
    return vol, jac


def sabr_vol(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    alpha: ArrayLike,
    beta: ArrayLike,
    rho: ArrayLike,
    nu: ArrayLike,
    *,
    variant: SabrVariant = "obloj",
) -> FloatArray:
    """SABR Black-76 implied volatility, exact at the money.

    Parameters
    ----------
    forward : array_like
        Forward F, USD, ``> 0``.
    strike : array_like
        Strike K, USD, ``> 0``.
    t : array_like
        Time to expiry, ACT/365 years, ``>= 0``.
    alpha : array_like
        Initial volatility of the forward, USD^(1-beta) per sqrt(year), ``> 0``.
    beta : array_like
        CEV exponent, ``0 <= beta <= 1`` (1: lognormal backbone, usual for crypto).
    rho : array_like
        Forward-volatility correlation, ``-1 < rho < 1``.
    nu : array_like
        Volatility of volatility, per sqrt(year), ``>= 0``.
    variant : {"obloj", "hagan"}, default "obloj"
        Leading term of the expansion, see Notes.

    All array inputs broadcast together (one smile per expiry: pass per-expiry parameters as
    columns).

    Returns
    -------
    ndarray
        Black-76 implied volatility, decimal per sqrt(year), of the broadcast shape.

    Notes
    -----
    With ``y = ln(F/K)``, ``q = 1 - beta``, the volatility is ``I0 (1 + I1 t)`` where ([1]_,
    eq. (2.17a); [2]_)::

        I1 = q^2 alpha^2 / (24 (FK)^q) + rho beta nu alpha / (4 (FK)^(q/2))
             + (2 - 3 rho^2) nu^2 / 24
        x(z) = ln((sqrt(1 - 2 rho z + z^2) + z - rho) / (1 - rho))
        Obloj:  I0 = nu y / x(z),  z = nu (F^q - K^q) / (alpha q)    (z = nu y / alpha at q = 0)
        Hagan:  I0 = alpha (FK)^(-q/2) / (1 + q^2 y^2/24 + q^4 y^4/1920) z / x(z),
                z = nu (FK)^(q/2) y / alpha

    Both are evaluated as ``alpha G(F, K) R(z)`` with ``R = z / x(z)``; in the Obloj form
    ``G = (FK)^(-q/2) s / sinh(s)``, ``s = q y / 2``, so that no ``0/0`` appears at the money:
    ``R`` comes from its series ``1 / sum_n P_n(rho) z^n / (n + 1)`` (Legendre polynomials
    ``P_n``) for ``|z| < 0.1`` and from a cancellation-free ``log1p`` form of ``x(z)``
    beyond. At ``K = F`` both variants give ``alpha F^(beta - 1) (1 + I1 t)``.

    References
    ----------
    .. [1] Hagan, Kumar, Lesniewski, Woodward (2002), Wilmott Magazine, Sept. 2002, 84-108.
    .. [2] Obloj (2008), Wilmott Magazine, May 2008. arXiv:0708.0998

    Examples
    --------
    >>> import numpy as np
    >>> vol = sabr_vol(60_000.0, [50_000.0, 60_000.0, 75_000.0], 0.25, 0.6, 1.0, -0.2, 1.5)
    >>> np.round(vol, 6)
    array([0.66519 , 0.619688, 0.616985])
    """
    return _sabr(forward, strike, t, alpha, beta, rho, nu, variant, False)[0]


def sabr_vol_jac(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    alpha: ArrayLike,
    beta: ArrayLike,
    rho: ArrayLike,
    nu: ArrayLike,
    *,
    variant: SabrVariant = "obloj",
) -> tuple[FloatArray, FloatArray]:
    """SABR implied volatility and its analytic Jacobian in ``(alpha, rho, nu)``, beta fixed.

    Parameters
    ----------
    forward, strike, t, alpha, beta, rho, nu, variant
        As :func:`sabr_vol`.

    Returns
    -------
    vol : ndarray
        Implied volatility, decimal per sqrt(year), broadcast shape ``S``.
    jac : ndarray, shape ``(3, *S)``
        ``d vol / d alpha`` (per USD^(1-beta)/sqrt(year)), ``d vol / d rho``,
        ``d vol / d nu`` (per 1/sqrt(year)), in the order of :data:`SABR_JAC_PARAMS`.

    Notes
    -----
    With ``I0 = alpha G R(z, rho)``, ``z = nu Z0 / alpha`` (``G`` and ``Z0`` depend on F and
    K only)::

        dI0/dalpha = G (R - z dR/dz),   dI0/drho = alpha G dR/drho,   dI0/dnu = G Z0 dR/dz
        dR/dz = (x - z / S) / x^2,      dR/drho = -z (dx/drho) / x^2,  S = sqrt(1 - 2 rho z + z^2)
        dx/drho = z^2 (S + 1 + rho z - 2 rho^2) / ((S + 1)^2 (1 - rho^2) S)

    (``dx/drho = int_0^z s S(s)^-3 ds`` in closed form), switching to the differentiated series
    for ``|z| < 0.1``; ``I1`` is a polynomial in the parameters. The Jacobian is exact to
    rounding (no finite differences) and continuous through the money.

    Examples
    --------
    >>> vol, jac = sabr_vol_jac(60_000.0, [50_000.0, 60_000.0], 0.25, 0.6, 1.0, -0.2, 1.5)
    >>> jac.shape
    (3, 2)
    """
    vol, jac = _sabr(forward, strike, t, alpha, beta, rho, nu, variant, True)
    assert jac is not None
    return vol, jac
