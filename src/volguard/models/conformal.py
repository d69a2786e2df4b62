"""``conformal``: any engine with CV+ prediction intervals of each quote's implied vol.

The wrapped engine prices as it would alone (it is fitted on all the quotes); the wrapper adds
:meth:`ConformalSurface.interval`, a distribution-free interval per contract, calibrated on the
snapshot's own quotes by cross-validation:

1. **Folds.** Each expiry's two-sided out-of-the-money rows (those engines fit) are dealt at
   random with ``seed`` into ``folds`` folds; an expiry keeps at least
   :data:`~volguard.models.ensemble.MIN_TRAIN` rows in every training part, and expiries too
   small for that are never held out.
2. **Out-of-fold residuals.** For each fold ``j`` the engine is fitted on the snapshot without
   it, ``mu_{-j}``, and scored on the fold's fit quotes: ``R_i = |sigma_i - mu_{-j(i)}(x_i)|``
   (decimal vol), ``sigma_i`` the mid vol and ``x_i = (k_i, t_i)``; a quote it cannot price
   gets ``R_i = inf``.
3. **CV+ interval** (Barber, Candes, Ramdas and Tibshirani 2021, section 3) at level
   ``1 - alpha``, for a contract at ``x``::

       lower = q_alpha^-   { mu_{-j(i)}(x) - R_i }     (the floor(alpha (n+1))-th smallest)
       upper = q_{1-alpha}^+ { mu_{-j(i)}(x) + R_i }   (the ceil((1-alpha)(n+1))-th smallest)

   over the ``n`` calibration quotes. If the quotes are exchangeable it covers a new quote with
   probability at least ``1 - 2 alpha - sqrt(2/n)`` in theory and about ``1 - alpha`` in
   practice; unlike split conformal, no quote is wasted and the model that prices is fitted on
   all of them. Where ``(1 - alpha)(n + 1) > n`` the interval is the whole half-line.

What it does not promise: quotes of one snapshot are not exchangeable with quotes far out in
the wings or with tomorrow's quotes. The lab measures both (nowcast-wings, forecast) and its
adaptive conformal intervals (:mod:`volguard.lab.uncertainty`) follow the coverage in time.

References
----------
Barber, R. F., Candes, E. J., Ramdas, A. and Tibshirani, R. J. (2021), Predictive inference
with the jackknife+, Annals of Statistics 49(1), 486-507, doi:10.1214/20-AOS1965.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from volguard._typing import FloatArray
from volguard.kernels.conformal import conformal_rank
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import FIT_ERRORS, CompositeEngine, SurfaceEngine
from volguard.models.ensemble import MIN_TRAIN, expiry_candidates
from volguard.models.quotes import FitQuotes, fit_quotes


def fold_rows(quotes: pd.DataFrame, folds: int, seed: int) -> np.ndarray:
    """Fold number of each row of ``quotes``: ``0..folds-1``, or -1 for rows never held out.

    Each expiry's candidate rows (:func:`~volguard.models.ensemble.expiry_candidates`) are
    shuffled and dealt round-robin, so fold sizes differ by at most one per expiry; an expiry
    whose largest fold would leave fewer than ``MIN_TRAIN`` rows to train on is not dealt.

    Examples
    --------
    >>> rows = pd.DataFrame({"expiry": ["a"] * 12 + ["b"] * 4, "strike": range(90, 106),
    ...     "forward": 97.0, "is_call": [s >= 97 for s in range(90, 106)], "t": 0.1,
    ...     "bid": 1.0, "ask": 1.1})
    >>> fold_rows(rows, 3, 0).tolist()  # expiry b is too small to hold any row out
    [0, 2, 1, 1, 0, 1, 2, 2, 1, 0, 0, 2, -1, -1, -1, -1]
    """
    rng = np.random.default_rng(seed)
    labels = np.full(len(quotes), -1)
    for rows in expiry_candidates(quotes):
        if rows.size - math.ceil(rows.size / folds) >= MIN_TRAIN:
            labels[rng.permutation(rows)] = np.arange(rows.size) % folds
    return labels


class ConformalSurface(CompositeEngine):
    """An engine (``base``) with CV+ intervals per quote (module docstring).

    Parameters
    ----------
    base : SurfaceEngine, optional
        The wrapped engine, unfitted (default ``SSVI()``; a learned one with its ``model``);
        its settings are nested parameters (``base__weighting``).
    folds : int, default 5
        Cross-validation folds, ``>= 2``; each costs one more fit of the engine.
    seed : int, default 0
        Seed of the fold assignment.
    weighting : str, default "vega"
        Quote weights of the report's fit quotes (the wrapped engine fits with its own).

    Attributes
    ----------
    base_ : SurfaceEngine
        The engine fitted on all the quotes; it gives the surface.
    fold_bases_ : list of SurfaceEngine
        The engine fitted without each fold (folds whose fit failed are left out).
    residuals_ : ndarray
        ``R_i``, decimal vol, one per calibration quote.
    residual_fold_ : ndarray of int
        Index into ``fold_bases_`` of the model that scored each residual.

    Examples
    --------
    >>> from volguard.models.parametric.svi import SVI
    >>> wrapped = ConformalSurface(base=SVI(weighting="spread"), folds=4)
    >>> wrapped.get_params()["folds"], wrapped.get_params()["base__weighting"]
    (4, 'spread')
    """

    name = "conformal"

    def __init__(
        self,
        base: SurfaceEngine | None = None,
        folds: int = 5,
        seed: int = 0,
        weighting: str = "vega",
    ) -> None:
        self.base = base
        self.folds = folds
        self.seed = seed
        self.weighting = weighting

    def _prototype(self) -> SurfaceEngine:
        """A fresh wrapped engine; validates the settings.

        Raises
        ------
        ValueError
            If ``base`` is not an engine, is a conformal engine itself, or ``folds < 2``.
        """
        if int(self.folds) < 2:
            raise ValueError(f"folds must be >= 2, got {self.folds!r}")
        if self.base is None:
            from volguard.models.parametric.ssvi import SSVI

            return SSVI()
        if not isinstance(self.base, SurfaceEngine) or isinstance(self.base, ConformalSurface):
            raise ValueError(f"base must be an engine other than conformal, got {self.base!r}")
        engine: SurfaceEngine = clone(self.base)
        return engine

    def _check_settings(self) -> object:
        return self._prototype()

    def _calibrate(
        self, quotes: FitQuotes
    ) -> tuple[dict[str, Any], bool, str | None, tuple[str, ...]]:
        snapshot = self._snapshot
        prototype = self._prototype()
        rows = snapshot.quotes
        labels = fold_rows(rows, int(self.folds), int(self.seed))
        notes: list[str] = []
        fold_bases: list[SurfaceEngine] = []
        residuals: list[FloatArray] = []
        owner: list[np.ndarray] = []
        for j in range(int(self.folds)):
            held = labels == j
            if not held.any():
                continue
            try:
                fitted = clone(prototype).fit(MarketSnapshot.from_quotes(rows[~held]))
            except FIT_ERRORS as exc:
                notes.append(f"fold {j} left out: {prototype.name} failed without it: {exc}")
                continue
            scored = fit_quotes(MarketSnapshot.from_quotes(rows[held]), "none")
            error = np.abs(scored.mid_iv - fitted.implied_vol(scored.k, scored.t))
            # a quote the fold's engine cannot price counts as missed, never as left out
            residuals.append(np.where(np.isfinite(error), error, np.inf))
            owner.append(np.full(error.size, len(fold_bases)))
            fold_bases.append(fitted)
        self.base_ = clone(prototype).fit(snapshot)
        self.fold_bases_ = fold_bases
        self.residuals_ = np.concatenate(residuals) if residuals else np.empty(0)
        self.residual_fold_ = np.concatenate(owner) if owner else np.empty(0, dtype=int)
        if not self.residuals_.size:
            notes.append("no calibration quote: intervals are the whole half-line")
        result = self.base_.result_
        params: dict[str, Any] = {
            "base": prototype.name,
            "base_params": result.params,
            "folds_used": len(fold_bases),
            "n_calibration": int(self.residuals_.size),
            "median_residual_vol_pts": float(np.median(self.residuals_) * 100)
            if self.residuals_.size
            else None,
        }
        notes.extend(f"{prototype.name}: {w}" for w in result.warnings)
        return params, result.converged, result.fallback, tuple(notes)

    def total_variance(self, k: FloatArray, t: FloatArray) -> FloatArray:
        """The wrapped engine's total variance (fitted on all the quotes)."""
        w: FloatArray = self.base_.total_variance(k, t)
        return w

    def vol_interval(
        self, k: FloatArray, t: FloatArray, level: float = 0.9
    ) -> tuple[FloatArray, FloatArray]:
        """CV+ interval of the implied vol at ``k``, ``t`` (decimal vols, lower end >= 0).

        Raises
        ------
        ValueError
            If ``level`` is not in ``(0, 1)``.
        """
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1); received {level}")
        k_arr, t_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
        n = self.residuals_.size
        rank = conformal_rank(n, level)  # 1-based rank of the upper end
        if rank > n:
            return np.zeros(k_arr.shape), np.full(k_arr.shape, np.inf)
        fold_vols = np.stack(
            [e.implied_vol(k_arr.ravel(), t_arr.ravel()) for e in self.fold_bases_]
        )
        centre = fold_vols[self.residual_fold_]  # (n, points): mu_{-j(i)}(x)
        r = self.residuals_[:, None]
        upper = np.partition(centre + r, rank - 1, axis=0)[rank - 1]
        lower = np.partition(centre - r, n - rank, axis=0)[n - rank]
        return np.maximum(lower, 0.0).reshape(k_arr.shape), upper.reshape(k_arr.shape)

    def interval(
        self, contracts: pd.DataFrame, context: MarketSnapshot, level: float = 0.9
    ) -> tuple[FloatArray, FloatArray]:
        """:meth:`vol_interval` of each contract (``expiry``, ``strike``, ``is_call``) placed
        in ``context`` (its time and forwards), as for :meth:`greeks`.

        Raises
        ------
        ValueError
            If ``level`` is not in ``(0, 1)``, or as :meth:`contract_inputs`.
        """
        f, strike, t, _ = self.contract_inputs(contracts, context)
        return self.vol_interval(np.log(strike / f), t, level)
