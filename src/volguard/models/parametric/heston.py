"""``heston`` and ``bates``: stochastic-volatility engines priced by COS and read as implied vols.

The surface is the model's own: ``w(k, t)`` is the Black-76 total implied variance of the COS
price (Fang and Oosterlee 2008) of the out-of-the-money option at forward log-moneyness ``k``
and ACT/365 years ``t`` (put below the forward, call at and above it), inverted with Let's Be
Rational. One parameter set describes every expiry, so the surface is calendar-consistent by
construction and interpolates in ``t`` through the model, not between slices.

Calibration is a bounded least-squares fit of vega-scaled price residuals with the analytic
COS price gradient of Cui, del Bano Rollin and Germano (2017) as Jacobian; see
:meth:`Heston._calibrate`.

Wing guard: far in the wings the COS price is a few 1e-13 of the forward (absolute error of
the COS sum, and cancellation in put-call parity for calls), and the implied vol of such a
price is noise or undefined. A price is *reliable* where it is above :data:`PRICE_FLOOR`
(normalised by the forward) and its implied vol is finite. Per expiry, the engine finds the
contiguous reliable range around ``k = 0`` on a fixed grid of :data:`GRID_Z` standard
deviations; beyond it ``w`` is extended linearly in ``k`` with the slope of the last two
reliable grid points, clipped to Lee's moment bounds (``-2 <= w' <= 0`` on the left,
``0 <= w' <= 2`` on the right). The result at a point never depends on the other points of
the query, and it is never NaN.

References
----------
Heston, S. L. (1993), A closed-form solution for options with stochastic volatility, Rev.
Financ. Stud. 6(2), 327-343, doi:10.1093/rfs/6.2.327. Bates, D. S. (1996), Jumps and stochastic
volatility: exchange rate processes implicit in Deutsche Mark options, Rev. Financ. Stud. 9(1),
69-107, doi:10.1093/rfs/9.1.69. Fang, F. and Oosterlee, C. W. (2008), A novel pricing method for
European options based on Fourier-cosine series expansions, SIAM J. Sci. Comput. 31(2),
826-848, doi:10.1137/080718061. Cui, Y., del Bano Rollin, S. and Germano, G. (2017), Full and
fast calibration of the Heston stochastic volatility model, European J. Oper. Res. 263(2),
625-638, doi:10.1016/j.ejor.2017.05.018. Lee, R. W. (2004), The moment formula for implied
volatility at extreme strikes, Math. Finance 14(3), 469-480,
doi:10.1111/j.0960-1627.2004.00200.x.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal, Self, cast

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from volguard._typing import FloatArray
from volguard.kernels.api import black76_greeks, black76_price, implied_vol
from volguard.kernels.heston_cos import (  # the kernel's own automatic-N rule, reused
    BATES_PARAMS,
    DEFAULT_TRUNCATION_L,
    HESTON_PARAMS,
    auto_terms,
    bates_greeks,
    bates_price,
    bates_price_grad,
    heston_greeks,
    heston_price,
    heston_price_grad,
    truncation_range,
)
from volguard.market.smile import slice_atm_vol
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import FIT_ERRORS, DeltaConvention, SurfaceEngine
from volguard.models.parametric.black76_flat import Black76Flat
from volguard.models.quotes import FitQuotes

HestonDelta = Literal["model", "minimum-variance", "sticky-strike", "sticky-moneyness"]


PRICE_FLOOR = 1e-11
"""Smallest out-of-the-money price, as a fraction of the forward, whose implied vol is used."""

GRID_Z = np.sinh(np.linspace(-4.4, 4.4, 89))
"""Wing-guard grid in standard deviations of ``ln(F_T/F)``: 0.1 apart at the money, out to 40."""

VEGA_FLOOR = 1e-10
"""Smallest Black vega (per unit of forward) used to scale a price residual."""

_HESTON_LOWER = (1e-6, 1e-4, 1e-6, 1e-4, -0.999)
_HESTON_UPPER = (25.0, 50.0, 25.0, 20.0, 0.999)
_JUMP_LOWER = (0.0, -2.0, 1e-4)
_JUMP_UPPER = (50.0, 2.0, 2.0)
_JUMP_START = (0.2, -0.05, 0.15)


def mean_variance(params: Sequence[float], t: FloatArray) -> FloatArray:
    """Expected average variance of ``ln(F_T/F)`` per year over ``[0, t]``.

    Parameters
    ----------
    params : sequence of 5 or 8 floats
        Heston ``(v0, kappa, theta, sigma, rho)`` or Bates (plus ``lam, mu_j, sigma_j``).
    t : ndarray
        Years, ``> 0``.

    Returns
    -------
    ndarray
        Variance per year (decimal^2), shape of ``t``.

    Notes
    -----
    ``vbar(t) = theta + (v0 - theta) (1 - e^{-kappa t}) / (kappa t)
    [+ lam (mu_j^2 + sigma_j^2)]``: the Heston variance-swap rate plus the jumps' second moment.

    Examples
    --------
    >>> float(mean_variance((0.04, 2.0, 0.04, 0.5, -0.5), np.array(1.0)))
    0.04
    """
    v0, kappa, theta = (float(x) for x in params[:3])
    tt = np.asarray(t, dtype=float)
    out: FloatArray = theta + (v0 - theta) * -np.expm1(-kappa * tt) / (kappa * tt)
    if len(params) > 5:
        lam, mu_j, sigma_j = (float(x) for x in params[5:8])
        out = out + lam * (mu_j**2 + sigma_j**2)
    return out


def cos_terms(params: Sequence[float], t: FloatArray) -> int:
    """The number of COS terms the kernel would choose for ``params`` on the expiries ``t``.

    One N for all the expiries, as a calibration run fixes it (``auto_terms``, candidates
    :data:`volguard.kernels.heston_cos.AUTO_TERMS`): the smallest N with
    ``|phi(N pi / (b - a))| <= 1e-12`` at every expiry, on the kernel's default truncation
    range. (The kernel's own automatic pricing chooses N per expiry, ``EXPIRY_TERMS``.)

    Examples
    --------
    >>> cos_terms((0.36, 2.0, 0.49, 1.2, -0.35), np.array([0.1, 1.0]))
    256
    """
    t_u = np.unique(np.asarray(t, dtype=float))
    a, b = truncation_range(t_u, params, DEFAULT_TRUNCATION_L)
    return auto_terms(t_u, a, b, params)


def _otm_prices(
    params: Sequence[float], k: FloatArray, t: FloatArray, n_terms: int | None
) -> tuple[FloatArray, FloatArray, np.ndarray]:
    """Out-of-the-money COS prices per unit of forward, with their strikes and call flags."""
    strike: FloatArray = np.exp(k)
    is_call = k >= 0
    pricer = bates_price if len(params) > 5 else heston_price
    price = pricer(1.0, strike, t, params, is_call, n_terms=n_terms)
    return price, strike, is_call


def _raw_vols(
    params: Sequence[float], k: FloatArray, t: FloatArray, n_terms: int | None
) -> tuple[FloatArray, np.ndarray]:
    """Implied vols of the COS prices and where they are reliable (see the module docstring)."""
    price, strike, is_call = _otm_prices(params, k, t, n_terms)
    upper = np.minimum(1.0, strike)  # no-arbitrage bound of the OTM option per unit of F
    ok = np.isfinite(price) & (price > PRICE_FLOOR) & (price < upper)
    clipped = np.clip(np.where(np.isfinite(price), price, 0.0), 0.0, upper)
    vol = implied_vol(clipped, 1.0, strike, t, is_call)
    ok &= np.isfinite(vol) & (vol > 0)
    return vol, ok


def model_total_variance(
    params: Sequence[float], k: FloatArray, t: FloatArray, n_terms: int | None = None
) -> FloatArray:
    """Total implied variance of the Heston (5 params) or Bates (8 params) model, wing-guarded.

    Parameters
    ----------
    params : sequence of 5 or 8 floats
        ``(v0, kappa, theta, sigma, rho[, lam, mu_j, sigma_j])``, see
        :mod:`volguard.kernels.heston_cos`.
    k : ndarray
        Forward log-moneyness ``ln(K/F)``; broadcast against ``t``.
    t : ndarray
        Years (ACT/365); ``w = 0`` where ``t <= 0``.
    n_terms : int or None, default None
        COS terms; None: the kernel's automatic choice for this call (per expiry, on
        :data:`volguard.kernels.heston_cos.EXPIRY_TERMS`).

    Returns
    -------
    ndarray
        ``sigma_BS(k, t)^2 t`` (decimal^2), broadcast shape, finite and ``>= 0``.

    Notes
    -----
    Reliable points (OTM price above :data:`PRICE_FLOOR` and a finite Let's Be Rational vol)
    inside the contiguous reliable range of the expiry's grid ``k = z sqrt(vbar(t) t)``,
    ``z`` in :data:`GRID_Z`, keep their own vol. Beyond the range,
    ``w(k) = w(k_edge) + s (k - k_edge)`` with ``s`` the chord slope of the last two reliable
    grid points clipped to Lee's bounds; an unreliable point inside the range (not expected)
    is interpolated linearly in ``w`` between grid points. Where even the at-the-money price
    is unreliable, ``w = vbar(t) t`` (:func:`mean_variance`).

    Examples
    --------
    >>> p = (0.25, 2.0, 0.36, 1.0, -0.3)
    >>> w = model_total_variance(p, np.array([-8.0, 0.0, 8.0]), np.array(0.1))
    >>> bool(np.all(np.isfinite(w)) and np.all(w > 0))
    True
    """
    k_arr, t_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
    shape = k_arr.shape
    kf, tf = k_arr.ravel(), t_arr.ravel()
    out = np.zeros(kf.size)
    pos = np.flatnonzero(tf > 0)
    if pos.size == 0:
        return out.reshape(shape)
    kq, tq = kf[pos], tf[pos]
    t_u, inv = np.unique(tq, return_inverse=True)
    vbar = np.maximum(mean_variance(params, t_u), 1e-12)
    kg = np.sqrt(vbar * t_u)[:, None] * GRID_Z[None, :]
    tg = np.broadcast_to(t_u[:, None], kg.shape)
    vol, ok = _raw_vols(
        params, np.concatenate([kq, kg.ravel()]), np.concatenate([tq, tg.ravel()]), n_terms
    )
    w_all = vol * vol * np.concatenate([tq, tg.ravel()])
    nq = kq.size
    wq, okq = w_all[:nq], ok[:nq]
    wg, okg = w_all[nq:].reshape(kg.shape), ok[nq:].reshape(kg.shape)
    res = np.empty(nq)
    centre = GRID_Z.size // 2
    for i in range(t_u.size):
        idx = np.flatnonzero(inv == i)
        row_ok, k_row, w_row = okg[i], kg[i], wg[i]
        if not row_ok[centre]:
            res[idx] = vbar[i] * t_u[i]
            continue
        lo = centre
        while lo > 0 and row_ok[lo - 1]:
            lo -= 1
        hi = centre
        while hi < GRID_Z.size - 1 and row_ok[hi + 1]:
            hi += 1
        s_lo = (w_row[lo + 1] - w_row[lo]) / (k_row[lo + 1] - k_row[lo]) if lo < hi else 0.0
        s_hi = (w_row[hi] - w_row[hi - 1]) / (k_row[hi] - k_row[hi - 1]) if hi > lo else 0.0
        s_lo, s_hi = float(np.clip(s_lo, -2.0, 0.0)), float(np.clip(s_hi, 0.0, 2.0))
        x = kq[idx]
        inner = np.where(okq[idx], wq[idx], np.interp(x, k_row[lo : hi + 1], w_row[lo : hi + 1]))
        res[idx] = np.where(
            x < k_row[lo],
            w_row[lo] + s_lo * (x - k_row[lo]),
            np.where(x > k_row[hi], w_row[hi] + s_hi * (x - k_row[hi]), inner),
        )
    out[pos] = np.maximum(res, 0.0)
    return out.reshape(shape)


class Heston(SurfaceEngine):
    """Heston stochastic volatility, one parameter set for the whole surface, priced by COS.

    Parameters
    ----------
    weighting : {'vega', 'spread', 'open_interest', 'none'}
        Quote weights in the least-squares fit.
    n_terms : int or None, default None
        COS terms N. An integer fixes N in the calibration and in pricing. None: in the
        calibration N is fixed within each least-squares run (the kernel's automatic choice
        would change N with the parameters and make the objective jump) at the kernel's
        automatic value for the run's start and the quoted expiries, and the run is repeated
        from its optimum (at most twice) where the optimum needs more terms; pricing uses the
        kernel's automatic choice per call.
    start : sequence or mapping of float, optional
        Initial parameters, ``(v0, kappa, theta, sigma, rho)`` in that order or by name
        (Bates: plus ``lam, mu_j, sigma_j``). None (default) starts from the data, see Notes.

    Attributes
    ----------
    params_ : ndarray
        Fitted parameter vector (order of :data:`volguard.kernels.heston_cos.HESTON_PARAMS`).
    start_ : ndarray
        The start actually used.
    calibration_n_terms_ : int
        COS terms of the last least-squares run.
    fallback_engine_ : Black76Flat or None
        The flat-ATM engine in use where the Heston fit and its start both failed.

    Notes
    -----
    Dynamics on the T-forward measure (``r = 0``, Deribit forward premiums)::

        dF/F = sqrt(v) dW1,   dv = kappa (theta - v) dt + sigma sqrt(v) dW2,   dW1 dW2 = rho dt

    **Objective.** With ``P_i(p)`` the COS price of quote i's OTM option per unit of forward,
    ``P_i*`` and ``V_i*`` the Black-76 price and vega at the mid vol and ``w_i`` the quote
    weight, the residuals are ``r_i = sqrt(w_i) (P_i(p) - P_i*) / V_i*``: to first order the
    vol residual ``sigma_i(p) - sigma_i*``, with the same zero, and smooth and finite for any
    parameters (a vol residual needs an inversion that fails where a trial price leaves the
    no-arbitrage bounds). The Jacobian is analytic, ``J_ij = sqrt(w_i) dP_i/dp_j / V_i*``
    from the COS price gradient (Cui et al. 2017): the chain rule ``d sigma = dP / vega``.
    ``scipy.optimize.least_squares`` (trust-region reflective) within the bounds
    ``v0, theta in [1e-6, 25]``, ``kappa in [1e-4, 50]``, ``sigma in [1e-4, 20]``,
    ``|rho| <= 0.999`` (Bates: ``lam in [0, 50]``, ``mu_j in [-2, 2]``,
    ``sigma_j in [1e-4, 2]``).

    **Start** (``start=None``): ``v0`` the squared ATM vol of the first expiry, ``theta`` of
    the last, ``kappa = 2``, ``sigma = 1`` and ``rho = 4 sigma_atm skew / sigma`` clipped to
    ``[-0.9, 0.9]``, with ``skew`` the slope ``d sigma/dk`` of a line through the first
    expiry's quotes within two standard deviations of the money (the short-time Heston skew,
    ``rho sigma / (4 sqrt(v0))``, Gatheral 2006, ch. 3).

    **Feller.** ``2 kappa theta >= sigma^2`` keeps ``v`` away from zero; it is reported in the
    result's warnings when it fails, not enforced (crypto fits usually break it).

    **Fallback.** If the optimiser raises or returns non-finite parameters, the engine keeps
    the start parameters where their prices are finite (``fallback = "start parameters"``),
    else the Black-76 flat-ATM engine (``fallback = "black76-flat"``).

    **Greeks.** ``greeks(delta="model")`` (default) gives the Heston delta and gamma with the
    variance held fixed (COS, :func:`volguard.kernels.heston_cos.heston_greeks`) and the vega
    in ``v0``; ``"minimum-variance"`` adds the variance move the forward move predicts,
    ``rho sigma (dP/dv0) / F`` (the hedge ratio ``Cov(dP, dF) / Var(dF)`` of the diffusion;
    Bakshi, Cao and Chen 1997, Alexander and Nogueira 2007; Bates' jumps are left out);
    ``"sticky-strike"`` and ``"sticky-moneyness"`` are the surface deltas of
    :class:`SurfaceEngine`.

    References
    ----------
    Heston (1993), doi:10.1093/rfs/6.2.327. Fang and Oosterlee (2008),
    doi:10.1137/080718061. Cui, del Bano Rollin and Germano (2017), EJOR 263(2), 625-638,
    doi:10.1016/j.ejor.2017.05.018. Gatheral, J. (2006), The Volatility Surface, Wiley.
    Bakshi, Cao and Chen (1997), doi:10.1111/j.1540-6261.1997.tb02749.x. Alexander and
    Nogueira (2007), Model-free hedge ratios and scale-invariant models, Journal of Banking and
    Finance 31(6), 1839-1861, doi:10.1016/j.jbankfin.2006.11.012.
    """

    name: ClassVar[str] = "heston"
    param_names: ClassVar[tuple[str, ...]] = HESTON_PARAMS

    def __init__(
        self,
        weighting: str = "vega",
        n_terms: int | None = None,
        start: Sequence[float] | Mapping[str, float] | None = None,
    ) -> None:
        self.weighting = weighting
        self.n_terms = n_terms
        self.start = start

    # ------------------------------------------------------------------------ settings
    def _bounds(self) -> tuple[FloatArray, FloatArray]:
        lower, upper = list(_HESTON_LOWER), list(_HESTON_UPPER)
        if len(self.param_names) > 5:
            lower += list(_JUMP_LOWER)
            upper += list(_JUMP_UPPER)
        return np.asarray(lower), np.asarray(upper)

    def _n_terms(self) -> int | None:
        n = self.n_terms
        if n is None:
            return None
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 16:
            raise ValueError(f"n_terms must be None or an integer >= 16; got {n!r}")
        return int(n)

    def _user_start(self) -> FloatArray | None:
        if self.start is None:
            return None
        names = self.param_names
        if isinstance(self.start, Mapping):
            missing = [n for n in names if n not in self.start]
            if missing:
                raise ValueError(f"start must give {names}; missing {missing}")
            values = [float(self.start[n]) for n in names]
        else:
            values = [float(x) for x in self.start]
        if len(values) != len(names) or not np.all(np.isfinite(values)):
            raise ValueError(
                f"start must be {len(names)} finite floats {names}; got {self.start!r}"
            )
        return np.asarray(values)

    def _data_start(self, quotes: FitQuotes) -> FloatArray:
        slices = [quotes.slice(i) for i in range(len(quotes.expiries))]
        atm = [slice_atm_vol(s.k, s.mid_iv) for s in slices]
        v0, theta = atm[0] ** 2, atm[-1] ** 2
        kappa, sigma = 2.0, 1.0
        rho = -0.3
        for s in slices:
            sd = atm[0] * np.sqrt(float(np.median(s.t)))
            near = np.abs(s.k) <= 2 * sd
            if near.sum() >= 3 and np.ptp(s.k[near]) > 0:
                skew = float(np.polyfit(s.k[near], s.mid_iv[near], 1)[0])
                rho = float(np.clip(4 * np.sqrt(v0) * skew / sigma, -0.9, 0.9))
                break
        x = [v0, kappa, theta, sigma, rho]
        if len(self.param_names) > 5:
            x += list(_JUMP_START)
        return np.asarray(x)

    # ---------------------------------------------------------------------- calibration
    def _price_grad(
        self, x: FloatArray, strike: FloatArray, t: FloatArray, is_call: np.ndarray, n: int
    ) -> tuple[FloatArray, FloatArray]:
        fn = bates_price_grad if len(self.param_names) > 5 else heston_price_grad
        return fn(1.0, strike, t, tuple(x), is_call, n_terms=n)

    def _objective(
        self, quotes: FitQuotes, n_terms: int
    ) -> tuple[Callable[[FloatArray], FloatArray], Callable[[FloatArray], FloatArray]]:
        """Residuals ``sqrt(w_i) (P_i(x) - P_i*) / V_i*`` and their analytic Jacobian in ``x``.

        ``P_i(x)``: COS price of quote i's OTM option per unit of forward; ``P_i*``, ``V_i*``:
        Black-76 price and vega (per 1.00 of vol) at its mid vol. The Jacobian has shape
        ``(n_quotes, n_params)``; both share one COS call per ``x``.
        """
        strike = np.exp(quotes.k)
        is_call = quotes.k >= 0
        target = black76_price(1.0, strike, quotes.t, quotes.mid_iv, is_call)
        vega = black76_greeks(1.0, strike, quotes.t, quotes.mid_iv, is_call)["vega"]
        scale = np.sqrt(quotes.weight) / np.maximum(vega, VEGA_FLOOR)
        cache: dict[bytes, tuple[FloatArray, FloatArray]] = {}

        def evaluate(x: FloatArray) -> tuple[FloatArray, FloatArray]:
            key = np.asarray(x, dtype=float).tobytes()
            if key not in cache:
                cache.clear()
                cache[key] = self._price_grad(x, strike, quotes.t, is_call, n_terms)
            return cache[key]

        def residuals(x: FloatArray) -> FloatArray:
            r: FloatArray = scale * (evaluate(x)[0] - target)
            return r

        def jacobian(x: FloatArray) -> FloatArray:
            j: FloatArray = (evaluate(x)[1] * scale[None, :]).T
            return j

        return residuals, jacobian

    def _calibrate(
        self, quotes: FitQuotes
    ) -> tuple[dict[str, Any], bool, str | None, tuple[str, ...]]:
        fixed_n = self._n_terms()
        lower, upper = self._bounds()
        user = self._user_start()
        x0 = np.clip(user if user is not None else self._data_start(quotes), lower, upper)
        self.start_ = x0
        self.fallback_engine_: Black76Flat | None = None
        notes: list[str] = []
        fallback: str | None = None
        converged, ok = False, False
        x = x0
        n = fixed_n if fixed_n is not None else cos_terms(tuple(x0), quotes.t)
        try:
            for _ in range(3):  # N fixed within a run; rerun where the optimum needs more terms
                residuals, jacobian = self._objective(quotes, n)
                sol = least_squares(
                    residuals,
                    x,
                    jac=jacobian,
                    bounds=(lower, upper),
                    method="trf",
                    x_scale="jac",
                    # 1e-10: the fitted vols agree with 1e-14's to 1e-7 on real chains, in
                    # half the evaluations (Heston) and two thirds of the time (Bates)
                    ftol=1e-10,
                    xtol=1e-10,
                    gtol=1e-10,
                    max_nfev=300,
                )
                x = np.asarray(sol.x, dtype=float)
                ok = bool(np.all(np.isfinite(x)) and np.isfinite(sol.cost))
                converged = ok and bool(sol.success)
                if not ok or fixed_n is not None:
                    break
                n_opt = cos_terms(tuple(x), quotes.t)
                if n_opt <= n:
                    break
                n = n_opt
            if not ok:
                notes.append("the optimiser returned non-finite parameters")
        except FIT_ERRORS as exc:
            ok = False
            notes.append(f"calibration failed: {type(exc).__name__}: {exc}")
        self.calibration_n_terms_ = n
        if not ok:
            x = x0
            with np.errstate(all="ignore"):
                start_ok = bool(np.all(np.isfinite(self._objective(quotes, n)[0](x0))))
            if start_ok:
                fallback = "start parameters"
            else:
                fallback = "black76-flat"
                self.fallback_engine_ = Black76Flat(weighting=self.weighting)
                self.fallback_engine_._calibrate(quotes)
        self.params_ = x
        for nm, v, lo, hi in zip(self.param_names, x, lower, upper, strict=True):
            if fallback is None and (v <= lo + 1e-9 * max(abs(lo), 1.0) or v >= hi * (1 - 1e-9)):
                side = "lower" if v <= lo + 1e-9 * max(abs(lo), 1.0) else "upper"
                notes.append(f"{nm} = {v:.6g} sits at its {side} bound")
        params: dict[str, Any] = {nm: float(v) for nm, v in zip(self.param_names, x, strict=True)}
        v_kappa, v_theta, v_sigma = params["kappa"], params["theta"], params["sigma"]
        feller = 2 * v_kappa * v_theta / v_sigma**2
        params["feller_ratio"] = feller
        if feller < 1:
            notes.append(
                f"Feller condition fails: 2 kappa theta = {2 * v_kappa * v_theta:.4g} < "
                f"sigma^2 = {v_sigma**2:.4g} (the variance can reach zero; not enforced)"
            )
        return params, converged, fallback, tuple(notes)

    @classmethod
    def from_params(cls, params: Mapping[str, float], **settings: Any) -> Self:
        """The engine with known parameters, ready to price without a fit (``settings`` are
        the constructor's, e.g. ``n_terms``).

        Raises
        ------
        ValueError
            If a parameter of :attr:`param_names` is missing or unknown, not finite, or a
            variance, ``kappa`` or ``sigma`` is not positive or ``|rho| >= 1``.

        Examples
        --------
        >>> engine = Heston.from_params(
        ...     {"v0": 0.25, "kappa": 2.0, "theta": 0.25, "sigma": 0.8, "rho": -0.3})
        >>> round(float(engine.implied_vol([0.0], [0.25])[0]), 3)
        0.488
        """
        names = cls.param_names
        if set(params) != set(names):
            raise ValueError(
                f"{cls.name} parameters must be exactly {list(names)}; got {sorted(params)}"
            )
        x = np.array([float(params[n]) for n in names])
        value = dict(zip(names, x, strict=True))
        positive = ["v0", "kappa", "theta", "sigma", *(["sigma_j"] if "sigma_j" in value else [])]
        if (
            not np.isfinite(x).all()
            or min(value[n] for n in positive) <= 0
            or abs(value["rho"]) >= 1
        ):
            raise ValueError(
                f"{cls.name} parameters need finite values, {', '.join(positive)} > 0 and "
                f"|rho| < 1; got {value}"
            )
        if value.get("lam", 0.0) < 0:
            raise ValueError(f"the jump intensity lam must be >= 0; got {value['lam']}")
        engine = cls(**settings)
        engine.params_ = x
        return engine

    # -------------------------------------------------------------------------- surface
    def total_variance(self, k: FloatArray, t: FloatArray) -> FloatArray:
        """Total implied variance of the fitted model at log-moneyness ``k`` and years ``t``.

        See :func:`model_total_variance` (COS price inverted by Let's Be Rational, wing guard).
        """
        if getattr(self, "fallback_engine_", None) is not None:
            assert self.fallback_engine_ is not None
            return self.fallback_engine_.total_variance(k, t)
        return model_total_variance(tuple(self.params_), k, t, self.n_terms)

    def greeks(
        self,
        contracts: pd.DataFrame,
        context: MarketSnapshot,
        delta: HestonDelta = "model",
    ) -> dict[str, FloatArray]:
        """Price, delta, gamma, vega, theta at the engine's vols; model delta by default.

        Parameters
        ----------
        contracts : DataFrame
            ``expiry``, ``strike`` (USD), ``is_call`` columns.
        context : MarketSnapshot
            Time and forwards per expiry.
        delta : {'model', 'minimum-variance', 'sticky-strike', 'sticky-moneyness'}
            ``model``: the Heston/Bates ``dP/dF`` and ``d2P/dF2`` with the variance held fixed
            (COS); ``minimum-variance``: that delta plus ``rho sigma (dP/dv0) / F`` (gamma
            as ``model``); the others as in :meth:`SurfaceEngine.greeks`. Where the Black-76
            fallback is in use, ``model`` and ``minimum-variance`` give the sticky-strike
            delta.

        Returns
        -------
        dict of str to ndarray
            ``price`` (USD), ``delta`` (USD per USD of forward), ``gamma`` (1/USD), ``vega``
            (USD per 1.00 of the contract's implied vol), ``theta`` (USD per year), ``iv``;
            with the model deltas also ``vega_v0`` (USD per unit of initial variance).

        Raises
        ------
        ValueError
            If ``delta`` is unknown.
        """
        if delta not in ("model", "minimum-variance"):  # the surface deltas, or unknown
            return super().greeks(contracts, context, delta=cast(DeltaConvention, delta))
        out = super().greeks(contracts, context, delta="sticky-strike")
        if getattr(self, "fallback_engine_", None) is not None:
            return out  # the Black-76 fallback has no model delta: sticky-strike
        f, strike, t, is_call = self.contract_inputs(contracts, context)
        fn = bates_greeks if len(self.param_names) > 5 else heston_greeks
        g = fn(f, strike, t, tuple(self.params_), is_call, n_terms=self.n_terms)
        out["delta"] = np.asarray(g.delta, dtype=float)
        out["gamma"] = np.asarray(g.gamma, dtype=float)
        out["vega_v0"] = np.asarray(g.vega_v0, dtype=float)
        if delta == "minimum-variance":
            params = dict(zip(self.param_names, self.params_, strict=True))
            out["delta"] = out["delta"] + params["rho"] * params["sigma"] * out["vega_v0"] / f
        return out


class Bates(Heston):
    """Bates: Heston plus log-normal (Merton) jumps in the forward, priced by COS.

    Parameters
    ----------
    weighting : {'vega', 'spread', 'open_interest', 'none'}
        Quote weights in the least-squares fit.
    n_terms : int or None, default None
        COS terms, as in :class:`Heston` (jumps with a large ``sigma_j`` widen the truncation
        range and need more terms at short expiries).
    start : sequence or mapping of float, optional
        ``(v0, kappa, theta, sigma, rho, lam, mu_j, sigma_j)``; None starts from the data
        (the Heston start plus ``lam = 0.2``, ``mu_j = -0.05``, ``sigma_j = 0.15``).

    Notes
    -----
    ``dF/F = sqrt(v) dW1 + (e^J - 1) dN - lam m dt``, ``J ~ N(mu_j, sigma_j^2)``, ``N`` Poisson
    with intensity ``lam`` (per year), ``m = e^{mu_j + sigma_j^2/2} - 1``; ``v`` as in
    :class:`Heston`. With ``lam = 0`` it is Heston. Calibration, wing guard, fallback and
    greeks are those of :class:`Heston`, with the 8-parameter COS gradient.

    References
    ----------
    Bates (1996), Rev. Financ. Stud. 9(1), 69-107, doi:10.1093/rfs/9.1.69.
    """

    name: ClassVar[str] = "bates"
    param_names: ClassVar[tuple[str, ...]] = BATES_PARAMS
