"""``ensemble``: a convex combination of engines, weighted on a validation split.

Fit, on one snapshot:

1. **Split.** The two-sided out-of-the-money rows of the snapshot (the side
   :func:`~volguard.models.quotes.fit_quotes` fits: puts below the forward, calls at and
   above it) are split at random with ``seed``, stratified by expiry: each expiry holds out
   ``round(validation_size * n)`` of its ``n`` rows but always keeps at least
   :data:`MIN_TRAIN` of them for training (the most any slice engine needs, ``svi``'s 5), so
   every expiry keeps quotes and expiries with ``MIN_TRAIN`` rows or fewer hold none out.
2. **Score.** A fresh member is fitted (its own ``fit``) on the snapshot without the held-out
   rows, ``MarketSnapshot.from_quotes(visible rows)`` as the lab builds its sub-snapshots,
   and scored on the held-out fit quotes by the weighted mean squared vol error
   ``MSE_j = sum_i w_i (sigma_j(k_i, t_i) - sigma_i)^2 / sum_i w_i``, ``w_i`` the ensemble's
   ``weighting`` (``vega``: Black vega at the mid vol; ``none``: unweighted).
3. **Weigh.** ``weights="inverse-mse"``: ``pi_j = (1 / MSE_j) / sum_l (1 / MSE_l)``, the
   inverse-variance weights of a combination of unbiased forecasts with uncorrelated errors
   (Bates and Granger 1969); ``"equal"``: ``1 / m``; ``"stacking"``: Breiman's (1996)
   stacked regression, non-negative least squares of the held-out mid vols on the members'
   held-out vols (weighted by ``sqrt(w_i)``, no intercept), normalised to sum 1.
4. **Refit.** Every member is refitted on all the quotes; the weights are kept.

The surface is ``w(k, t) = sum_j pi_j w_j(k, t)``: a convex combination of total variances.
It keeps calendar monotonicity (each ``w_j`` non-decreasing in ``t`` makes the sum so) and
positivity, but **not** butterfly freedom (Durrleman's ``g(k)`` is not linear in ``w``):
the base class's arbitrage check reports what the combination has.

Disagreement: at each point the weighted standard deviation of the members' implied vols,
``D(k, t) = sqrt(sum_j pi_j (sigma_j - sigma_bar)^2)``, ``sigma_bar = sum_j pi_j sigma_j``
(vol units, decimal), per contract through :meth:`EnsembleSurface.disagreement_at` so the lab
and the guard can export it per quote. It is a spread of model opinions, not a confidence
interval: members that share a bias agree.

Failures: a member whose fit raises (``ValueError``, ``ArithmeticError``, ``LinAlgError``) on
the training part or on all the quotes, or predicts a non-finite vol on the held-out quotes,
gets weight 0 and is named in the result's ``warnings`` and ``fallback``; if every member
fails, ``fit`` raises ``ValueError``. When no row is held out (every expiry has ``MIN_TRAIN``
quotes or fewer) the weights are equal, with a warning.

References
----------
Bates, J. M. and Granger, C. W. J. (1969), The combination of forecasts, Operational Research
Quarterly 20(4), 451-468, doi:10.2307/3008764. Breiman, L. (1996), Stacked regressions,
Machine Learning 24, 49-64, doi:10.1007/BF00117832.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import nnls
from sklearn.base import clone

from volguard._typing import FloatArray
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import FIT_ERRORS, CompositeEngine, SurfaceEngine
from volguard.models.quotes import FitQuotes, fit_quotes

WEIGHTS: tuple[str, ...] = ("inverse-mse", "equal", "stacking")
MIN_TRAIN = 5
"""Rows of each expiry always kept for training (``svi`` fits a slice from 5 quotes)."""
MIN_MSE = 1e-12
"""Floor of a validation MSE (decimal vol squared: 1e-4 vol pts RMSE), so a perfect member
gets a finite inverse-MSE weight."""


def validation_rows(
    quotes: pd.DataFrame, validation_size: float, seed: int | np.random.Generator
) -> np.ndarray:
    """Positions of the held-out rows: a random share of each expiry's two-sided OTM rows.

    Parameters
    ----------
    quotes : DataFrame
        Quote-schema rows of one snapshot (``expiry, strike, is_call, forward, t`` and
        ``bid, ask`` or ``bid_iv, ask_iv``).
    validation_size : float
        Share held out per expiry, in ``(0, 1)``.
    seed : int or numpy.random.Generator
        Seed of the draw.

    Returns
    -------
    ndarray of int, shape (n_held_out,)
        Row positions, ascending. Each expiry with ``n`` candidate rows holds out
        ``min(round(validation_size * n), max(n - MIN_TRAIN, 0))``.

    Examples
    --------
    >>> rows = pd.DataFrame({"expiry": ["a"] * 8 + ["b"] * 4, "strike": range(90, 102),
    ...     "forward": 95.0, "is_call": [s >= 95 for s in range(90, 102)], "t": 0.1,
    ...     "bid": 1.0, "ask": 1.1})
    >>> validation_rows(rows, 0.25, 0).tolist()  # two of expiry a, none of b (4 rows <= 5)
    [5, 7]
    """
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for rows in expiry_candidates(quotes):
        n_val = min(round(validation_size * rows.size), max(rows.size - MIN_TRAIN, 0))
        if n_val > 0:
            held.append(rng.choice(rows, size=n_val, replace=False))
    return np.sort(np.concatenate(held)) if held else np.array([], dtype=int)


def expiry_candidates(quotes: pd.DataFrame) -> list[np.ndarray]:
    """Positions of each expiry's two-sided out-of-the-money rows (the rows engines fit and
    a validation split may hold out), one array per expiry, expiries in sorted order."""
    f = quotes["forward"].to_numpy(dtype=float, na_value=np.nan)
    strike = quotes["strike"].to_numpy(dtype=float)
    is_call = quotes["is_call"].to_numpy(dtype=bool, na_value=False)
    t = quotes["t"].to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.log(strike / f)

    def side(price: str, vol: str) -> np.ndarray:
        ok = np.zeros(len(quotes), dtype=bool)
        for column in (price, vol):
            if column in quotes:
                ok |= np.isfinite(quotes[column].to_numpy(dtype=float, na_value=np.nan))
        return ok

    candidate = np.where(k >= 0, is_call, ~is_call) & np.isfinite(k) & (t > 0)
    candidate &= side("bid", "bid_iv") & side("ask", "ask_iv")
    expiry = pd.Series(quotes["expiry"].to_numpy()).astype(str).to_numpy()
    return [np.flatnonzero(candidate & (expiry == e)) for e in np.unique(expiry[candidate])]


def combination_weights(
    method: str, predictions: FloatArray, target: FloatArray, weight: FloatArray
) -> FloatArray:
    """Weights of the members from their held-out predictions.

    Parameters
    ----------
    method : {'inverse-mse', 'equal', 'stacking'}
        See the module docstring.
    predictions : ndarray, shape (m, n)
        Each usable member's implied vols (decimal) at the ``n`` held-out quotes.
    target : ndarray, shape (n,)
        The held-out mid vols, decimal.
    weight : ndarray, shape (n,)
        Quote weights, ``>= 0``.

    Returns
    -------
    ndarray, shape (m,)
        Non-negative weights summing to 1.

    Notes
    -----
    Inverse MSE: ``pi_j ∝ 1 / max(MSE_j, MIN_MSE)``. Stacking: ``min_{pi >= 0} sum_i w_i
    (sigma_i - sum_j pi_j sigma_ij)^2`` by Lawson-Hanson NNLS, then ``pi / sum(pi)``; where
    every coefficient is 0 it falls back to inverse MSE.

    Examples
    --------
    >>> target = np.array([0.5, 0.6, 0.7])
    >>> pred = np.stack([target + 0.01, target + 0.02])
    >>> combination_weights("inverse-mse", pred, target, np.ones(3)).round(3).tolist()
    [0.8, 0.2]
    >>> combination_weights("equal", pred, target, np.ones(3)).tolist()
    [0.5, 0.5]
    """
    m = predictions.shape[0]
    if method == "equal" or predictions.shape[1] == 0:
        return np.full(m, 1.0 / m)
    mse = np.sum(weight * (predictions - target) ** 2, axis=1) / np.sum(weight)
    inverse = 1.0 / np.maximum(mse, MIN_MSE)
    if method == "stacking":
        sw = np.sqrt(np.maximum(weight, 0.0))
        coef = nnls(predictions.T * sw[:, None], target * sw)[0]
        if coef.sum() > 0:
            out: FloatArray = coef / coef.sum()
            return out
    out = inverse / inverse.sum()
    return out


class EnsembleSurface(CompositeEngine):
    """A weighted combination of engines, with their disagreement per quote.

    See the module docstring for the split, the weights, the surface and the disagreement.

    Parameters
    ----------
    members : sequence of (str, SurfaceEngine), optional
        The members as ``(label, engine)`` pairs, scikit-learn style (labels unique; any
        unfitted engine that needs no training). Default: ``ssvi``, ``sabr`` and ``svi`` with
        their default settings. Their settings are nested parameters:
        ``get_params(deep=True)`` lists ``<label>__<setting>`` and ``set_params`` takes them.
    weights : {'inverse-mse', 'equal', 'stacking'}
        How the members are combined (module docstring).
    validation_size : float, default 0.25
        Share of each expiry's quotes held out to weigh the members, in ``(0, 1)``.
    seed : int, default 0
        Seed of the train/validation split.
    weighting : {'vega', 'spread', 'open_interest', 'none'}
        Quote weights of the validation score.

    Attributes
    ----------
    members_ : list of SurfaceEngine or None
        The members fitted on all the quotes (None where the fit failed).
    weights_ : ndarray, shape (m,)
        The combination weights, summing to 1 (0 for failed members).
    labels_ : tuple of str
        The members' labels.

    Examples
    --------
    >>> from volguard.models.parametric.sabr import SABR
    >>> from volguard.models.parametric.svi import SVI
    >>> ens = EnsembleSurface([("sabr", SABR()), ("svi", SVI(weighting="spread"))])
    >>> ens.get_params()["svi__weighting"]
    'spread'
    >>> ens.set_params(sabr__weighting="none").get_params()["sabr__weighting"]
    'none'
    """

    name = "ensemble"

    def __init__(
        self,
        members: Sequence[tuple[str, SurfaceEngine]] | None = None,
        weights: str = "inverse-mse",
        validation_size: float = 0.25,
        seed: int = 0,
        weighting: str = "vega",
    ) -> None:
        self.members = members
        self.weights = weights
        self.validation_size = validation_size
        self.seed = seed
        self.weighting = weighting

    # ------------------------------------------------------------------------ settings
    def _pairs(self) -> list[tuple[str, SurfaceEngine]]:
        if self.members is None:
            from volguard.models.parametric.sabr import SABR
            from volguard.models.parametric.ssvi import SSVI
            from volguard.models.parametric.svi import SVI

            return [("ssvi", SSVI()), ("sabr", SABR()), ("svi", SVI())]
        pairs = list(self.members)
        if not all(isinstance(p, tuple | list) and len(p) == 2 for p in pairs):
            raise ValueError(
                f"members must be (label, engine) pairs, got {self.members!r}; engine names "
                "belong to configuration: make_engine('ensemble', members=[names])"
            )
        return [(str(label), engine) for label, engine in pairs]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The settings; with ``deep``, each member's as ``<label>__<setting>`` too."""
        params: dict[str, Any] = super().get_params(deep=False)
        if deep and self.members is not None:
            for label, engine in self._pairs():
                params[label] = engine
                params.update({f"{label}__{k}": v for k, v in engine.get_params(True).items()})
        return params

    def set_params(self, **params: Any) -> EnsembleSurface:
        """Set settings, a member's as ``<label>__<setting>`` (scikit-learn's convention).

        Raises
        ------
        ValueError
            If a key names no setting and no member.
        """
        own = {k: v for k, v in params.items() if "__" not in k}
        nested = {k: v for k, v in params.items() if "__" in k}
        if own:
            super().set_params(**own)
        if nested:
            pairs = dict(self._pairs())
            for key, value in nested.items():
                label, _, setting = key.partition("__")
                if label not in pairs:
                    raise ValueError(f"{key!r}: no ensemble member is labelled {label!r}")
                pairs[label] = clone(pairs[label]).set_params(**{setting: value})
            self.members = list(pairs.items())
        return self

    def _member_engines(self) -> list[SurfaceEngine]:
        """Fresh, unfitted members; validates the settings.

        Raises
        ------
        ValueError
            If a setting is invalid, a member is no engine or needs training.
        """
        pairs = self._pairs()
        if len(pairs) == 0:
            raise ValueError("members must hold at least one (label, engine) pair")
        labels = [label for label, _ in pairs]
        if len(set(labels)) != len(labels):
            raise ValueError(f"member labels must be unique, got {labels}")
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights {self.weights!r} is unknown; expected one of {WEIGHTS}")
        if not 0.0 < float(self.validation_size) < 1.0:
            raise ValueError(f"validation_size must be in (0, 1), got {self.validation_size!r}")
        for label, engine in pairs:
            if not isinstance(engine, SurfaceEngine):
                raise ValueError(f"ensemble member {label!r} is not an engine: {engine!r}")
            if getattr(engine, "needs_training", False):
                raise ValueError(
                    f"ensemble member {label!r} needs a trained model (learned engine); "
                    "learned members are not supported"
                )
        return [clone(engine) for _, engine in pairs]

    def _check_settings(self) -> object:
        return self._member_engines()

    def _calibrate(
        self, quotes: FitQuotes
    ) -> tuple[dict[str, Any], bool, str | None, tuple[str, ...]]:
        snapshot = self._snapshot
        prototypes = self._member_engines()
        labels = tuple(label for label, _ in self._pairs())
        m = len(prototypes)
        rows = snapshot.quotes
        held = validation_rows(rows, float(self.validation_size), self.seed)
        notes: list[str] = []
        validation: FitQuotes | None = None
        if held.size:
            validation = fit_quotes(MarketSnapshot.from_quotes(rows.iloc[held]), self.weighting)
        usable = np.zeros(m, dtype=bool)
        predictions = np.full((m, len(validation) if validation is not None else 0), np.nan)
        if validation is None or len(validation) == 0:
            validation = None
            usable[:] = True
            notes.append("no quote could be held out (every expiry too small): equal weights")
        else:
            keep = np.ones(len(rows), dtype=bool)
            keep[held] = False
            visible = MarketSnapshot.from_quotes(rows[keep])
            for j, prototype in enumerate(prototypes):
                try:
                    member = clone(prototype).fit(visible)
                except FIT_ERRORS as exc:
                    notes.append(f"member {labels[j]} failed on the training split: {exc}")
                    continue
                predictions[j] = member.implied_vol(validation.k, validation.t)
                usable[j] = bool(np.all(np.isfinite(predictions[j])))
                if not usable[j]:
                    notes.append(f"member {labels[j]} predicts non-finite vols on the validation")

        rmse: list[float | None] = [None] * m
        score: list[float | None] = [None] * m
        for j in range(m):
            if validation is not None and usable[j]:
                error = predictions[j] - validation.mid_iv
                rmse[j] = float(np.sqrt(np.mean(error**2)) * 100)
                mse = np.sum(validation.weight * error**2) / np.sum(validation.weight)
                score[j] = float(np.sqrt(mse) * 100)
        fitted: list[SurfaceEngine | None] = [None] * m
        for j in range(m):
            if not usable[j]:
                continue
            try:
                fitted[j] = clone(prototypes[j]).fit(snapshot)
            except FIT_ERRORS as exc:
                notes.append(f"member {labels[j]} failed on all the quotes: {exc}")
                usable[j] = False
        if not usable.any():
            raise ValueError(
                f"every ensemble member failed to fit {snapshot!r}: {'; '.join(notes)}"
            )
        weights = np.zeros(m)
        if validation is not None:
            weights[usable] = combination_weights(
                str(self.weights), predictions[usable], validation.mid_iv, validation.weight
            )
        else:
            weights[usable] = 1.0 / usable.sum()

        self.members_ = fitted
        self.weights_ = weights
        self.labels_ = labels
        failed = [labels[j] for j in range(m) if not usable[j]]
        member_results = [f.result_ if f is not None else None for f in fitted]
        params: dict[str, Any] = {
            "weights_method": str(self.weights),
            "n_validation": len(validation) if validation is not None else 0,
            "weights": {label: float(w) for label, w in zip(labels, weights, strict=True)},
            "validation_rmse_vol_pts": dict(zip(labels, rmse, strict=True)),
            "validation_weighted_rmse_vol_pts": dict(zip(labels, score, strict=True)),
            "fallback": {
                label: (r.fallback if r is not None else "failed")
                for label, r in zip(labels, member_results, strict=True)
            },
            "member_params": {
                label: (r.params if r is not None else None)
                for label, r in zip(labels, member_results, strict=True)
            },
        }
        converged = all(r.converged for r in member_results if r is not None)
        fallback = f"members failed, weight 0: {', '.join(failed)}" if failed else None
        for label, r in zip(labels, member_results, strict=True):
            if r is not None:
                notes.extend(f"{label}: {w}" for w in r.warnings)
        return params, converged, fallback, tuple(notes)

    # ------------------------------------------------------------------------ surface
    def _active(self) -> list[tuple[float, SurfaceEngine]]:
        return [
            (float(w), member)
            for w, member in zip(self.weights_, self.members_, strict=True)
            if member is not None and w > 0
        ]

    def total_variance(self, k: FloatArray, t: FloatArray) -> FloatArray:
        """``sum_j pi_j w_j(k, t)``: the weighted total variance of the members."""
        k_arr, t_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
        out: FloatArray = np.zeros(k_arr.shape)
        for w, member in self._active():
            out = out + w * member.total_variance(k_arr, t_arr)
        return out

    def member_vols(self, k: FloatArray, t: FloatArray) -> FloatArray:
        """Each member's implied vol (decimal) at ``k`` and ``t`` (NaN for failed members).

        Returns
        -------
        ndarray, shape (m, *broadcast(k, t).shape)
            Row ``j`` is member ``labels_[j]`` (weights in ``weights_``).
        """
        k_arr, t_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
        out: FloatArray = np.full((len(self.members_), *k_arr.shape), np.nan)
        for j, member in enumerate(self.members_):
            if member is not None:
                out[j] = member.implied_vol(k_arr, t_arr)
        return out

    def member_frame(self, k: FloatArray, t: FloatArray) -> pd.DataFrame:
        """:meth:`member_vols` as a table: ``k``, ``t``, one column per member label, ``iv``
        (the ensemble's) and ``disagreement``, one row per point of ``broadcast(k, t)``."""
        k_arr, t_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
        vols = self.member_vols(k_arr, t_arr)
        frame = pd.DataFrame({"k": k_arr.ravel(), "t": t_arr.ravel()})
        for label, v in zip(self.labels_, vols, strict=True):
            frame[label] = v.ravel()
        frame["iv"] = self.implied_vol(k_arr, t_arr).ravel()
        frame["disagreement"] = self._spread(vols).ravel()
        return frame

    def _spread(self, vols: FloatArray) -> FloatArray:
        active = np.array(
            [m is not None and w > 0 for w, m in zip(self.weights_, self.members_, strict=True)]
        )
        pi = self.weights_[active] / self.weights_[active].sum()
        v = vols[active]
        pi = pi.reshape(-1, *([1] * (v.ndim - 1)))
        mean = np.sum(pi * v, axis=0)
        out: FloatArray = np.sqrt(np.sum(pi * (v - mean) ** 2, axis=0))
        return out

    def disagreement(self, k: FloatArray, t: FloatArray) -> FloatArray:
        """Weighted standard deviation of the members' implied vols (decimal vol).

        Parameters
        ----------
        k : array_like
            Forward log-moneyness ``ln(K/F)``.
        t : array_like
            Years to expiry (ACT/365), ``> 0``; broadcast with ``k``.

        Returns
        -------
        ndarray, shape broadcast(k, t)
            ``sqrt(sum_j pi_j (sigma_j - sigma_bar)^2)`` with ``sigma_bar = sum_j pi_j
            sigma_j`` over the members with positive weight; 0 where they agree.
        """
        return self._spread(self.member_vols(k, t))

    def disagreement_at(self, contracts: pd.DataFrame, context: MarketSnapshot) -> FloatArray:
        """:meth:`disagreement` per contract (``expiry``, ``strike``, ``is_call`` columns) in
        ``context`` (its forwards and time), the inputs of :meth:`greeks`; decimal vol.

        Raises
        ------
        ValueError
            If a contract's expiry has no forward in ``context`` or is not after its time.
        """
        f, strike, t, _ = self.contract_inputs(contracts, context)
        return self.disagreement(np.log(strike / f), t)

    def interval(
        self, contracts: pd.DataFrame, context: MarketSnapshot, level: float = 0.9
    ) -> tuple[FloatArray, FloatArray]:
        """The members' spread as an interval: ``sigma -/+ z D``, ``z = Phi^{-1}((1 + level)/2)``.

        The deep-ensemble reading of disagreement (Lakshminarayanan, Pritzel and Blundell 2017,
        arXiv:1612.01474): it treats the members as draws of a Gaussian posterior. Members fitted
        to the same quotes share their bias, so it is narrow where all are wrong; the lab reports
        its coverage, and :class:`~volguard.models.conformal.ConformalSurface` gives a
        calibrated one.

        Raises
        ------
        ValueError
            If ``level`` is not in ``(0, 1)``, or as :meth:`contract_inputs`.
        """
        return self._gaussian_interval(contracts, context, level, self.disagreement)
