"""``ssvi`` and ``essvi``: surface SVI, free of static arbitrage by construction.

A slice is ``w(k) = theta/2 (1 + rho psi k / theta + sqrt((psi k / theta + rho)^2 + 1 - rho^2))``
with ``theta`` the at-the-money total variance and ``psi = theta phi(theta)`` (Gatheral and
Jacquier 2014). Both engines describe the surface by ``(theta_i, rho_i, psi_i)`` at the quoted
expiries and join them as Corbetta et al. (2019) do: ``theta`` linear in ``t``; ``psi`` and
``rho psi`` linear in ``theta``; before the first expiry the slice shrinks to zero with
``theta``; after the last ``theta`` grows at its last rate with ``psi`` and ``rho`` held.

- ``ssvi``: one ``rho`` and the power law ``phi(theta) = eta / (theta^gamma (1 + theta)^(1-gamma))``
  with ``eta (1 + |rho|) <= 2`` and ``0 < gamma <= 1/2`` (G-J 2014, Remark 4.4: no static
  arbitrage), ``theta_i`` non-decreasing; fitted jointly.
- ``essvi``: a ``rho_i`` and ``psi_i`` per expiry (Hendriks and Martini 2019), fitted slice by
  slice in maturity order inside the no-arbitrage domain: butterfly, ``psi (1 + |rho|) <= 4`` and
  ``psi^2 (1 + |rho|) <= 4 theta``; calendar, ``theta_i >= theta_{i-1}`` and
  ``psi_i (1 +- rho_i) >= psi_{i-1} (1 +- rho_{i-1})`` (the wings' slopes never decrease), the
  sequential scheme of Corbetta et al. (2019). Those conditions do not rule out a crossing of
  two slices at finite ``k`` (Pasquazzi 2023), so the fit also penalises any crossing on
  :data:`CROSSING_K`; a slice that still crosses its predecessor falls back to the previous
  ``(rho, psi)`` with its own ``theta``, which can never cross (``w`` grows with ``theta`` at
  fixed ``rho`` and ``psi``), and the result says so. Each slice is a 3-parameter
  least-squares problem in ``(theta, rho, f)``, ``psi = lower + f (upper - lower)``, solved by
  a numba projected Levenberg-Marquardt (:func:`_lm_kernel`) with the analytic Jacobian
  (:func:`essvi_slice_gradient`, :func:`essvi_psi`); :func:`_fit_essvi_slice_reference` is
  its scipy twin.

References
----------
Gatheral, J. and Jacquier, A. (2014), Arbitrage-free SVI volatility surfaces, Quantitative Finance
14(1), 59-71, doi:10.1080/14697688.2013.819986. Hendriks, S. and Martini, C. (2019), The extended
SSVI volatility surface, J. Computational Finance 22(5), doi:10.21314/JCF.2019.369. Corbetta, J.,
Cohort, P., Laachir, I. and Martini, C. (2019), Robust calibration and arbitrage-free
interpolation of SSVI slices, Decisions in Economics and Finance 42, 665-677,
doi:10.1007/s10203-019-00251-w. Mingone, A. (2022), No arbitrage global parametrization for the
eSSVI volatility surface, Quantitative Finance 22(12), doi:10.1080/14697688.2022.2117076.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import least_squares

from volguard._typing import FloatArray
from volguard.kernels._jit import jit
from volguard.market.smile import slice_atm_vol
from volguard.models.base import SurfaceEngine
from volguard.models.quotes import FitQuotes

RHO_MAX = 0.999
THETA_MIN = 1e-8
CROSSING_K = np.linspace(-3.0, 3.0, 121)
"""Log-moneyness where consecutive eSSVI slices are kept from crossing."""
CROSSING_WEIGHT = 1e3


def ssvi_slice(k: FloatArray, theta: FloatArray, rho: FloatArray, psi: FloatArray) -> FloatArray:
    """Total variance of SSVI slices ``(theta, rho, psi)`` at log-moneyness ``k`` (broadcast).

    Examples
    --------
    >>> float(ssvi_slice(np.array(0.0), np.array(0.04), np.array(-0.5), np.array(0.2)))
    0.04
    """
    x = psi * k / theta
    w: FloatArray = theta / 2 * (1 + rho * x + np.sqrt((x + rho) ** 2 + 1 - rho**2))
    return w


def power_law_psi(theta: FloatArray, eta: float, gamma: float) -> FloatArray:
    """``psi = theta phi(theta)``, power law ``phi = eta theta^-gamma (1 + theta)^(gamma-1)``."""
    psi: FloatArray = eta * theta ** (1 - gamma) / (1 + theta) ** (1 - gamma)
    return psi


def slices_total_variance(
    k: FloatArray,
    t: FloatArray,
    times: FloatArray,
    theta: FloatArray,
    rho: FloatArray,
    psi: FloatArray,
) -> FloatArray:
    """Total variance of SSVI slices ``(theta_i, rho_i, psi_i)`` at ``times``, interpolated.

    ``theta(t)`` runs through 0 at ``t = 0``, linearly between expiries and at the last rate
    after the last one; ``psi`` and ``rho psi`` are linear in ``theta`` between slices, from 0
    below the first and held after the last, which keeps the slices' no-arbitrage conditions.
    """
    k_arr, t_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
    t_knots = np.concatenate([[0.0], times])
    th_knots = np.concatenate([[0.0], theta])
    rate = (theta[-1] - th_knots[-2]) / (times[-1] - t_knots[-2])
    th = np.where(
        t_arr <= times[-1],
        np.interp(t_arr, t_knots, th_knots),
        theta[-1] + rate * (t_arr - times[-1]),
    )
    th = np.maximum(th, THETA_MIN)
    ps = np.interp(th, th_knots, np.concatenate([[0.0], psi]))
    rp = np.interp(th, th_knots, np.concatenate([[0.0], rho * psi]))
    rho_t = np.where(ps > 0, rp / np.maximum(ps, 1e-300), rho[0])
    return ssvi_slice(k_arr, th, rho_t, ps)


class _SSVISurface(SurfaceEngine):
    """Shared surface of the SSVI family: slices ``(theta_i, rho_i, psi_i)`` at ``slice_t_``."""

    def total_variance(self, k: FloatArray, t: FloatArray) -> FloatArray:
        return slices_total_variance(k, t, self.slice_t_, self.theta_, self.rho_, self.psi_)

    def _store(
        self, quotes: FitQuotes, theta: FloatArray, rho: FloatArray, psi: FloatArray
    ) -> None:
        self.slice_t_ = np.array([np.median(quotes.slice(i).t) for i in range(theta.size)])
        self.theta_, self.rho_, self.psi_ = theta, rho, psi

    def _params(self, quotes: FitQuotes) -> dict[str, Any]:
        return {
            str(e): {"theta": float(th), "rho": float(r), "psi": float(p)}
            for e, th, r, p in zip(quotes.expiries, self.theta_, self.rho_, self.psi_, strict=True)
        }


def _atm_thetas(quotes: FitQuotes) -> FloatArray:
    """At-the-money total variance per expiry, made non-decreasing in maturity."""
    raw = [
        slice_atm_vol(s.k, s.mid_iv) ** 2 * float(np.median(s.t))
        for s in (quotes.slice(i) for i in range(len(quotes.expiries)))
    ]
    out: FloatArray = np.maximum.accumulate(np.maximum(np.asarray(raw), THETA_MIN))
    return out


class SSVI(_SSVISurface):
    """Gatheral-Jacquier SSVI with the power-law ``phi``, fitted jointly over all expiries.

    Parameters
    ----------
    weighting : {'vega', 'spread', 'open_interest', 'none'}
        Quote weights in the least-squares fit (residuals in implied vol).
    """

    name = "ssvi"

    def __init__(self, weighting: str = "vega") -> None:
        self.weighting = weighting

    def _calibrate(
        self, quotes: FitQuotes
    ) -> tuple[dict[str, Any], bool, str | None, tuple[str, ...]]:
        theta0 = _atm_thetas(quotes)
        n = theta0.size
        idx = quotes.expiry_index
        sw = np.sqrt(quotes.weight)

        def unpack(x: FloatArray) -> tuple[FloatArray, float, float, float]:
            theta = np.cumsum(x[3:])  # theta_1 and non-negative increments
            rho, u, gamma = float(x[0]), float(x[1]), float(x[2])
            return theta, rho, 2 * u / (1 + abs(rho)), gamma

        def residuals(x: FloatArray) -> FloatArray:
            theta, rho, eta, gamma = unpack(x)
            psi = power_law_psi(theta, eta, gamma)
            w = ssvi_slice(quotes.k, theta[idx], np.asarray(rho), psi[idx])
            vol: FloatArray = (np.sqrt(np.maximum(w, 1e-16) / quotes.t) - quotes.mid_iv) * sw
            return vol

        x0 = np.concatenate([[-0.2, 0.5, 0.4], theta0[:1], np.diff(theta0)])
        lower = np.concatenate([[-RHO_MAX, 1e-4, 1e-3], [THETA_MIN], np.zeros(n - 1)])
        upper = np.concatenate([[RHO_MAX, 1.0, 0.5], np.full(n, np.inf)])
        sol = least_squares(
            residuals,
            np.clip(x0, lower, upper),
            bounds=(lower, upper),
            method="trf",
            x_scale="jac",
            xtol=1e-10,
            ftol=1e-10,
            max_nfev=400,
        )
        theta, rho, eta, gamma = unpack(sol.x)
        self.eta_, self.gamma_ = eta, gamma
        self._store(quotes, theta, np.full(n, rho), power_law_psi(theta, eta, gamma))
        params = {"rho": rho, "eta": eta, "gamma": gamma, "slices": self._params(quotes)}
        return params, bool(sol.success), None, ()


class ESSVI(_SSVISurface):
    """Extended SSVI: ``rho`` and ``psi`` per expiry, fitted in maturity order (see module).

    Parameters
    ----------
    weighting : {'vega', 'spread', 'open_interest', 'none'}
        Quote weights in the least-squares fit (residuals in implied vol).
    """

    name = "essvi"

    def __init__(self, weighting: str = "vega") -> None:
        self.weighting = weighting

    def _calibrate(
        self, quotes: FitQuotes
    ) -> tuple[dict[str, Any], bool, str | None, tuple[str, ...]]:
        theta0 = _atm_thetas(quotes)
        thetas, rhos, psis, notes = [], [], [], []
        converged = True
        prev = (0.0, 0.0, 0.0)  # theta, rho, psi of the previous slice (none: zero)
        for i, expiry in enumerate(quotes.expiries):
            s = quotes.slice(i)
            (theta, rho, psi), ok = _fit_essvi_slice(s, max(theta0[i], prev[0]), prev)
            converged &= ok
            if prev[2] > 0 and _crosses(prev, (theta, rho, psi)):
                rho, psi = prev[1], prev[2]
                notes.append(
                    f"{expiry}: fitted slice crossed the previous one; kept its theta "
                    "with the previous rho and psi"
                )
            thetas.append(theta)
            rhos.append(rho)
            psis.append(psi)
            prev = (theta, rho, psi)
        self._store(quotes, np.asarray(thetas), np.asarray(rhos), np.asarray(psis))
        fallback = "previous slice's rho and psi where a slice crossed" if notes else None
        return self._params(quotes), converged, fallback, tuple(notes)


def essvi_slice_gradient(
    k: FloatArray, theta: float, rho: float, psi: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Total variance of one SSVI slice and its partial derivatives in ``(theta, rho, psi)``.

    Parameters
    ----------
    k : ndarray, shape (n,)
        Forward log-moneyness.
    theta, rho, psi : float
        The slice: ATM total variance (> 0), correlation (``|rho| < 1``), ``psi >= 0``.

    Returns
    -------
    w, dw_dtheta, dw_drho, dw_dpsi : ndarray, shape (n,)

    Notes
    -----
    With ``R = sqrt(psi^2 k^2 + 2 rho psi k theta + theta^2)`` the slice is
    ``w = (theta + rho psi k + R) / 2`` (Hendriks and Martini 2019, eq. 2.1, multiplied out), so

    - ``dw/dtheta = (1 + (rho psi k + theta) / R) / 2``,
    - ``dw/drho = psi k (1 + theta / R) / 2``,
    - ``dw/dpsi = (rho k + (psi k^2 + rho k theta) / R) / 2``.

    ``R >= theta sqrt(1 - rho^2) > 0``, so all are finite.

    Examples
    --------
    >>> w, *_ = essvi_slice_gradient(np.array([0.0]), 0.04, -0.5, 0.2)
    >>> float(w[0])
    0.04
    """
    pk = psi * k
    r = np.sqrt(pk * pk + 2 * rho * pk * theta + theta * theta)
    w: FloatArray = 0.5 * (theta + rho * pk + r)
    d_theta: FloatArray = 0.5 * (1 + (rho * pk + theta) / r)
    d_rho: FloatArray = 0.5 * pk * (1 + theta / r)
    d_psi: FloatArray = 0.5 * (rho * k + (pk * k + rho * k * theta) / r)
    return w, d_theta, d_rho, d_psi


Slice = tuple[float, float, float]
"""``(theta, rho, psi)`` of one slice."""


def _slice_w(params: Slice, k: FloatArray) -> FloatArray:
    theta, rho, psi = params
    return ssvi_slice(k, np.asarray(theta), np.asarray(rho), np.asarray(psi))


def _crosses(prev: Slice, new: Slice) -> bool:
    return bool(np.any(_slice_w(prev, CROSSING_K) - _slice_w(new, CROSSING_K) > 1e-12))


def _psi_bounds(theta: float, rho: float, prev: Slice) -> tuple[float, float]:
    """The no-arbitrage interval of ``psi`` given ``theta``, ``rho`` and the previous slice."""
    _, rho_p, psi_p = prev
    lower = max(psi_p * (1 + rho_p) / (1 + rho), psi_p * (1 - rho_p) / (1 - rho))
    upper = min(4 / (1 + abs(rho)), np.sqrt(4 * theta / (1 + abs(rho))))
    return lower, upper


def essvi_psi(theta: float, rho: float, frac: float, prev: Slice) -> tuple[float, FloatArray]:
    """``psi`` of a slice from its fraction of the no-arbitrage interval, and its gradient.

    Parameters
    ----------
    theta, rho : float
        ATM total variance and correlation of the slice.
    frac : float
        Position in ``[0, 1]`` of ``psi`` in its interval ``[lower, upper]``.
    prev : tuple of float
        ``(theta, rho, psi)`` of the previous slice (zeros for the first one).

    Returns
    -------
    psi : float
    grad : ndarray, shape (3,)
        ``d psi / d(theta, rho, frac)`` (one-sided where a max or min switches branch).

    Notes
    -----
    ``psi = lower + frac max(upper - lower, 0)`` with the calendar bound
    ``lower = max(psi_p (1 + rho_p) / (1 + rho), psi_p (1 - rho_p) / (1 - rho))`` (wing slopes
    ``psi (1 +- rho)`` never decrease) and the butterfly bound
    ``upper = min(4 / (1 + |rho|), sqrt(4 theta / (1 + |rho|)))`` (Hendriks and Martini 2019,
    Prop. 3.5; Corbetta et al. 2019, sec. 3). Derivatives:
    ``d lower / d rho = -psi_p (1 + rho_p) / (1 + rho)^2`` or ``psi_p (1 - rho_p) / (1 - rho)^2``;
    ``d upper / d rho = -4 sgn(rho) / (1 + |rho|)^2`` or ``-sgn(rho) upper / (2 (1 + |rho|))``;
    ``d upper / d theta = 0`` or ``upper / (2 theta)``.

    Examples
    --------
    >>> psi, grad = essvi_psi(0.04, 0.0, 0.5, (0.0, 0.0, 0.0))
    >>> round(psi, 6), [round(float(g), 6) + 0.0 for g in grad]
    (0.2, [2.5, 0.0, 0.4])
    """
    _, rho_p, psi_p = prev
    up, down = psi_p * (1 + rho_p), psi_p * (1 - rho_p)
    if up / (1 + rho) >= down / (1 - rho):
        lower, d_lower = up / (1 + rho), -up / (1 + rho) ** 2
    else:
        lower, d_lower = down / (1 - rho), down / (1 - rho) ** 2
    sign, m = float(np.sign(rho)), 1 + abs(rho)
    wing, atm = 4 / m, float(np.sqrt(4 * theta / m))
    if wing <= atm:
        upper, d_upper_theta, d_upper_rho = wing, 0.0, -4 * sign / m**2
    else:
        upper, d_upper_theta, d_upper_rho = atm, atm / (2 * theta), -sign * atm / (2 * m)
    if upper > lower:
        psi = lower + frac * (upper - lower)
        grad = np.array(
            [frac * d_upper_theta, (1 - frac) * d_lower + frac * d_upper_rho, upper - lower]
        )
    else:
        psi, grad = lower, np.array([0.0, d_lower, 0.0])
    return psi, grad


class _SliceProblem:
    """Residuals and analytic Jacobian of one eSSVI slice fit in ``x = (theta, rho, frac)``.

    Residuals: ``sqrt(weight) (sqrt(w(k) / t) - mid_iv)`` at the quotes, then, when there is a
    previous slice, ``CROSSING_WEIGHT max(w_prev(k) - w(k), 0) / theta_prev`` on
    :data:`CROSSING_K`. Chain rule: ``d vol / d w = 1 / (2 vol t)`` and
    ``dw/dx = dw/d(theta, rho, psi) . d(theta, rho, psi)/dx`` (:func:`essvi_slice_gradient`,
    :func:`essvi_psi`). Each point is evaluated once per ``x`` (the last ``x`` is cached, as
    ``least_squares`` asks for the residuals and then the Jacobian at the same point).
    """

    def __init__(
        self, k: FloatArray, t: FloatArray, mid_iv: FloatArray, sw: FloatArray, prev: Slice
    ) -> None:
        self.prev, self.n = prev, k.size
        self.mid_iv, self.t, self.sw = mid_iv, t, sw
        if prev[2] > 0:
            self.k = np.concatenate([k, CROSSING_K])
            self.w_prev: FloatArray | None = _slice_w(prev, CROSSING_K)
            self.cross_scale = CROSSING_WEIGHT / max(prev[0], THETA_MIN)
        else:
            self.k, self.w_prev, self.cross_scale = k, None, 0.0
        self._x: FloatArray | None = None
        self._r = self._j = np.empty(0)

    def _evaluate(self, x: FloatArray) -> None:
        if self._x is not None and np.array_equal(x, self._x):
            return
        theta, rho, frac = float(x[0]), float(x[1]), float(x[2])
        psi, dpsi = essvi_psi(theta, rho, frac, self.prev)
        w, d_theta, d_rho, d_psi = essvi_slice_gradient(self.k, theta, rho, psi)
        dw = np.empty((w.size, 3))
        dw[:, 0] = d_theta + d_psi * dpsi[0]
        dw[:, 1] = d_rho + d_psi * dpsi[1]
        dw[:, 2] = d_psi * dpsi[2]
        n = self.n
        wq = np.maximum(w[:n], 1e-16)
        vol = np.sqrt(wq / self.t)
        r = np.empty(w.size)
        r[:n] = (vol - self.mid_iv) * self.sw
        scale = np.where(w[:n] > 1e-16, self.sw / (2 * vol * self.t), 0.0)
        if self.w_prev is not None:
            gap = self.w_prev - w[n:]
            active = gap > 0
            r[n:] = self.cross_scale * np.where(active, gap, 0.0)
            scale = np.concatenate([scale, np.where(active, -self.cross_scale, 0.0)])
        self._x, self._r, self._j = x.copy(), r, dw * scale[:, None]

    def residuals(self, x: FloatArray) -> FloatArray:
        self._evaluate(x)
        return self._r

    def jacobian(self, x: FloatArray) -> FloatArray:
        self._evaluate(x)
        return self._j


def _slice_start(theta0: float, prev: Slice) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Start and box of ``x = (theta, rho, frac)`` for one slice.

    ``theta`` starts at the ATM ``theta0`` (at least the previous slice's) inside
    ``[theta_prev, 4 theta0]``; after the first slice ``rho`` starts at the previous one and
    ``psi`` at the previous one scaled by ``sqrt(theta0 / theta_prev)`` (the ``gamma = 1/2``
    power law), placed in its no-arbitrage interval.
    """
    theta_min = max(prev[0], THETA_MIN)
    theta_start = max(theta0, theta_min)
    lower = np.array([theta_min, -RHO_MAX, 0.0])
    upper = np.array([theta_start * 4 + 1e-6, RHO_MAX, 1.0])
    if prev[2] > 0:
        rho0 = prev[1]
        lo, hi = _psi_bounds(theta_start, rho0, prev)
        psi0 = prev[2] * np.sqrt(theta_start / max(prev[0], THETA_MIN))
        frac0 = float(np.clip((psi0 - lo) / (hi - lo), 0.05, 0.95)) if hi > lo else 0.5
    else:
        rho0, frac0 = -0.2, 0.5
    return np.clip(np.array([theta_start, rho0, frac0]), lower, upper), lower, upper


def _fit_essvi_slice_reference(s: FitQuotes, theta0: float, prev: Slice) -> tuple[Slice, bool]:
    """The plain-NumPy twin of :func:`_fit_essvi_slice`: scipy's trust-region reflective
    ``least_squares`` on :class:`_SliceProblem` with its analytic Jacobian."""
    problem = _SliceProblem(s.k, s.t, s.mid_iv, np.sqrt(s.weight), prev)
    x0, lower, upper = _slice_start(theta0, prev)
    sol = least_squares(
        problem.residuals,
        x0,
        jac=problem.jacobian,
        bounds=(lower, upper),
        method="trf",
        x_scale="jac",
        xtol=1e-8,
        ftol=1e-10,
        gtol=1e-10,
        max_nfev=100,
    )
    theta, rho, frac = (float(v) for v in sol.x)
    psi, _ = essvi_psi(theta, rho, frac, prev)
    lo, hi = _psi_bounds(theta, rho, prev)
    return (theta, rho, psi), bool(sol.success) and lo <= hi + 1e-12


# ------------------------------------------------------------------ numba slice fit
LM_MAX_ITER = 100
LM_FTOL = 1e-12
"""Stop when an accepted step lowers the cost by less than this fraction."""
LM_XTOL = 1e-10
"""Stop when no coordinate moves by more than this fraction of ``|x| + LM_XTOL``."""


@jit
def _psi_kernel(
    theta: float, rho: float, frac: float, rho_p: float, psi_p: float, grad: FloatArray
) -> float:
    """:func:`essvi_psi` compiled: returns ``psi``, writes ``d psi / d(theta, rho, frac)``."""
    up, down = psi_p * (1 + rho_p), psi_p * (1 - rho_p)
    if up / (1 + rho) >= down / (1 - rho):
        lower, d_lower = up / (1 + rho), -up / (1 + rho) ** 2
    else:
        lower, d_lower = down / (1 - rho), down / (1 - rho) ** 2
    sign = 1.0 if rho > 0 else (-1.0 if rho < 0 else 0.0)
    m = 1 + abs(rho)
    wing, atm = 4 / m, np.sqrt(4 * theta / m)
    if wing <= atm:
        upper, d_upper_theta, d_upper_rho = wing, 0.0, -4 * sign / m**2
    else:
        upper, d_upper_theta, d_upper_rho = atm, atm / (2 * theta), -sign * atm / (2 * m)
    if upper > lower:
        grad[0] = frac * d_upper_theta
        grad[1] = (1 - frac) * d_lower + frac * d_upper_rho
        grad[2] = upper - lower
        return lower + frac * (upper - lower)
    grad[0], grad[1], grad[2] = 0.0, d_lower, 0.0
    return lower


@jit
def _slice_kernel(
    x: FloatArray,
    k: FloatArray,
    t: FloatArray,
    mid: FloatArray,
    sw: FloatArray,
    w_prev: FloatArray,
    cross_scale: float,
    rho_p: float,
    psi_p: float,
    r: FloatArray,
    jac: FloatArray,
) -> float:
    """:class:`_SliceProblem` compiled: writes residuals and Jacobian, returns half the cost.

    ``k`` holds the ``n = t.size`` quotes followed by the ``w_prev.size`` crossing points.
    """
    theta, rho, frac = x[0], x[1], x[2]
    grad = np.empty(3)
    psi = _psi_kernel(theta, rho, frac, rho_p, psi_p, grad)
    n = t.size
    cost = 0.0
    for i in range(k.size):
        kk = k[i]
        pk = psi * kk
        root = np.sqrt(pk * pk + 2 * rho * pk * theta + theta * theta)
        w = 0.5 * (theta + rho * pk + root)
        d_psi = 0.5 * (rho * kk + (pk * kk + rho * kk * theta) / root)
        g0 = 0.5 * (1 + (rho * pk + theta) / root) + d_psi * grad[0]
        g1 = 0.5 * pk * (1 + theta / root) + d_psi * grad[1]
        g2 = d_psi * grad[2]
        if i < n:
            vol = np.sqrt(max(w, 1e-16) / t[i])
            r[i] = (vol - mid[i]) * sw[i]
            scale = sw[i] / (2 * vol * t[i]) if w > 1e-16 else 0.0
        else:
            gap = w_prev[i - n] - w
            r[i] = cross_scale * gap if gap > 0 else 0.0
            scale = -cross_scale if gap > 0 else 0.0
        jac[i, 0], jac[i, 1], jac[i, 2] = g0 * scale, g1 * scale, g2 * scale
        cost += r[i] * r[i]
    return 0.5 * cost


@jit
def _lm_kernel(
    x0: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    k: FloatArray,
    t: FloatArray,
    mid: FloatArray,
    sw: FloatArray,
    w_prev: FloatArray,
    cross_scale: float,
    rho_p: float,
    psi_p: float,
) -> tuple[FloatArray, bool]:
    """Projected Levenberg-Marquardt on the box ``[lower, upper]`` (3 parameters).

    Each iteration solves ``(J'J + lam diag(J'J)) d = -J'r`` over the free coordinates (those
    not at a bound with the gradient pushing outward), clips ``x + d`` to the box and accepts
    it if the cost falls (``lam / 3``), else retries with ``lam * 4``. Stops on a relative
    cost decrease below :data:`LM_FTOL`, a step below :data:`LM_XTOL`, a zero projected
    gradient, or ``lam`` above 1e12 (no descent left: a minimum to machine precision).
    Returns ``x`` and whether it stopped on one of these tests within :data:`LM_MAX_ITER`.
    """
    m = k.size
    r, jac = np.empty(m), np.empty((m, 3))
    r_new, jac_new = np.empty(m), np.empty((m, 3))
    x, x_new = x0.copy(), np.empty(3)
    cost = _slice_kernel(x, k, t, mid, sw, w_prev, cross_scale, rho_p, psi_p, r, jac)
    lam = 1e-3
    a, b, g = np.empty((3, 3)), np.empty(3), np.empty(3)
    for _ in range(LM_MAX_ITER):
        for p in range(3):
            g[p] = 0.0
            for i in range(m):
                g[p] += jac[i, p] * r[i]
        free = np.ones(3, dtype=np.bool_)
        any_free = False
        for p in range(3):
            if (x[p] <= lower[p] and g[p] > 0) or (x[p] >= upper[p] and g[p] < 0):
                free[p] = False
            elif g[p] != 0.0:
                any_free = True
        if not any_free:
            return x, True
        while True:
            for p in range(3):
                for q in range(3):
                    s = 0.0
                    if free[p] and free[q]:
                        for i in range(m):
                            s += jac[i, p] * jac[i, q]
                    a[p, q] = s
            for p in range(3):
                if free[p]:
                    a[p, p] += lam * max(a[p, p], 1e-30)
                    b[p] = -g[p]
                else:
                    a[p, p], b[p] = 1.0, 0.0
            d = np.linalg.solve(a, b)
            moved = False
            for p in range(3):
                x_new[p] = min(max(x[p] + d[p], lower[p]), upper[p])
                if abs(x_new[p] - x[p]) > LM_XTOL * (abs(x[p]) + LM_XTOL):
                    moved = True
            if not moved:
                return x, True
            cost_new = _slice_kernel(
                x_new, k, t, mid, sw, w_prev, cross_scale, rho_p, psi_p, r_new, jac_new
            )
            if cost_new < cost:
                done = cost - cost_new <= LM_FTOL * cost
                x, x_new = x_new, x
                r, r_new = r_new, r
                jac, jac_new = jac_new, jac
                cost = cost_new
                lam = max(lam / 3, 1e-12)
                if done:
                    return x, True
                break
            lam *= 4
            if lam > 1e12:
                return x, True
    return x, False


def _fit_essvi_slice(s: FitQuotes, theta0: float, prev: Slice) -> tuple[Slice, bool]:
    """Fit ``(theta, rho, psi)`` of one slice with ``psi = lower + f (upper - lower)``.

    Minimises the residuals of :class:`_SliceProblem` (vega-or-other-weighted vol errors plus
    the crossing penalty) from :func:`_slice_start` with the compiled projected
    Levenberg-Marquardt :func:`_lm_kernel` and the analytic Jacobian; its scipy twin is
    :func:`_fit_essvi_slice_reference`. Returns the slice and whether the fit converged and
    the no-arbitrage interval of ``psi`` is not empty.
    """
    x0, lower, upper = _slice_start(theta0, prev)
    if prev[2] > 0:
        k = np.concatenate([s.k, CROSSING_K])
        w_prev = _slice_w(prev, CROSSING_K)
        cross_scale = CROSSING_WEIGHT / max(prev[0], THETA_MIN)
    else:
        k, w_prev, cross_scale = s.k, np.empty(0), 0.0
    x, ok = _lm_kernel(
        x0,
        lower,
        upper,
        k,
        s.t,
        s.mid_iv,
        np.sqrt(s.weight),
        w_prev,
        cross_scale,
        prev[1],
        prev[2],
    )
    theta, rho, frac = (float(v) for v in x)
    psi, _ = essvi_psi(theta, rho, frac, prev)
    lo, hi = _psi_bounds(theta, rho, prev)
    return (theta, rho, psi), bool(ok) and lo <= hi + 1e-12
