"""``nn``: a small neural surface trained across snapshots and conditioned on one.

A multilayer perceptron reads the same inputs as ``gbm`` (``k``, ``t`` and the snapshot's state
features, :func:`volguard.models.learned.features.state_features`) and answers the same
normalised log total variance ``y = ln(sigma^2 t / sigma_atm30^2)`` (the module docstring of
:mod:`volguard.models.learned.gbm` says why this target). The network itself answers
``z = y - ln t = ln(sigma^2 / sigma_atm30^2)``, the log of the squared vol in units of the 30-day
ATM vol, from the inputs ``(k, ln t, state)``: the same target and the same squared loss (``ln t``
is a known offset per row), but an untrained network (output near 0) is already the flat
surface at the 30-day ATM vol, and ``ln t`` spreads the short expiries where smiles change most.

Training (:func:`train_nn`, needs PyTorch: ``pip install 'volguard[ml]'``)
--------------------------------------------------------------------------
Weighted squared loss on ``y`` (quote weight x age decay ``0.5 ** (age_days / half_life_days)``)
plus the soft no-arbitrage penalties of Deep Smoothing (Ackerer, Tagasovska and Vatter 2020)
on a synthetic mesh, with the derivatives by automatic differentiation. The mesh: ``MESH_POINTS``
points per training snapshot (at most ``MESH_POOL`` in all), log-moneyness uniform over the
trained range with one point in 8 on its ends, time log-uniform over the trained range, the
snapshot's state; ``MESH_BATCH`` of them are drawn afresh at each step. The penalties:

- calendar: ``dw/dt >= 0``, as ``relu(-d ln w / d ln t) = relu(-(1 + dz/d ln t))``;
- butterfly: Durrleman's ``g(k) >= 0`` from ``w``, ``w_k = w z_k``, ``w_kk = w (z_kk + z_k^2)``,
  as ``relu(-g)``;
- large moneyness: ``|w_kk| / w`` at the two mesh edges in ``k`` (the wings become linear,
  which the engine continues beyond the trained range).

AdamW (decoupled weight decay), full batch, early stopping on ``validation`` snapshots when
given (the best checkpoint kept). Deterministic: the initial weights and the mesh draws come
from a local ``torch.Generator``, the mesh from a NumPy generator, both seeded with ``seed``;
one thread; ``torch.use_deterministic_algorithms(True)``; float32 (half the time of float64;
the weights are kept as float64 for the NumPy inference). Process-wide torch settings are
restored afterwards.

Inference without PyTorch
-------------------------
The trained model (:class:`NNSurfaceModel`) keeps the weights as float64 bytes with the
architecture; the engine runs the forward pass in NumPy, so a fitted engine or a pickled model
works where PyTorch is not installed.

Out of the training domain
--------------------------
Beyond the trained ``k`` range total variance continues linearly with the tangent slope at the
edge, pointing outward, at most Lee's bound 2, non-decreasing in size with ``t`` (as ``gbm``);
before the shortest and after the longest trained ``t`` the implied vol of the nearest trained
``t`` is held; a state feature outside its trained range is predicted at the nearest trained
value and named in the fit's warnings.

References
----------
Ackerer, D., Tagasovska, N. and Vatter, T. (2020), Deep Smoothing of the Implied Volatility
Surface, NeurIPS 33, arXiv:1906.05065.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from volguard._typing import BoolArray, FloatArray
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import MIN_VARIANCE
from volguard.models.learned.base import LearnedSurface
from volguard.models.learned.features import DEFAULT_FEATURES, known_state, state_features
from volguard.models.learned.gbm import NORMALISER, TrainingRows, outward_wings, training_rows
from volguard.models.mlp import INSTALL_HINT, MLP, TorchMLP, TorchSession, import_torch
from volguard.models.quotes import FitQuotes, fit_quotes

HIDDEN: tuple[int, ...] = (32, 32, 32)
"""Hidden layer widths (tanh activations, linear output)."""
EPOCHS = 400
LEARNING_RATE = 0.01
WEIGHT_DECAY = 1e-4
CALENDAR_PENALTY = 10.0
BUTTERFLY_PENALTY = 10.0
WING_PENALTY = 0.1
PATIENCE = 10
"""Early-stopping patience, in validation checks (one every ``CHECK_EVERY`` epochs)."""
CHECK_EVERY = 10
MESH_POINTS = 256
"""Synthetic mesh points per training snapshot (at most ``MESH_POOL`` in all)."""
MESH_POOL = 8192
MESH_BATCH = 1024
"""Mesh points drawn (with replacement) from the pool at each training step."""
EDGE_SHARE = 8
TYPICAL: dict[str, float] = {
    "atm_vol_30d": 0.5,
    "atm_skew_30d": 0.5,
    "term_slope": 0.1,
    "half_spread_vol": 0.01,
    "put_share": 0.5,
    "basis_annual": 0.1,
    "realized_vol_7d": 0.5,
}
"""Typical size of each state feature (decimal vol, vol per log-moneyness, vol, vol, share,
per year, decimal vol)."""
INPUT_FLOOR = 0.25
"""The network's state inputs are divided by at least this share of their typical size."""


def input_scaling(x: FloatArray, features: Sequence[str]) -> tuple[FloatArray, FloatArray]:
    """Shift and scale of the network inputs ``(k, ln t, *features)``: mean and standard
    deviation, a state feature's scale at least ``INPUT_FLOOR`` of its typical size.

    Without the floor, a few training snapshots of one regime (states a few hundredths apart)
    would become unit-sized inputs, and the network would read the snapshot's identity into
    them: trained on 5 calm snapshots, the next one was 15 to 21 vol points off instead of 3 to 4.
    """
    shift = x.mean(axis=0)
    floor = np.array([1e-12, 1e-12, *(INPUT_FLOOR * TYPICAL[f] for f in features)])
    scale = np.maximum(x.std(axis=0), floor)
    scale = np.where(scale > 1e-12, scale, 1.0)
    return shift, scale


# ------------------------------------------------------------------------------ the network
def derivatives(torch: Any, net: Callable[[Any], Any], x: Any) -> tuple[Any, Any, Any, Any]:
    """Output ``z`` and ``dz/dx0``, ``dz/dx1``, ``d2z/dx0^2`` of ``net`` at the rows of ``x``
    (columns 0 and 1 are ``k`` and ``ln t``), by automatic differentiation (graph kept)."""
    x = x.clone().requires_grad_(True)
    z = net(x)
    (grad,) = torch.autograd.grad(z.sum(), x, create_graph=True)
    (grad2,) = torch.autograd.grad(grad[:, 0].sum(), x, create_graph=True)
    return z, grad[:, 0], grad[:, 1], grad2[:, 0]


def durrleman(w: Any, wk: Any, wkk: Any, k: Any) -> Any:
    """Durrleman's ``g(k)`` (as :func:`volguard.arbitrage.static.durrleman_g`, on tensors)."""
    return (1.0 - k * wk / (2.0 * w)) ** 2 - wk**2 / 4.0 * (1.0 / w + 0.25) + wkk / 2.0


def train_loop(
    torch: Any,
    net: TorchMLP,
    loss: Callable[[], Any],
    validation: Callable[[], float] | None,
    *,
    epochs: int,
    learning_rate: float,
    weight_decay: float,
    patience: int,
) -> tuple[list[FloatArray], int]:
    """AdamW on ``loss`` for ``epochs`` full-batch steps; with ``validation``, every
    ``CHECK_EVERY`` steps the validation loss is measured and training stops after ``patience``
    checks without improvement. Returns the best (or last) weights and the steps they took."""
    opt = torch.optim.AdamW(net.params, lr=learning_rate, weight_decay=weight_decay)
    best, best_step, best_val, waited = net.snapshot(), 0, np.inf, 0
    for step in range(1, epochs + 1):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
        if validation is not None and step % CHECK_EVERY == 0:
            val = validation()
            if val < best_val:
                best, best_step, best_val, waited = net.snapshot(), step, val, 0
            else:
                waited += 1
                if waited >= patience:
                    break
    if validation is None:
        return net.snapshot(), epochs
    return best, best_step


def penalty_mesh(
    k_range: tuple[float, float], t_range: tuple[float, float], n: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """``n`` synthetic ``(k, t)`` points: ``k`` uniform over ``k_range``, ``t`` log-uniform over
    ``t_range``; one in ``EDGE_SHARE`` sits on an end of ``k_range`` (the mask, for the
    large-moneyness penalty)."""
    k = rng.uniform(*k_range, n)
    t = np.exp(rng.uniform(np.log(t_range[0]), np.log(t_range[1]), n))
    edge = np.arange(n) % EDGE_SHARE == 0
    k[edge] = np.where(np.arange(edge.sum()) % 2 == 0, k_range[0], k_range[1])
    return k, t, edge


# ------------------------------------------------------------------------------ the model
@dataclass(frozen=True)
class NNSurfaceModel:
    """A trained neural surface: the network and the facts of its training.

    Immutable, picklable and compared by value (the weights are bytes), so ``clone`` and
    ``get_params`` of an engine holding it behave as for any setting.

    Attributes
    ----------
    mlp : MLP
        Inputs ``(k, ln t, *features)``; output ``z = ln(sigma^2 / sigma_atm30^2)``.
    features : tuple of str
        State features used, in input order after ``k``, ``ln t``.
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
    epochs : int
        Training steps of the kept weights (the best under early stopping).
    settings : tuple of (name, value)
        Training settings.
    """

    mlp: MLP
    features: tuple[str, ...]
    rows: int
    snapshots: int
    first_ts: pd.Timestamp
    last_ts: pd.Timestamp
    half_life_days: float | None
    k_range: tuple[float, float]
    t_range: tuple[float, float]
    state_ranges: tuple[tuple[str, float, float], ...]
    epochs: int
    settings: tuple[tuple[str, Any], ...]

    def clip_state(self, state: Mapping[str, float]) -> dict[str, float]:
        """``state`` with each feature moved to the nearest value of its trained range."""
        out = dict(state)
        for name, lo, hi in self.state_ranges:
            out[name] = float(np.clip(state[name], lo, hi))
        return out

    def outside(self, state: Mapping[str, float]) -> list[str]:
        """The state features of ``state`` outside their trained range, as readable notes."""
        return [
            f"state {name}={state[name]:.4g} is outside the trained range [{lo:.4g}, {hi:.4g}]"
            for name, lo, hi in self.state_ranges
            if not lo <= state[name] <= hi
        ]

    def predict(self, k: FloatArray, t: FloatArray, state: Mapping[str, float]) -> FloatArray:
        """Total implied variance ``sigma^2 t`` at ``k``, ``t`` (broadcast) for ``state``.

        The raw network, in NumPy: no extrapolation rule, floored at ``MIN_VARIANCE``;
        ``state`` maps every name of ``features`` and ``atm_vol_30d`` to its value.
        """
        k_arr, t_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
        n = k_arr.size
        cols = [
            k_arr.ravel(),
            np.log(t_arr.ravel()),
            *(np.full(n, state[f]) for f in self.features),
        ]
        z = self.mlp(np.column_stack(cols))
        w = np.exp(z) * t_arr.ravel() * state[NORMALISER] ** 2
        out: FloatArray = np.maximum(w, MIN_VARIANCE).reshape(k_arr.shape)
        return out


def _normaliser(
    snapshots: list[MarketSnapshot], weighting: str, features: Sequence[str], states: FloatArray
) -> FloatArray:
    """The 30-day ATM vol of each training snapshot with a fit quote (from the state columns,
    else recomputed)."""
    if NORMALISER in features:
        out: FloatArray = states[:, list(features).index(NORMALISER)]
        return out
    quotes = (fit_quotes(s, weighting) for s in snapshots)
    return np.array([state_features(q)[NORMALISER] for q in quotes if len(q)])


def _inputs(rows: TrainingRows) -> FloatArray:
    x = rows.inputs.copy()
    x[:, 1] = np.log(x[:, 1])
    return x


def train_nn(
    snapshots: Iterable[MarketSnapshot],
    *,
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
    patience: int = PATIENCE,
) -> NNSurfaceModel:
    """Train a neural surface on the fit quotes of ``snapshots`` (needs PyTorch).

    Parameters
    ----------
    snapshots : iterable of MarketSnapshot
        Training snapshots.
    half_life_days : float or None
        Sample weights times ``0.5 ** (age / half_life)``, age in days before the newest
        training snapshot; None: equal weights.
    features : sequence of str
        State features fed to the network (names of :data:`FEATURES`).
    weighting : {'none', 'vega', 'spread', 'open_interest'}
        Quote weights within a snapshot (default ``none``, as ``gbm``: the loss is relative).
    validation : iterable of MarketSnapshot, optional
        Held-out snapshots for early stopping (weighted squared loss on ``y``, checked every
        10 steps, ``patience`` checks); the best weights are kept.
    seed : int
        Seeds the weight initialisation (a local ``torch.Generator``).
    hidden : sequence of int
        Hidden layer widths (default 3 x 32, tanh).
    epochs, learning_rate, weight_decay : int, float, float
        AdamW, full batch: 400 steps, 0.01, 1e-4.
    calendar_penalty, butterfly_penalty, wing_penalty : float
        Weights of the soft no-arbitrage penalties on the mesh (module docstring): 10, 10, 0.1.
    patience : int
        Early-stopping patience in checks of 10 steps.

    Returns
    -------
    NNSurfaceModel

    Raises
    ------
    ImportError
        If PyTorch is not installed (``pip install 'volguard[ml]'``).
    ValueError
        If no training snapshot has a fit quote, a feature is unknown or a setting is invalid.
    """
    torch = import_torch("training a neural surface")
    if epochs < 1 or not hidden or min(hidden) < 1:
        raise ValueError(f"epochs and hidden widths must be >= 1; received {epochs}, {hidden}")
    snaps = list(snapshots)
    rows = training_rows(
        snaps, features=features, half_life_days=half_life_days, weighting=weighting
    )
    x = _inputs(rows)
    n_snap = len(rows.ts)
    first_of = np.searchsorted(rows.snapshot, np.arange(n_snap))
    states = rows.inputs[first_of, 2:]
    z_target = rows.target - x[:, 1]  # z = y - ln t
    weight = rows.weight / rows.weight.mean()
    k_range = (float(rows.inputs[:, 0].min()), float(rows.inputs[:, 0].max()))
    t_range = (float(rows.inputs[:, 1].min()), float(rows.inputs[:, 1].max()))
    rng = np.random.default_rng(seed)
    per = max(1, min(MESH_POINTS, MESH_POOL // n_snap))
    mk, mt, edge = penalty_mesh(k_range, t_range, per * n_snap, rng)
    owner = np.repeat(np.arange(n_snap), per)
    mesh = np.column_stack([mk, np.log(mt), states[owner]])
    mesh_atm2 = _normaliser(snaps, weighting, features, states)[owner] ** 2
    shift, scale = input_scaling(x, features)
    sizes = (x.shape[1], *hidden, 1)
    with TorchSession(torch):
        gen = torch.Generator().manual_seed(seed)
        net = TorchMLP(torch, sizes, shift, scale, gen)
        f32 = torch.float32
        xt, zt, wt = (torch.tensor(a, dtype=f32) for a in (x, z_target, weight))
        pool = torch.tensor(mesh, dtype=f32)
        pool_atm2 = torch.tensor(mesh_atm2, dtype=f32)
        pool_edge = torch.tensor(edge)

        def loss() -> Any:
            data = (wt * (net(xt) - zt) ** 2).mean()
            pick = torch.randint(len(pool), (MESH_BATCH,), generator=gen)
            m_x, m_edge = pool[pick], pool_edge[pick]
            z, zk, zl, zkk = derivatives(torch, net, m_x)
            w = pool_atm2[pick] * torch.exp(m_x[:, 1] + z)
            wk, wkk = w * zk, w * (zkk + zk**2)
            calendar = torch.relu(-(1.0 + zl)).mean()
            butterfly = torch.relu(-durrleman(w, wk, wkk, m_x[:, 0])).mean()
            wing = (torch.abs(wkk / w) * m_edge).sum() / m_edge.sum().clamp(min=1)
            return (
                data
                + calendar_penalty * calendar
                + butterfly_penalty * butterfly
                + wing_penalty * wing
            )

        check: Callable[[], float] | None = None
        if validation is not None:
            held = training_rows(validation, features=features, weighting=weighting)
            hx = _inputs(held)
            hz = torch.tensor(held.target - hx[:, 1], dtype=f32)
            hw = torch.tensor(held.weight / held.weight.mean(), dtype=f32)
            hxt = torch.tensor(hx, dtype=f32)

            def check() -> float:
                with torch.no_grad():
                    return float((hw * (net(hxt) - hz) ** 2).mean())

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
    settings = {
        "hidden": tuple(hidden),
        "epochs": epochs,
        "learning_rate": learning_rate,
        "weight_decay": weight_decay,
        "calendar_penalty": calendar_penalty,
        "butterfly_penalty": butterfly_penalty,
        "wing_penalty": wing_penalty,
        "patience": patience,
        "weighting": weighting,
        "seed": seed,
    }
    return NNSurfaceModel(
        mlp=mlp,
        features=tuple(features),
        rows=int(rows.target.size),
        snapshots=n_snap,
        first_ts=rows.ts.min(),
        last_ts=rows.ts.max(),
        half_life_days=half_life_days,
        k_range=k_range,
        t_range=t_range,
        state_ranges=tuple(
            (name, float(states[:, j].min()), float(states[:, j].max()))
            for j, name in enumerate(features)
        ),
        epochs=steps,
        settings=tuple(settings.items()),
    )


WING_TIMES = 48
"""Geometric times over the trained range at which the wing slopes are set (plus expiries)."""
SLOPE_STEP = 1e-4


def wing_slopes(
    w: Callable[[FloatArray, FloatArray], FloatArray],
    k_range: tuple[float, float],
    grid_t: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Tangent slopes ``dw/dk`` of ``w`` at the two ends of ``k_range`` on ``grid_t``, made safe
    by :func:`~volguard.models.learned.gbm.outward_wings`."""
    slopes = []
    for edge in k_range:
        up = w(np.full(grid_t.size, edge + SLOPE_STEP), grid_t)
        dn = w(np.full(grid_t.size, edge - SLOPE_STEP), grid_t)
        slopes.append((up - dn) / (2 * SLOPE_STEP))
    return outward_wings(slopes[0], slopes[1])


class NNSurface(LearnedSurface):
    """A trained neural surface, conditioned on the fitted snapshot's state.

    ``fit(snapshot)`` computes the snapshot's state features and evaluates the trained network
    for that state (see the module docstring: target, penalties, out-of-domain behaviour). The
    model is trained beforehand, across snapshots: ``NNSurface.train(snapshots, **settings)``
    (:func:`train_nn`, needs PyTorch), then ``make_engine("nn", model=model)``; fitting and
    pricing run in NumPy.

    Parameters
    ----------
    model : NNSurfaceModel or None
        The trained model; ``fit`` raises without one.
    weighting : {'vega', 'spread', 'open_interest', 'none'}
        Quote weights of the fit report (the state features do not use them).
    """

    name = "nn"
    trainer = staticmethod(train_nn)
    model_type = NNSurfaceModel
    needs = f", which needs PyTorch: {INSTALL_HINT}"

    def __init__(self, model: NNSurfaceModel | None = None, weighting: str = "vega") -> None:
        self.model = model
        self.weighting = weighting

    def _calibrate(
        self, quotes: FitQuotes
    ) -> tuple[dict[str, Any], bool, str | None, tuple[str, ...]]:
        model = self._trained_model()
        state = state_features(quotes, model.features)
        self.state_ = state
        self.inputs_ = model.clip_state(state)
        t_lo, t_hi = model.t_range
        own = np.unique(quotes.t)
        self.grid_t_ = np.unique(
            np.concatenate([np.geomspace(t_lo, t_hi, WING_TIMES), own[(own > t_lo) & (own < t_hi)]])
        )
        self.wing_slope_ = wing_slopes(
            lambda k, t: model.predict(k, t, self.inputs_), model.k_range, self.grid_t_
        )
        return known_state(state), True, None, tuple(model.outside(state))

    def total_variance(self, k: FloatArray, t: FloatArray) -> FloatArray:
        model = self.model
        assert isinstance(model, NNSurfaceModel)
        k_arr, t_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
        kc = np.clip(k_arr, *model.k_range)
        tc = np.clip(t_arr, self.grid_t_[0], self.grid_t_[-1])
        w = model.predict(kc, tc, self.inputs_)
        left = np.interp(tc, self.grid_t_, self.wing_slope_[0])
        right = np.interp(tc, self.grid_t_, self.wing_slope_[1])
        w = w + np.minimum(k_arr - kc, 0.0) * left + np.maximum(k_arr - kc, 0.0) * right
        out: FloatArray = w * t_arr / tc  # implied vol held outside the trained t range
        return out
