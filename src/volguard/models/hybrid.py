"""``hybrid``: a first-principles prior times a learned correction that knows its domain.

    w(k, t) = w_prior(k, t) * (1 + s * c(k, t, state))

The prior is any first-principles engine fitted to the snapshot (``ssvi`` by default; ``essvi``,
``heston``, ``bates`` and the others are allowed). The correction ``c`` is a small neural
network (inputs ``k``, ``ln t`` and the snapshot's state features,
:func:`volguard.models.learned.features.state_features`), trained across snapshots on the
residual ratio of each training snapshot to its own prior,

    r = w_market / w_prior - 1 = sigma_mid^2 t / w_prior(k, t) - 1,

with the soft no-arbitrage penalties of Deep Smoothing (Ackerer, Tagasovska and Vatter 2020)
applied to the product ``w_prior * (1 + c)`` on a synthetic mesh (per training snapshot, with
that snapshot's prior; derivatives of ``c`` by automatic differentiation, of the prior by
central differences): calendar ``dw/dt >= 0`` (as ``relu(-d ln w / d ln t)``), butterfly
Durrleman's ``g >= 0`` (as ``relu(-g)``), large moneyness ``|w_kk| / w`` at the mesh ends in
``k``, and a penalty ``mean(c^2)`` on the mesh that keeps the correction small where there are
no quotes. The mesh covers the static-arbitrage check's log-moneyness range (-1.5 .. 1.0) and
the trained range, times log-uniform over the trained range. Training needs PyTorch
(``pip install 'volguard[ml]'``); fitting and pricing run in NumPy.

The shrink factor
-----------------
Out of its training domain the correction shrinks to zero and the hybrid returns to its prior:

    s = exp(-d^2 / (2 h^2)),   d = min_i || (x - x_i) / sigma ||_2

where ``x`` is the fitted snapshot's state-feature vector, ``x_i`` those of the training
snapshots, ``sigma`` the per-feature standard deviation of the training states (floored at
``SCALE_FLOOR`` times the feature's typical size, so a feature that hardly moved in training
does not make every new snapshot infinitely far) and ``h`` the setting ``shrink_distance``
(default 3 standardised units: ``s = 0.95`` at ``d = 1``, ``0.61`` at ``d = 3``, ``0.004``
at ``d = 10``). ``s`` is recorded in the fit result's params. In ``(k, t)``: the correction is
evaluated at ``t`` clipped to the trained range (so outside it ``w`` is the prior times a factor
constant in ``t``, calendar order kept), and beyond the quoted ``k`` the ``mean(c^2)``
penalty on the mesh pulls it towards 0.

``1 + s c`` is floored at ``MIN_FACTOR`` (never reached in the tests; a guard against a wild
extrapolation making ``w`` negative).

References
----------
Ackerer, D., Tagasovska, N. and Vatter, T. (2020), Deep Smoothing of the Implied Volatility
Surface, NeurIPS 33, arXiv:1906.05065.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import clone

from volguard._typing import FloatArray
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import SurfaceEngine
from volguard.models.learned.base import LearnedSurface
from volguard.models.learned.features import (
    DEFAULT_FEATURES,
    FEATURES,
    known_state,
    state_features,
)
from volguard.models.learned.gbm import age_weights
from volguard.models.learned.nn import (
    MESH_BATCH,
    MESH_POINTS,
    MESH_POOL,
    TYPICAL,
    derivatives,
    durrleman,
    input_scaling,
    penalty_mesh,
    train_loop,
)
from volguard.models.mlp import INSTALL_HINT, MLP, TorchMLP, TorchSession, import_torch
from volguard.models.quotes import FitQuotes, fit_quotes

HIDDEN: tuple[int, ...] = (32, 32)
EPOCHS = 300
LEARNING_RATE = 0.005
WEIGHT_DECAY = 1e-4
CALENDAR_PENALTY = 10.0
BUTTERFLY_PENALTY = 100.0
WING_PENALTY = 0.1
SMALL_PENALTY = 1.0
PATIENCE = 10
SHRINK_DISTANCE = 3.0
CHECK_K = (-1.5, 1.0)
"""Log-moneyness range of the static-arbitrage check's mesh, always inside the penalty mesh."""
SCALE_FLOOR = 0.05
MIN_FACTOR = 0.05
FD_STEP = 1e-4


@dataclass(frozen=True)
class HybridModel:
    """A trained correction and the prior it corrects.

    Immutable, picklable and compared by value (the network's weights are bytes).

    Attributes
    ----------
    prior : SurfaceEngine
        The first-principles prior engine, unfitted (compared by ``prior_name`` and
        ``prior_settings``).
    prior_name : str
        Its engine name.
    prior_settings : tuple of (name, value)
        Its settings (``get_params``).
    mlp : MLP
        The correction ``c``: inputs ``(k, ln t, *features)``.
    features : tuple of str
        State features used, in input order after ``k``, ``ln t``.
    state_shift, state_scale : tuple of float
        Standardisation of the states for the shrink distance (mean, floored std).
    train_states : tuple of tuple of float
        The standardised states of the training snapshots.
    rows, snapshots : int
        Training quotes and snapshots.
    first_ts, last_ts : pandas.Timestamp
        Time span of the training snapshots.
    half_life_days : float or None
        Age decay of the sample weights.
    k_range, t_range : tuple of float
        Trained (quoted) log-moneyness and years ranges.
    epochs : int
        Training steps of the kept weights.
    settings : tuple of (name, value)
        Training settings.
    """

    prior: SurfaceEngine = field(compare=False)
    prior_name: str
    prior_settings: tuple[tuple[str, Any], ...]
    mlp: MLP
    features: tuple[str, ...]
    state_shift: tuple[float, ...]
    state_scale: tuple[float, ...]
    train_states: tuple[tuple[float, ...], ...]
    rows: int
    snapshots: int
    first_ts: pd.Timestamp
    last_ts: pd.Timestamp
    half_life_days: float | None
    k_range: tuple[float, float]
    t_range: tuple[float, float]
    epochs: int
    settings: tuple[tuple[str, Any], ...]

    def make_prior(self) -> SurfaceEngine:
        """A new, unfitted prior engine."""
        engine: SurfaceEngine = clone(self.prior)
        return engine

    def distance(self, state: Mapping[str, float]) -> float:
        """Standardised distance of ``state`` to the nearest training state."""
        x = (np.array([state[f] for f in self.features]) - self.state_shift) / np.asarray(
            self.state_scale
        )
        return float(np.min(np.linalg.norm(np.asarray(self.train_states) - x, axis=1)))

    def correction(self, k: FloatArray, t: FloatArray, state: Mapping[str, float]) -> FloatArray:
        """``c(k, t, state)`` (broadcast), ``t`` clipped to the trained range (NumPy)."""
        k_arr, t_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
        n = k_arr.size
        lt = np.log(np.clip(t_arr.ravel(), *self.t_range))
        cols = [k_arr.ravel(), lt, *(np.full(n, state[f]) for f in self.features)]
        out: FloatArray = self.mlp(np.column_stack(cols)).reshape(k_arr.shape)
        return out


def _checked_prior(prior: SurfaceEngine | None) -> SurfaceEngine:
    """A fresh prior engine (default ``SSVI()``); a learned engine cannot be one."""
    if prior is None:
        from volguard.models.parametric.ssvi import SSVI

        return SSVI()
    if not isinstance(prior, SurfaceEngine) or getattr(prior, "needs_training", False):
        raise ValueError(f"prior must be a first-principles engine, got {prior!r}")
    engine: SurfaceEngine = clone(prior)
    return engine


def _prior_derivatives(
    prior: SurfaceEngine, k: FloatArray, t: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """``w``, ``w_k``, ``w_kk`` and ``t w_t`` of a fitted prior at ``(k, t)``, central
    differences (``w_t`` relative in ``t``)."""
    h = FD_STEP
    w = prior.total_variance(k, t)
    up, dn = prior.total_variance(k + h, t), prior.total_variance(k - h, t)
    later, earlier = prior.total_variance(k, t * (1 + h)), prior.total_variance(k, t * (1 - h))
    return w, (up - dn) / (2 * h), (up - 2 * w + dn) / h**2, (later - earlier) / (2 * h)


def train_hybrid(
    snapshots: Iterable[MarketSnapshot],
    *,
    prior: SurfaceEngine | None = None,
    half_life_days: float | None = None,
    features: Sequence[str] = DEFAULT_FEATURES,
    weighting: str = "none",
    validation: Iterable[MarketSnapshot] | None = None,
    seed: int = 0,
    hidden: Sequence[int] = HIDDEN,
    epochs: int = EPOCHS,
    learning_rate: float = LEARNING_RATE,
    weight_decay: float = WEIGHT_DECAY,
    calendar_penalty: float = CALENDAR_PENALTY,
    butterfly_penalty: float = BUTTERFLY_PENALTY,
    wing_penalty: float = WING_PENALTY,
    small_penalty: float = SMALL_PENALTY,
    patience: int = PATIENCE,
) -> HybridModel:
    """Train the correction of a hybrid surface (needs PyTorch).

    Parameters
    ----------
    snapshots : iterable of MarketSnapshot
        Training snapshots; the prior is fitted to each.
    prior : SurfaceEngine, optional
        A first-principles engine, unfitted (default ``SSVI()``), e.g.
        ``ESSVI(weighting="spread")``.
    half_life_days : float or None
        Sample weights times ``0.5 ** (age / half_life)`` (days before the newest snapshot).
    features : sequence of str
        State features of the correction's inputs and of the shrink distance.
    weighting : {'none', 'vega', 'spread', 'open_interest'}
        Quote weights within a snapshot of the residual loss.
    validation : iterable of MarketSnapshot, optional
        Held-out snapshots for early stopping (checked every 10 steps, ``patience`` checks).
    seed : int
        Seeds the initial weights and the mesh.
    hidden, epochs, learning_rate, weight_decay
        Network (2 x 32, tanh) and AdamW (300 full-batch steps, 0.005, 1e-4).
    calendar_penalty, butterfly_penalty, wing_penalty, small_penalty : float
        Weights of the mesh penalties (module docstring): 10, 100, 0.1, 1.
    patience : int
        Early-stopping patience in checks.

    Returns
    -------
    HybridModel

    Raises
    ------
    ImportError
        If PyTorch is not installed (``pip install 'volguard[ml]'``).
    ValueError
        If no snapshot has a fit quote, the prior is not a first-principles engine, or a
        feature is unknown.
    """
    torch = import_torch("training the hybrid's correction")
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValueError(f"features {unknown} are unknown; expected names of {FEATURES}")
    prior = _checked_prior(prior)
    train = _blocks(snapshots, prior, features, weighting)
    if not train:
        raise ValueError("training needs at least one snapshot with a fit quote; received none")
    decay = age_weights(pd.DatetimeIndex([b.ts for b in train]), half_life_days)
    x = np.concatenate([b.x for b in train])
    r = np.concatenate([b.r for b in train])
    weight = np.concatenate([b.weight * d for b, d in zip(train, decay, strict=True)])
    weight = weight / weight.mean()
    k_range = (float(x[:, 0].min()), float(x[:, 0].max()))
    t_range = (float(np.exp(x[:, 1].min())), float(np.exp(x[:, 1].max())))
    mesh_k = (min(CHECK_K[0], k_range[0]), max(CHECK_K[1], k_range[1]))
    rng = np.random.default_rng(seed)
    per = max(1, min(MESH_POINTS, MESH_POOL // len(train)))
    pool_parts = []
    for b in train:
        mk, mt, edge = penalty_mesh(mesh_k, t_range, per, rng)
        w, wk, wkk, wt = _prior_derivatives(b.prior, mk, mt)
        state = np.repeat(b.x[:1, 2:], per, axis=0)
        pool_parts.append(np.column_stack([mk, np.log(mt), state, w, wk, wkk, wt, edge]))
    pool = np.concatenate(pool_parts)
    n_in = x.shape[1]
    states = np.array([b.x[0, 2:] for b in train])
    state_shift = states.mean(axis=0)
    floor = SCALE_FLOOR * np.array([TYPICAL[f] for f in features])
    state_scale = np.maximum(states.std(axis=0), floor)
    shift, scale = input_scaling(x, features)
    sizes = (n_in, *hidden, 1)
    with TorchSession(torch):
        f32 = torch.float32
        gen = torch.Generator().manual_seed(seed)
        net = TorchMLP(torch, sizes, shift, scale, gen)
        xt, rt, wt_ = (torch.tensor(a, dtype=f32) for a in (x, r, weight))
        pool_t = torch.tensor(pool, dtype=f32)

        def loss() -> Any:
            data = (wt_ * (net(xt) - rt) ** 2).mean()
            m = pool_t[torch.randint(len(pool_t), (MESH_BATCH,), generator=gen)]
            m_x = m[:, :n_in]
            c, ck, cl, ckk = derivatives(torch, net, m_x)
            wp, wpk, wpkk, wpt, edge = (m[:, n_in + j] for j in range(5))
            u = 1.0 + c
            w = (wp * u).clamp(min=1e-8)
            wk = wpk * u + wp * ck
            wkk = wpkk * u + 2 * wpk * ck + wp * ckk
            dlnw = (wpt * u + wp * cl) / w  # d ln w / d ln t
            calendar = torch.relu(-dlnw).mean()
            butterfly = torch.relu(-durrleman(w, wk, wkk, m_x[:, 0])).mean()
            wing = (torch.abs(wkk / w) * edge).sum() / edge.sum().clamp(min=1)
            return (
                data
                + calendar_penalty * calendar
                + butterfly_penalty * butterfly
                + wing_penalty * wing
                + small_penalty * (c**2).mean()
            )

        check: Callable[[], float] | None = None
        if validation is not None:
            held = _blocks(validation, prior, features, weighting)
            hx = torch.tensor(np.concatenate([b.x for b in held]), dtype=f32)
            hr = torch.tensor(np.concatenate([b.r for b in held]), dtype=f32)
            hw_np = np.concatenate([b.weight for b in held])
            hw = torch.tensor(hw_np / hw_np.mean(), dtype=f32)

            def check() -> float:
                with torch.no_grad():
                    return float((hw * (net(hx) - hr) ** 2).mean())

        weights, steps = train_loop(
            torch,
            net,
            loss,
            check,
            epochs=epochs,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            patience=patience,
        )
        mlp = net.value(weights)
    ts = pd.DatetimeIndex([b.ts for b in train])
    settings = {
        "hidden": tuple(hidden),
        "epochs": epochs,
        "learning_rate": learning_rate,
        "weight_decay": weight_decay,
        "calendar_penalty": calendar_penalty,
        "butterfly_penalty": butterfly_penalty,
        "wing_penalty": wing_penalty,
        "small_penalty": small_penalty,
        "patience": patience,
        "weighting": weighting,
        "seed": seed,
    }
    return HybridModel(
        prior=prior,
        prior_name=prior.name,
        prior_settings=tuple(sorted(prior.get_params(deep=False).items())),
        mlp=mlp,
        features=tuple(features),
        state_shift=tuple(float(v) for v in state_shift),
        state_scale=tuple(float(v) for v in state_scale),
        train_states=tuple(
            tuple(float(v) for v in row) for row in (states - state_shift) / state_scale
        ),
        rows=int(r.size),
        snapshots=len(train),
        first_ts=ts.min(),
        last_ts=ts.max(),
        half_life_days=half_life_days,
        k_range=k_range,
        t_range=t_range,
        epochs=steps,
        settings=tuple(settings.items()),
    )


@dataclass(frozen=True)
class _Block:
    """One training snapshot: inputs ``(k, ln t, state)``, residual ratio, weights, prior."""

    ts: pd.Timestamp
    x: FloatArray
    r: FloatArray
    weight: FloatArray
    prior: SurfaceEngine


def _blocks(
    snapshots: Iterable[MarketSnapshot],
    prior: SurfaceEngine,
    features: Sequence[str],
    weighting: str,
) -> list[_Block]:
    out = []
    for snap in snapshots:
        q = fit_quotes(snap, weighting)
        if len(q) == 0:
            continue
        state = state_features(q)
        if not all(np.isfinite(state[f]) for f in features):
            continue  # e.g. the first snapshot of a history has no realised vol yet
        fitted = clone(prior).fit(snap)
        w_prior = np.maximum(fitted.total_variance(q.k, q.t), 1e-12)
        n = len(q)
        x = np.column_stack([q.k, np.log(q.t), *(np.full(n, state[f]) for f in features)])
        out.append(_Block(snap.ts, x, q.mid_iv**2 * q.t / w_prior - 1.0, q.weight, fitted))
    return out


class HybridSurface(LearnedSurface):
    """A first-principles prior times a learned correction, shrunk out of its domain.

    ``fit(snapshot)`` fits the model's prior to the snapshot (``prior_``), reads the state,
    measures its distance to the training states and sets the shrink factor ``s``
    (``shrink_``; module docstring); the surface is ``w_prior * (1 + s * c)``. The model is
    trained beforehand: ``HybridSurface.train(snapshots, prior="ssvi", **settings)``
    (:func:`train_hybrid`, needs PyTorch), then ``make_engine("hybrid", model=model)``.

    The prior and its settings belong to the trained model (the correction is a ratio to that
    prior), so they are training settings, not constructor settings: the study runner passes
    the settings that are not constructor parameters to ``train``.

    Parameters
    ----------
    model : HybridModel or None
        The trained correction and its prior; ``fit`` raises without one.
    shrink_distance : float
        ``h`` of the shrink factor ``s = exp(-d^2 / (2 h^2))``, standardised units (default 3);
        ``inf`` never shrinks, 0 gives the prior alone.
    weighting : {'vega', 'spread', 'open_interest', 'none'}
        Quote weights of the fit report and the state features' quotes (the prior is fitted
        with its own settings).
    """

    name = "hybrid"
    trainer = staticmethod(train_hybrid)
    model_type = HybridModel
    needs = f", which needs PyTorch: {INSTALL_HINT}"

    def __init__(
        self,
        model: HybridModel | None = None,
        shrink_distance: float = SHRINK_DISTANCE,
        weighting: str = "vega",
    ) -> None:
        self.model = model
        self.shrink_distance = shrink_distance
        self.weighting = weighting

    def _model(self) -> HybridModel:
        model: HybridModel = self._trained_model()
        if not self.shrink_distance >= 0:
            raise ValueError(
                "shrink_distance must be >= 0 (standardised units); "
                f"received {self.shrink_distance}"
            )
        return model

    def fit(self, snapshot: MarketSnapshot, y: None = None) -> Self:
        """Fit the prior to ``snapshot``, then the correction's state and shrink factor.

        ``result_.fit_ms`` includes the prior's calibration.
        """
        model = self._model()
        self.prior_ = model.make_prior().fit(snapshot)
        super().fit(snapshot)
        self.result_ = dataclasses.replace(
            self.result_, fit_ms=self.result_.fit_ms + self.prior_.result_.fit_ms
        )
        return self

    def _calibrate(
        self, quotes: FitQuotes
    ) -> tuple[dict[str, Any], bool, str | None, tuple[str, ...]]:
        model = self._model()
        state = state_features(quotes, model.features)
        distance = model.distance(state)
        h = float(self.shrink_distance)
        shrink = float(np.exp(-(distance**2) / (2 * h**2))) if h > 0 else 0.0
        self.state_, self.distance_, self.shrink_ = state, distance, shrink
        prior = self.prior_.result_
        notes = [f"prior: {w}" for w in prior.warnings]
        if shrink < 0.5:
            notes.append(
                f"state is {distance:.3g} standardised units from the training states: "
                f"correction shrunk to {shrink:.3g} of itself"
            )
        params = {
            "shrink": shrink,
            "distance": distance,
            "state": known_state(state),
            "prior": model.prior_name,
            "prior_params": prior.params,
        }
        return params, prior.converged, prior.fallback, tuple(notes)

    def correction(self, k: FloatArray, t: FloatArray) -> FloatArray:
        """The shrunk correction ``s * c(k, t, state)`` of the fitted snapshot."""
        model = self._model()
        out: FloatArray = self.shrink_ * model.correction(k, t, self.state_)
        return out

    def total_variance(self, k: FloatArray, t: FloatArray) -> FloatArray:
        k_arr, t_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
        prior = self.prior_.total_variance(k_arr, t_arr)
        if self.shrink_ == 0.0:
            return prior
        factor = np.maximum(1.0 + self.correction(k_arr, t_arr), MIN_FACTOR)
        out: FloatArray = prior * factor
        return out
