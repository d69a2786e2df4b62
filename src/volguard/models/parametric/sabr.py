"""``sabr``: a SABR smile per expiry (Hagan et al. 2002 with Obloj's 2008 leading term).

Each expiry slice is fitted on its own in forward terms: ``F`` is the slice's forward (USD),
``K = F e^k`` for forward log-moneyness ``k``. The vol is :func:`volguard.kernels.sabr.sabr_vol`;
the fit is :func:`scipy.optimize.least_squares` on the vol residuals ``sqrt(weight) (model -
mid vol)`` with the kernel's analytic Jacobian in ``(alpha, rho, nu)``.

``beta`` is a setting, 1.0 by default: a lognormal backbone. Crypto options are quoted in
lognormal (Black) vol on forwards far from zero; in a single-slice fit ``beta`` and ``rho``
both tilt the smile and are nearly interchangeable (Hagan et al. 2002, section 3.3: beta is
chosen a priori from the backbone), so fixing it makes ``rho`` and ``nu`` identifiable and the
fit stable; at ``beta = 1`` the scaled ``alpha`` is about the at-the-money vol.
``beta=None`` fits it in ``[0, 1]`` too (its Jacobian column by central differences, the
kernel's are analytic).

The expansion is asymptotic: for extreme parameters (large ``nu^2 t``, ``|rho|`` near 1) the
correction factor ``1 + I1 t`` can turn negative, and the vol with it. The engine never returns
such a variance: a point whose SABR vol is not finite or not positive gets total variance 0
(the engine's implied vol is then floored), and every such point on the arbitrage mesh
(``k = -1.5 .. 1.0`` step 0.01 and the quoted points, each fitted expiry) is added to the
result's ``arbitrage.bounds_count`` and reported in its warnings.

Fallback: a slice with fewer than :data:`MIN_QUOTES` quotes, a non-finite optimum, or whose
fitted vol is not positive at its own quotes is fitted flat at its at-the-money vol
(``rho = nu = 0``), flagged in the result.

References
----------
Hagan, P. S., Kumar, D., Lesniewski, A. S. and Woodward, D. E. (2002), Managing smile risk,
Wilmott Magazine, September 2002, 84-108. Obloj, J. (2008), Fine-tune your smile: correction
to Hagan et al., Wilmott Magazine, May 2008, arXiv:0708.0998.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Self

import numpy as np
from scipy.optimize import least_squares

from volguard._typing import FloatArray
from volguard.arbitrage.static import DEFAULT_K
from volguard.kernels.sabr import sabr_vol, sabr_vol_jac
from volguard.market.smile import slice_atm_vol
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import SliceEngine
from volguard.models.quotes import FitQuotes

MIN_QUOTES = 4
RHO_MAX = 0.999
NU_MAX = 50.0
"""Upper bound of ``nu`` (per sqrt(year)): weekly crypto smiles need a few tens."""
VOL_BOUNDS = (1e-4, 10.0)
"""Bounds of the scaled ``alpha F^(beta - 1)`` (decimal vol)."""
BETA_STEP = 1e-6


def _sabr_slice_vol(
    k: FloatArray, t: float, forward: float, alpha_hat: float, beta: float, rho: float, nu: float
) -> FloatArray:
    """SABR vol at log-moneyness ``k`` of a slice; ``alpha = alpha_hat F^(1 - beta)``."""
    alpha = alpha_hat * forward ** (1.0 - beta)
    return sabr_vol(forward, forward * np.exp(k), t, alpha, beta, rho, nu)


def _starts(
    k: FloatArray, t: float, vol: FloatArray, weight: FloatArray, beta: float
) -> tuple[float, float, float]:
    """Start ``(alpha_hat, rho, nu)`` from the at-the-money level, skew and curvature.

    A weighted quadratic ``vol ~ s0 + s1 k + s2 k^2 / 2`` near the money gives, from the
    expansion of the SABR vol at ``beta = 1`` (``sigma ~ alpha (1 + rho nu k / (2 alpha)
    + (2 - 3 rho^2) nu^2 k^2 / (12 alpha^2))``): ``rho nu = 2 s1`` and
    ``nu^2 = 3 alpha s2 + 6 s1^2``. For ``beta < 1`` the backbone's own skew
    ``-(1 - beta) s0 / 2`` is removed from ``s1`` first.
    """
    s0 = slice_atm_vol(k, vol)
    width = max(0.1, 2.0 * s0 * np.sqrt(t))
    near = np.abs(k) <= width
    if near.sum() < 5:
        near = np.argsort(np.abs(k))[: min(len(k), 7)]
    kk, vv = k[near], vol[near]
    ww = np.sqrt(np.maximum(weight[near], 1e-12))
    s1 = s2 = 0.0
    if kk.size >= 3 and np.ptp(kk) > 0:
        design = np.column_stack([np.ones_like(kk), kk, 0.5 * kk * kk]) * ww[:, None]
        coef = np.linalg.lstsq(design, vv * ww, rcond=None)[0]
        s0, s1, s2 = (float(c) for c in coef)
        s0 = s0 if s0 > 0 else slice_atm_vol(k, vol)
    s1 += 0.5 * (1.0 - beta) * s0
    nu = float(np.sqrt(max(3.0 * s0 * s2 + 6.0 * s1 * s1, 1e-4)))
    nu = float(np.clip(nu, 0.05, 0.5 * NU_MAX))
    rho = float(np.clip(2.0 * s1 / nu, -0.9, 0.9))
    # at the money: vol = alpha_hat (1 + I1 t); one step on the correction at beta = 1
    i1 = rho * beta * nu * s0 / 4.0 + (2.0 - 3.0 * rho * rho) * nu * nu / 24.0
    alpha_hat = s0 / max(1.0 + i1 * t, 0.5)
    return float(np.clip(alpha_hat, *VOL_BOUNDS)), rho, nu


def fit_sabr_slice(
    k: FloatArray,
    t: float,
    forward: float,
    vol: FloatArray,
    weight: FloatArray,
    beta: float | None = 1.0,
) -> tuple[dict[str, float], bool]:
    """Fit SABR to one smile by weighted least squares on the vols.

    Parameters
    ----------
    k : ndarray, shape (n,)
        Forward log-moneyness ``ln(K/F)`` of the quotes.
    t : float
        Years to expiry (ACT/365), ``> 0``.
    forward : float
        The slice's forward, USD, ``> 0``.
    vol : ndarray, shape (n,)
        Target implied vols, decimal.
    weight : ndarray, shape (n,)
        Quote weights, ``>= 0``; residuals are ``sqrt(weight) (sabr_vol - vol)``.
    beta : float or None, default 1.0
        Fixed CEV exponent in ``[0, 1]``, or None to fit it in ``[0, 1]``.

    Returns
    -------
    params : dict
        ``alpha`` (USD^(1-beta) per sqrt(year)), ``alpha_hat = alpha F^(beta-1)`` (decimal),
        ``beta``, ``rho``, ``nu`` (per sqrt(year)), ``forward`` (USD).
    converged : bool
        The optimiser's success flag.

    Notes
    -----
    Minimises ``sum_i weight_i (sigma_SABR(F, F e^(k_i), t; alpha, beta, rho, nu) - vol_i)^2``
    over ``alpha_hat in [1e-4, 10]``, ``rho in [-0.999, 0.999]``, ``nu in [0, 50]`` (and
    ``beta in [0, 1]`` when fitted) with a trust-region reflective method; the Jacobian in
    ``alpha_hat`` is ``F^(1 - beta) d sigma / d alpha``. The vol is ``I0 (1 + I1 t)`` with
    Obloj's ``I0 = nu ln(F/K) / x(z)``, ``z = nu (F^(1-beta) - K^(1-beta)) / (alpha (1 -
    beta))`` and Hagan's ``I1`` (see :func:`volguard.kernels.sabr.sabr_vol`).

    References
    ----------
    Hagan, P. S., Kumar, D., Lesniewski, A. S. and Woodward, D. E. (2002), Managing smile risk,
    Wilmott Magazine, September 2002, 84-108. Obloj, J. (2008), Fine-tune your smile:
    correction to Hagan et al., Wilmott Magazine, May 2008, arXiv:0708.0998.

    Examples
    --------
    >>> k = np.linspace(-0.4, 0.4, 9)
    >>> vol = sabr_vol(60_000.0, 60_000.0 * np.exp(k), 0.25, 0.6, 1.0, -0.3, 1.5)
    >>> p, ok = fit_sabr_slice(k, 0.25, 60_000.0, vol, np.ones_like(k))
    >>> ok, round(p["alpha"], 6), round(p["rho"], 6), round(p["nu"], 6)
    (True, 0.6, -0.3, 1.5)
    """
    fit_beta = beta is None
    beta0 = 0.7 if beta is None else float(beta)
    sw = np.sqrt(np.maximum(weight, 0.0))
    strike = forward * np.exp(k)
    a0, r0, n0 = _starts(k, t, vol, weight, beta0)

    def unpack(x: FloatArray) -> tuple[float, float, float, float]:
        b = float(x[3]) if fit_beta else beta0
        return float(x[0]), b, float(x[1]), float(x[2])

    cache: dict[bytes, tuple[FloatArray, FloatArray]] = {}

    def vol_and_jac(x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Model vols and the Jacobian columns, one kernel call per point (memoised: scipy asks
        for the residuals and then the Jacobian at the same point)."""
        key = np.asarray(x, dtype=float).tobytes()
        if key not in cache:
            cache.clear()
            ah, b, r, n = unpack(x)
            scale = forward ** (1.0 - b)
            model, jac = sabr_vol_jac(forward, strike, t, ah * scale, b, r, n)
            cols = [jac[0] * scale, jac[1], jac[2]]
            if fit_beta:
                hi, lo = min(b + BETA_STEP, 1.0), max(b - BETA_STEP, 0.0)
                up = sabr_vol(forward, strike, t, ah * forward ** (1.0 - hi), hi, r, n)
                dn = sabr_vol(forward, strike, t, ah * forward ** (1.0 - lo), lo, r, n)
                cols.append((up - dn) / (hi - lo))
            cache[key] = (model, np.column_stack(cols))
        return cache[key]

    def residuals(x: FloatArray) -> FloatArray:
        model = vol_and_jac(x)[0]
        out: FloatArray = np.where(np.isfinite(model), model - vol, 10.0) * sw
        return out

    def jacobian(x: FloatArray) -> FloatArray:
        out: FloatArray = np.nan_to_num(vol_and_jac(x)[1] * sw[:, None])
        return out

    lower = [VOL_BOUNDS[0], -RHO_MAX, 0.0]
    upper = [VOL_BOUNDS[1], RHO_MAX, NU_MAX]
    x0 = [a0, r0, n0]
    if fit_beta:
        lower.append(0.0)
        upper.append(1.0)
        x0.append(beta0)
    sol = least_squares(
        residuals,
        x0=x0,
        jac=jacobian,
        bounds=(lower, upper),
        method="trf",
        x_scale="jac",
        xtol=1e-12,
        ftol=1e-12,
        gtol=1e-12,
        max_nfev=500,
    )
    ah, b, r, n = unpack(sol.x)
    params = {
        "alpha": ah * forward ** (1.0 - b),
        "alpha_hat": ah,
        "beta": b,
        "rho": r,
        "nu": n,
        "forward": float(forward),
    }
    return params, bool(sol.success)


class SABR(SliceEngine):
    """SABR (Hagan et al. 2002, Obloj 2008) per expiry slice; see the module docstring.

    Parameters
    ----------
    weighting : {'vega', 'spread', 'open_interest', 'none'}
        Weights of the quotes in the least-squares fit.
    beta : float or None, default 1.0
        CEV exponent in ``[0, 1]``, fixed (1: lognormal backbone, the crypto convention), or
        None to fit it per slice.

    Examples
    --------
    >>> SABR(beta=0.5).get_params()
    {'beta': 0.5, 'weighting': 'vega'}
    """

    name = "sabr"

    def __init__(self, weighting: str = "vega", beta: float | None = 1.0) -> None:
        self.weighting = weighting
        self.beta = beta

    def fit(self, snapshot: MarketSnapshot, y: None = None) -> Self:
        """Calibrate as :meth:`SurfaceEngine.fit`; mesh points where the raw SABR vol is not
        finite or not positive (guarded to zero variance) are added to
        ``result_.arbitrage.bounds_count`` and named in ``result_.warnings``.

        Raises
        ------
        ValueError
            If the snapshot has no quote to fit, or ``beta`` is outside ``[0, 1]``.
        """
        if self.beta is not None and not 0.0 <= float(self.beta) <= 1.0:
            raise ValueError(f"beta must be in [0, 1] or None; got {self.beta!r}")
        super().fit(snapshot, y)
        if self.guarded_points_:
            report = self.result_.arbitrage
            self.result_ = dataclasses.replace(
                self.result_,
                arbitrage=dataclasses.replace(
                    report, bounds_count=report.bounds_count + self.guarded_points_
                ),
                warnings=(
                    *self.result_.warnings,
                    f"{self.guarded_points_} mesh points with a non-finite or non-positive SABR "
                    "vol, guarded to zero variance",
                ),
            )
        return self

    def _calibrate(
        self, quotes: FitQuotes
    ) -> tuple[dict[str, Any], bool, str | None, tuple[str, ...]]:
        params, times, notes = [], [], []
        converged, fallback = True, None
        guarded = 0
        for i, expiry in enumerate(quotes.expiries):
            s = quotes.slice(i)
            t = float(np.median(s.t))
            forward = float(np.median(s.forward))
            fitted: dict[str, float] | None = None
            if len(s) >= MIN_QUOTES:
                fitted, ok = fit_sabr_slice(s.k, t, forward, s.mid_iv, s.weight, self.beta)
                converged &= ok
                at_quotes = _sabr_slice_vol(
                    s.k, t, forward, *(fitted[p] for p in ("alpha_hat", "beta", "rho", "nu"))
                )
                if not (
                    all(np.isfinite(list(fitted.values())))
                    and np.all(np.isfinite(at_quotes))
                    and np.all(at_quotes > 0)
                ):
                    fitted = None
            if fitted is None:
                flat = slice_atm_vol(s.k, s.mid_iv)
                b = 1.0 if self.beta is None else float(self.beta)
                fitted = {
                    "alpha": flat * forward ** (1.0 - b),
                    "alpha_hat": flat,
                    "beta": b,
                    "rho": 0.0,
                    "nu": 0.0,
                    "forward": forward,
                }
                fallback = "flat at-the-money vol on slices that could not be fitted"
                notes.append(f"{expiry}: {len(s)} quotes, fitted flat at the ATM vol")
            else:
                mesh = np.concatenate([DEFAULT_K, s.k])
                raw = _sabr_slice_vol(
                    mesh, t, forward, *(fitted[p] for p in ("alpha_hat", "beta", "rho", "nu"))
                )
                guarded += int(np.sum(~(np.isfinite(raw) & (raw > 0))))
            params.append(fitted)
            times.append(t)
        self.slice_params_ = params
        self.slice_t_ = np.asarray(times)
        self.guarded_points_ = guarded
        by_expiry = {str(e): p for e, p in zip(quotes.expiries, params, strict=True)}
        return by_expiry, converged, fallback, tuple(notes)

    def slice_variance(self, i: int, k: FloatArray) -> FloatArray:
        """Total variance of slice ``i``: ``sigma_SABR^2 t``, 0 where that vol is not finite or
        not positive (see the module docstring)."""
        p = self.slice_params_[i]
        t = float(self.slice_t_[i])
        with np.errstate(all="ignore"):
            vol = _sabr_slice_vol(
                np.asarray(k, dtype=float),
                t,
                p["forward"],
                p["alpha_hat"],
                p["beta"],
                p["rho"],
                p["nu"],
            )
        w: FloatArray = np.where(np.isfinite(vol) & (vol > 0), vol * vol * t, 0.0)
        return w
