"""``gbm``: a gradient-boosted surface trained across snapshots and conditioned on one.

One LightGBM regression tree ensemble is trained on the fit quotes of many snapshots
(:func:`train_gbm`); the engine (:class:`GBMSurface`) is then fitted to one snapshot by reading
its state (:func:`volguard.models.learned.features.state_features`) and answers the total
variance the trained model predicts for that state.

The target
----------
One row per fit quote: inputs ``k``, ``t`` and the snapshot's state features; target

    y = ln(sigma_mid^2 t / sigma_atm30^2)

the log of the total implied variance in units of the snapshot's 30-day ATM variance rate
(years). The log makes the squared loss relative: an error of 0.01 in ``y`` is about 0.5% of
the vol at any expiry (in ``w`` itself, the one-day expiries were learned 50 vol points off);
the prediction ``exp(y)`` is positive.
Dividing by one number per snapshot makes calm and stressed snapshots comparable (a smile
twice as high in vol has four times the variance and four times the divisor, so the same
``y``), while ``y`` keeps the order of ``w`` in ``t`` at fixed ``k``: no calendar arbitrage
means ``w(k, t)`` non-decreasing in ``t``, so the model is constrained to be non-decreasing in
``t`` (LightGBM ``monotone_constraints``) and every predicted surface is free of calendar
arbitrage at fixed ``k`` for every state. Dividing instead by each expiry's own ATM total
variance (the smile's shape) would cancel the term structure and make a monotone constraint in
``t`` meaningless. ``sqrt(t)`` is not an input: trees split on thresholds, so a monotone
transform of an input adds nothing.

Out of the training domain
--------------------------
Trees extrapolate flat. A flat wing beyond a rising one is a concave kink in total variance,
hence negative density (butterfly arbitrage) at the edge of the trained log-moneyness range, so
the engine does not keep it: beyond the trained ``k`` range total variance continues linearly
with the slope of the outer 0.15 of the range, pointing outward and at most Lee's bound 2
(0 when the tree's wing points inward; the slope's size never decreases with ``t``). Before
the shortest and after the longest trained ``t`` the engine holds the implied vol of the
nearest trained ``t`` (total variance proportional to ``t``); a state outside the trained
range of a feature gets the prediction of the nearest trained value, and the fit result warns
about it.

Smoothing
---------
A tree ensemble is a step function of ``k``: each step is a jump in vol and hence in price, so
prices would not be monotone in strike. The engine evaluates the model once per fit on a mesh
(log-moneyness step 0.01; the snapshot's expiries and 48 geometric times across the trained
``t`` range), smooths each row along ``k`` with a Gaussian kernel of standard deviation
``smoothing`` (log-moneyness) and interpolates bilinearly. A positive kernel keeps the order in
``t``, so the surface stays calendar-monotone.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from volguard._typing import FloatArray
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import MIN_VARIANCE
from volguard.models.learned.base import LearnedSurface
from volguard.models.learned.features import (
    DEFAULT_FEATURES,
    FEATURES,
    known_state,
    state_features,
)
from volguard.models.parametric.svi import LEE_SLOPE
from volguard.models.quotes import FitQuotes, fit_quotes

INPUTS: tuple[str, ...] = ("k", "t")
"""Quote inputs of every row, before the state features."""
NORMALISER = "atm_vol_30d"
"""State feature whose square divides the target (see the module docstring)."""
DAY = pd.Timedelta(days=1)

# Regularisation defaults: shallow trees (15 leaves), at least 20 quotes per leaf so a leaf
# never describes a single noisy quote, L2 penalty 1 on leaf values, 0.05 shrinkage over at most
# 400 trees (early stopping on ``validation`` when given).
N_ESTIMATORS = 400
LEARNING_RATE = 0.05
NUM_LEAVES = 15
MIN_CHILD_SAMPLES = 20
REG_LAMBDA = 1.0
EARLY_STOPPING_ROUNDS = 40


@dataclass(frozen=True)
class TrainingRows:
    """The rows a learned surface is trained on: one per fit quote of every snapshot.

    ``inputs`` is ``(n_rows, 2 + n_features)`` (``k``, ``t`` in years, then the snapshot's state
    features); ``target`` is ``ln(sigma_mid^2 t / sigma_atm30^2)`` (log years); ``weight`` the quote
    weight times the age decay; ``snapshot`` numbers each row's snapshot in ``ts``.
    """

    inputs: FloatArray
    target: FloatArray
    weight: FloatArray
    snapshot: np.ndarray
    ts: pd.DatetimeIndex
    names: tuple[str, ...]


def age_weights(ts: pd.DatetimeIndex, half_life_days: float | None) -> FloatArray:
    """Exponential decay by age: ``0.5 ** (age_days / half_life_days)``, the newest ``ts`` 1.

    ``None`` gives every snapshot weight 1.

    Raises
    ------
    ValueError
        If ``half_life_days`` is not positive.

    Examples
    --------
    >>> ts = pd.DatetimeIndex(["2026-01-01", "2026-01-03", "2026-01-05"], tz="UTC")
    >>> age_weights(ts, 2.0).tolist(), age_weights(ts, None).tolist()
    ([0.25, 0.5, 1.0], [1.0, 1.0, 1.0])
    """
    if half_life_days is None:
        return np.ones(len(ts))
    if not half_life_days > 0:
        raise ValueError(f"half_life_days must be positive or None; received {half_life_days}")
    age = ((ts.max() - ts) / DAY).to_numpy(dtype=float)
    decay: FloatArray = 0.5 ** (age / half_life_days)
    return decay


def training_rows(
    snapshots: Iterable[MarketSnapshot],
    *,
    features: Sequence[str] = DEFAULT_FEATURES,
    half_life_days: float | None = None,
    weighting: str = "none",
) -> TrainingRows:
    """Build the training rows of ``snapshots`` (see :class:`TrainingRows`).

    Snapshots without a fit quote are skipped, and so are those whose state lacks a feature
    used (the first snapshot of a history has no realised vol yet).

    Raises
    ------
    ValueError
        If a feature is unknown, ``half_life_days`` is not positive, or no snapshot has a fit
        quote and every feature.
    """
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValueError(f"features {unknown} are unknown; expected names of {FEATURES}")
    blocks: list[tuple[FitQuotes, dict[str, float]]] = []
    stamps = []
    for snap in snapshots:
        quotes = fit_quotes(snap, weighting)
        if len(quotes) == 0:
            continue
        state = state_features(quotes)
        if not all(np.isfinite(state[f]) for f in features):
            continue
        blocks.append((quotes, state))
        stamps.append(snap.ts)
    if not blocks:
        raise ValueError(
            "training needs at least one snapshot with a fit quote and every feature "
            f"{tuple(features)} known; received none"
        )
    ts = pd.DatetimeIndex(stamps)
    decay = age_weights(ts, half_life_days)
    inputs, target, weight, index = [], [], [], []
    for i, (q, state) in enumerate(blocks):
        n = len(q)
        cols = [q.k, q.t, *(np.full(n, state[f]) for f in features)]
        inputs.append(np.column_stack(cols))
        target.append(np.log(q.mid_iv**2 * q.t / state[NORMALISER] ** 2))
        weight.append(q.weight * decay[i])
        index.append(np.full(n, i))
    return TrainingRows(
        inputs=np.concatenate(inputs),
        target=np.concatenate(target),
        weight=np.concatenate(weight),
        snapshot=np.concatenate(index),
        ts=ts,
        names=(*INPUTS, *features),
    )


@functools.lru_cache(maxsize=16)
def _booster(model_text: str) -> lgb.Booster:
    return lgb.Booster(model_str=model_text)


@dataclass(frozen=True)
class GBMSurfaceModel:
    """A trained gradient-boosted surface: the LightGBM model and the facts of its training.

    Immutable, picklable and compared by value (the booster is kept as LightGBM's model text),
    so ``clone`` and ``get_params`` of an engine holding it behave as for any setting.

    Attributes
    ----------
    model_text : str
        ``Booster.model_to_string()`` of the trained (best-iteration) model.
    features : tuple of str
        State features used, in input order after ``k``, ``t``.
    rows, snapshots : int
        Training quotes and snapshots.
    first_ts, last_ts : pandas.Timestamp
        Time span of the training snapshots (UTC).
    half_life_days : float or None
        Age decay of the sample weights (None: equal weights).
    k_range, t_range : tuple of float
        Trained log-moneyness and years ranges.
    state_ranges : tuple of (name, low, high)
        Trained range of each state feature.
    n_trees : int
        Trees kept (the best iteration under early stopping).
    settings : tuple of (name, value)
        LightGBM settings of the training.
    """

    model_text: str
    features: tuple[str, ...]
    rows: int
    snapshots: int
    first_ts: pd.Timestamp
    last_ts: pd.Timestamp
    half_life_days: float | None
    k_range: tuple[float, float]
    t_range: tuple[float, float]
    state_ranges: tuple[tuple[str, float, float], ...]
    n_trees: int
    settings: tuple[tuple[str, Any], ...]

    @property
    def booster(self) -> lgb.Booster:
        """The LightGBM booster (rebuilt from ``model_text`` once per process, then cached)."""
        return _booster(self.model_text)

    def predict(self, k: FloatArray, t: FloatArray, state: Mapping[str, float]) -> FloatArray:
        """Total implied variance ``sigma^2 t`` at ``k``, ``t`` (broadcast) for ``state``.

        ``state`` maps every name of ``features`` and ``atm_vol_30d`` (the de-normaliser) to
        its value. The raw tree prediction: flat outside the trained ranges, floored at
        ``MIN_VARIANCE``.
        """
        k_arr, t_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
        n = k_arr.size
        cols = [k_arr.ravel(), t_arr.ravel(), *(np.full(n, state[f]) for f in self.features)]
        y = np.asarray(self.booster.predict(np.column_stack(cols)), dtype=float)
        w: FloatArray = np.maximum(np.exp(y) * state[NORMALISER] ** 2, MIN_VARIANCE)
        return w.reshape(k_arr.shape)

    def outside(self, state: Mapping[str, float]) -> list[str]:
        """The state features of ``state`` outside their trained range, as readable notes."""
        return [
            f"state {name}={state[name]:.4g} is outside the trained range [{lo:.4g}, {hi:.4g}]"
            for name, lo, hi in self.state_ranges
            if not lo <= state[name] <= hi
        ]


def train_gbm(
    snapshots: Iterable[MarketSnapshot],
    *,
    half_life_days: float | None = None,
    features: Sequence[str] = DEFAULT_FEATURES,
    weighting: str = "none",
    validation: Iterable[MarketSnapshot] | None = None,
    seed: int = 0,
    n_estimators: int = N_ESTIMATORS,
    learning_rate: float = LEARNING_RATE,
    num_leaves: int = NUM_LEAVES,
    min_child_samples: int = MIN_CHILD_SAMPLES,
    reg_lambda: float = REG_LAMBDA,
    early_stopping_rounds: int = EARLY_STOPPING_ROUNDS,
) -> GBMSurfaceModel:
    """Train a gradient-boosted surface on the fit quotes of ``snapshots``.

    Parameters
    ----------
    snapshots : iterable of MarketSnapshot
        Training snapshots (any underlyings and times; usually one underlying's history).
    half_life_days : float or None
        Dynamic weighting: each snapshot's quote weights times ``0.5 ** (age / half_life)``,
        age in days before the newest training snapshot (weight 1). None: equal weights.
    features : sequence of str
        State features fed to the trees (names of :data:`FEATURES`).
    weighting : {'none', 'vega', 'spread', 'open_interest'}
        Quote weights within a snapshot (:func:`volguard.models.quotes.fit_quotes`). Default
        ``none``: the loss is already relative (log variance), and vega weights, small at
        short expiries, left the short end badly learned (held-out calm snapshots, 16 trained:
        6.1 vol points RMSE with ``vega``, 4.0 with ``none``).
    validation : iterable of MarketSnapshot, optional
        Held-out snapshots (e.g. another regime) for early stopping: training stops when their
        weighted L2 loss has not improved for ``early_stopping_rounds`` trees, and the best
        iteration is kept. Their weights are the quote weights (no age decay).
    seed : int
        LightGBM ``random_state``; training is deterministic (``deterministic=True``,
        one thread, row-wise histograms), so the same inputs and seed give the same model.
    n_estimators, learning_rate, num_leaves, min_child_samples, reg_lambda
        LightGBM settings; defaults: 400 trees, 0.05, 15 leaves, 20 quotes per leaf, L2 1.0.
    early_stopping_rounds : int
        Patience of early stopping (only with ``validation``).

    Returns
    -------
    GBMSurfaceModel

    Raises
    ------
    ValueError
        If no training snapshot has a fit quote, a feature is unknown or ``half_life_days`` is
        not positive.

    Notes
    -----
    Target ``y = ln(sigma_mid^2 t / sigma_atm30^2)`` with a monotone (non-decreasing) constraint in
    ``t``; the module docstring says why.
    """
    rows = training_rows(
        snapshots, features=features, half_life_days=half_life_days, weighting=weighting
    )
    settings: dict[str, Any] = {
        "n_estimators": n_estimators,
        "learning_rate": learning_rate,
        "num_leaves": num_leaves,
        "min_child_samples": min_child_samples,
        "reg_lambda": reg_lambda,
        "monotone_constraints": [1 if name == "t" else 0 for name in rows.names],
        "deterministic": True,
        "force_row_wise": True,
        "n_jobs": 1,
        "random_state": seed,
        "verbose": -1,
    }
    model = lgb.LGBMRegressor(**settings)
    fit_kwargs: dict[str, Any] = {"sample_weight": rows.weight, "feature_name": list(rows.names)}
    if validation is not None:
        held = training_rows(validation, features=features, weighting=weighting)
        fit_kwargs["eval_X"] = (held.inputs,)
        fit_kwargs["eval_y"] = (held.target,)
        fit_kwargs["eval_sample_weight"] = [held.weight]
        fit_kwargs["callbacks"] = [lgb.early_stopping(early_stopping_rounds, verbose=False)]
    model.fit(rows.inputs, rows.target, **fit_kwargs)
    best = model.best_iteration_ if validation is not None else None
    booster = model.booster_
    n_trees = int(best) if best else booster.num_trees()
    state = rows.inputs[:, len(INPUTS) :]
    return GBMSurfaceModel(
        model_text=booster.model_to_string(num_iteration=n_trees),
        features=tuple(features),
        rows=int(rows.target.size),
        snapshots=len(rows.ts),
        first_ts=rows.ts.min(),
        last_ts=rows.ts.max(),
        half_life_days=half_life_days,
        k_range=(float(rows.inputs[:, 0].min()), float(rows.inputs[:, 0].max())),
        t_range=(float(rows.inputs[:, 1].min()), float(rows.inputs[:, 1].max())),
        state_ranges=tuple(
            (name, float(state[:, j].min()), float(state[:, j].max()))
            for j, name in enumerate(features)
        ),
        n_trees=n_trees,
        settings=tuple(
            (key, tuple(v) if isinstance(v, list) else v) for key, v in settings.items()
        ),
    )


class GBMSurface(LearnedSurface):
    """A trained gradient-boosted surface, conditioned on the fitted snapshot's state.

    ``fit(snapshot)`` computes the snapshot's state features and evaluates the trained model
    for that state (see the module docstring: target, smoothing, out-of-domain behaviour). The
    model is trained beforehand, across snapshots: ``GBMSurface.train(snapshots, **settings)``
    (:func:`train_gbm`), then ``make_engine("gbm", model=model)``.

    Parameters
    ----------
    model : GBMSurfaceModel or None
        The trained model; ``fit`` raises without one.
    weighting : {'vega', 'spread', 'open_interest', 'none'}
        Quote weights of the fit report (the state features do not use them).
    smoothing : float
        Standard deviation (log-moneyness) of the Gaussian kernel that smooths the trees' steps
        in ``k``; 0 evaluates the raw trees on the mesh.
    """

    name = "gbm"
    trainer = staticmethod(train_gbm)
    model_type = GBMSurfaceModel

    def __init__(
        self,
        model: GBMSurfaceModel | None = None,
        weighting: str = "vega",
        smoothing: float = 0.05,
    ) -> None:
        self.model = model
        self.weighting = weighting
        self.smoothing = smoothing

    def _calibrate(
        self, quotes: FitQuotes
    ) -> tuple[dict[str, Any], bool, str | None, tuple[str, ...]]:
        model = self._trained_model()
        if not self.smoothing >= 0:
            raise ValueError(f"smoothing must be >= 0 (log-moneyness); received {self.smoothing}")
        state = state_features(quotes, model.features)
        k_lo, k_hi = model.k_range
        grid_k = np.linspace(k_lo, k_hi, max(2, math.ceil((k_hi - k_lo) / 0.01) + 1))
        t_lo, t_hi = model.t_range
        own = np.unique(quotes.t)
        grid_t = np.unique(
            np.concatenate([np.geomspace(t_lo, t_hi, 48), own[(own > t_lo) & (own < t_hi)]])
        )
        raw = model.predict(grid_k[None, :], grid_t[:, None], state)
        self.wing_slope_ = _wing_slopes(raw, grid_k)
        self.grid_k_ = grid_k
        self.grid_t_ = grid_t
        self.grid_w_ = _smooth_rows(raw, grid_k, self.smoothing, self.wing_slope_)
        self.state_ = state
        return known_state(state), True, None, tuple(model.outside(state))

    def total_variance(self, k: FloatArray, t: FloatArray) -> FloatArray:
        k_arr, t_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
        gk, gt, gw = self.grid_k_, self.grid_t_, self.grid_w_
        kc = np.clip(k_arr, gk[0], gk[-1])
        tc = np.clip(t_arr, gt[0], gt[-1])
        i = np.clip(np.searchsorted(gk, kc) - 1, 0, gk.size - 2)
        j = np.clip(np.searchsorted(gt, tc) - 1, 0, gt.size - 2)
        b = (kc - gk[i]) / (gk[i + 1] - gk[i])
        a = (tc - gt[j]) / (gt[j + 1] - gt[j])
        lo = (1 - b) * gw[j, i] + b * gw[j, i + 1]
        hi = (1 - b) * gw[j + 1, i] + b * gw[j + 1, i + 1]
        w = (1 - a) * lo + a * hi
        slope_lo = (1 - a) * self.wing_slope_[0][j] + a * self.wing_slope_[0][j + 1]
        slope_hi = (1 - a) * self.wing_slope_[1][j] + a * self.wing_slope_[1][j + 1]
        w = w + np.minimum(k_arr - gk[0], 0) * slope_lo + np.maximum(k_arr - gk[-1], 0) * slope_hi
        out: FloatArray = w * t_arr / tc  # implied vol held outside the trained t range
        return out


WING_SPAN = 0.15
"""Log-moneyness span at each end of the trained range that sets the wing slopes."""


def _wing_slopes(w: FloatArray, grid_k: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Slopes ``dw/dk`` of the left and right wings (one per row of ``w``).

    The slope over the outer ``WING_SPAN`` of the trained range, pointing outward (left
    ``<= 0``, right ``>= 0``), at most Lee's bound 2 in size, made non-decreasing in size along
    the rows (increasing ``t``) so the extrapolated wings keep the calendar order.
    """
    m = int(np.clip(np.searchsorted(grid_k, grid_k[0] + WING_SPAN), 1, grid_k.size - 1))
    left = (w[:, m] - w[:, 0]) / (grid_k[m] - grid_k[0])
    right = (w[:, -1] - w[:, -1 - m]) / (grid_k[-1] - grid_k[-1 - m])
    return outward_wings(left, right)


def outward_wings(left: FloatArray, right: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Wing slopes ``dw/dk`` (one per expiry, increasing ``t``) made safe to extrapolate:
    pointing outward (left ``<= 0``, right ``>= 0``), at most Lee's (2004) bound 2 in size
    (:data:`volguard.models.parametric.svi.LEE_SLOPE`), and non-decreasing in size with ``t``
    so the linear wings keep the calendar order."""
    return (
        -np.maximum.accumulate(np.clip(-left, 0.0, LEE_SLOPE)),
        np.maximum.accumulate(np.clip(right, 0.0, LEE_SLOPE)),
    )


def _smooth_rows(
    w: FloatArray, grid_k: FloatArray, width: float, wings: tuple[FloatArray, FloatArray]
) -> FloatArray:
    """Gaussian smoothing of each row of ``w`` along the uniform ``grid_k``.

    Rows are continued beyond the grid along the wing slopes ``wings`` (as ``total_variance``
    extrapolates them), so the ends are smoothed without a kink.
    """
    if width <= 0:
        return w
    step = float(grid_k[1] - grid_k[0])
    half = max(1, math.ceil(4 * width / step))
    x = np.arange(-half, half + 1) * step
    kernel = np.exp(-0.5 * (x / width) ** 2)
    kernel /= kernel.sum()
    reach = np.arange(1, half + 1) * step
    left = w[:, :1] + wings[0][:, None] * -reach[::-1][None, :]
    right = w[:, -1:] + wings[1][:, None] * reach[None, :]
    padded = np.concatenate([left, w, right], axis=1)
    out: FloatArray = np.stack([np.convolve(row, kernel, mode="valid") for row in padded])
    return out
