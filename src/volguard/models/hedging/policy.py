"""A deep-hedging policy: a small network that sets the hedge from the state, after Buehler
et al. (2019).

State and action
----------------
At hedge time ``t_i`` the network reads :data:`FEATURES`: the log-moneyness ``ln(K / F_i)``,
``sqrt(tau_i)``, the Black-76 delta at the implied vol, the engine's delta, the implied vol,
the trailing realized vol of the futures and its log return since the sale (regime features:
the level of activity and the trend), and the position held, and sets the new position.
Two output layers (``architecture``):

* ``band`` (default): a no-transaction band around the Black-76 delta, ``delta_i =
  clip(delta_{i-1}, d_bs - softplus(o_1), d_bs + softplus(o_2))``, the architecture of Imaki et
  al. (2021), which learns where trading does not pay for its cost; the bands start 0.01 wide
  (near Black-76 delta hedging);
* ``residual``: ``delta_i = d_bs + o_1`` (starts at the Black-76 delta).

Training (:func:`train_policy`, needs PyTorch: ``pip install 'volguard[ml]'``)
-----------------------------------------------------------------------------
The whole rebalancing sequence is unrolled and the terminal P&L of
:func:`volguard.models.hedging.risk.outcome` (bp of notional, costs included) differentiated
end to end. The loss is a convex risk measure (setting ``risk_measure``: CVaR with the
Rockafellar-Uryasev auxiliary variable set to its minimiser, the minibatch's loss quantile,
at each step; entropic; mean-variance) computed per regime on a
minibatch stratified by regime and summed with the regime-mix weights, fixed or dynamic
(``robust_step``: the group-robust weighting of Sagawa et al. 2020, which moves weight to the
regimes hedged worst). AdamW (decoupled weight decay), early stopping on held-out validation
paths (the best checkpoint is kept).
Deterministic: weights and minibatches come from generators seeded with ``seed``, one thread,
``torch.use_deterministic_algorithms``; process-wide torch settings are restored.

Inference runs in NumPy (:class:`~volguard.models.mlp.MLP` holds the float64 weights as
bytes), so a trained policy hedges, pickles and compares by value without PyTorch.

References
----------
.. [1] Buehler, H., Gonon, L., Teichmann, J. and Wood, B. (2019). Deep hedging. Quantitative
   Finance 19(8), 1271-1291. doi:10.1080/14697688.2019.1571683
.. [2] Imaki, S., Imajo, K., Ito, K., Minami, K. and Nakagawa, K. (2021). No-transaction band
   network: a neural network architecture for efficient deep hedging. arXiv:2103.01775
.. [3] Rockafellar, R. T. and Uryasev, S. (2000). Optimization of conditional value-at-risk.
   Journal of Risk 2(3), 21-41. doi:10.21314/JOR.2000.038
.. [4] Sagawa, S., Koh, P. W., Hashimoto, T. B. and Liang, P. (2020). Distributionally robust
   neural networks for group shifts. ICLR 2020. arXiv:1911.08731
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from volguard._typing import FloatArray
from volguard.models.hedging.paths import HedgePaths
from volguard.models.hedging.risk import BP, RiskMeasure, check_level, risk
from volguard.models.mlp import MLP, TorchMLP, TorchSession, import_torch

FEATURES: tuple[str, ...] = (
    "log_moneyness",
    "sqrt_tau",
    "delta_bs",
    "delta_engine",
    "iv",
    "realized_vol",
    "log_return",
    "position",
)
"""Network inputs in order; ``position`` (the hedge held) is last, set during the rollout."""
Architecture = Literal["band", "residual"]
ARCHITECTURES: tuple[str, ...] = ("band", "residual")
HIDDEN: tuple[int, ...] = (32, 32)
STEPS = 300
"""Gradient steps (one stratified minibatch each)."""
BATCH = 512
"""Paths per regime in a minibatch."""
LEARNING_RATE = 5e-3
WEIGHT_DECAY = 1e-4
CHECK_EVERY = 20
PATIENCE = 5
"""Early-stopping patience, in validation checks (one every ``CHECK_EVERY`` steps)."""
BAND_START = 0.01
"""Initial half-width of the ``band`` architecture (units of delta)."""


def static_features(paths: HedgePaths) -> FloatArray:
    """Every input of :data:`FEATURES` but ``position``, shape (n, m, 7)."""
    f = paths.forward[:, :-1]
    k = np.log(paths.strike[:, None] / f)
    sqrt_tau = np.broadcast_to(np.sqrt(paths.tau[None, :-1]), f.shape)
    ret = np.log(f / paths.forward[:, :1])
    cols = (k, sqrt_tau, paths.delta_bs, paths.delta_engine, paths.iv, paths.realized_vol, ret)
    return np.stack(cols, axis=-1)


def _softplus(x: FloatArray) -> FloatArray:
    out: FloatArray = np.logaddexp(0.0, x)
    return out


@dataclass(frozen=True)
class HedgePolicy:
    """A trained hedging policy (module docstring): the network and the facts of its training.

    Attributes
    ----------
    net : MLP
    architecture : {'band', 'residual'}
    steps : int
        Gradient steps of the kept weights (the best under early stopping).
    validation_risk : float or None
        Validation risk of the kept weights, bp (None without validation).
    settings : tuple of (name, value)
    """

    net: MLP
    architecture: Architecture
    steps: int
    validation_risk: float | None
    settings: tuple[tuple[str, Any], ...]

    def act(self, state: FloatArray, held: FloatArray, delta_bs: FloatArray) -> FloatArray:
        """New positions from the static state (shape (n, 7)), the positions held and the
        Black-76 delta (shape (n,))."""
        out = self.net.outputs(np.column_stack([state, held]))
        if self.architecture == "band":
            lo = delta_bs - _softplus(out[:, 0])
            hi = delta_bs + _softplus(out[:, 1])
            clipped: FloatArray = np.clip(held, lo, hi)
            return clipped
        residual: FloatArray = delta_bs + out[:, 0]
        return residual

    def positions(self, paths: HedgePaths) -> FloatArray:
        """Roll the policy along ``paths``: positions of shape (n, m)."""
        state = static_features(paths)
        out = np.empty(state.shape[:2])
        held = np.zeros(paths.n_paths)
        for i in range(paths.n_steps):
            held = self.act(state[:, i], held, state[:, i, 2])
            out[:, i] = held
        return out


class _Tensors:
    """The float32 tensors of a path set that the unrolled P&L needs (forward in units of
    ``F_0``, so float32 keeps its precision at any price level)."""

    def __init__(self, torch: Any, paths: HedgePaths) -> None:
        f0 = paths.forward[:, :1]
        f32 = torch.float32
        self.state = torch.tensor(static_features(paths), dtype=f32)
        self.forward = torch.tensor(paths.forward / f0, dtype=f32)
        self.settled = torch.tensor((paths.premium - paths.payoff) / f0[:, 0], dtype=f32)


class _TorchPolicy:
    """The PyTorch twin of a :class:`HedgePolicy`: its network and its action."""

    def __init__(
        self,
        torch: Any,
        sizes: tuple[int, ...],
        shift: FloatArray,
        scale: FloatArray,
        architecture: str,
        generator: Any,
    ) -> None:
        self.torch, self.architecture = torch, architecture
        self.mlp = TorchMLP(torch, sizes, shift, scale, generator)
        if architecture == "band":  # start at a narrow band around the Black-76 delta
            with torch.no_grad():
                self.mlp.params[-1].fill_(float(np.log(np.expm1(BAND_START))))

    def pnl(self, data: _Tensors, rows: Any, cost_rate: float) -> Any:
        """Terminal P&L (bp) of the policy on the paths ``rows`` of ``data``."""
        torch = self.torch
        state, f = data.state[rows], data.forward[rows]
        held = torch.zeros(state.shape[0])
        positions = []
        for i in range(state.shape[1]):
            out = self.mlp.outputs(torch.cat([state[:, i], held[:, None]], dim=1))
            d_bs = state[:, i, 2]
            if self.architecture == "band":
                lo = d_bs - torch.nn.functional.softplus(out[:, 0])
                hi = d_bs + torch.nn.functional.softplus(out[:, 1])
                held = torch.minimum(torch.maximum(held, lo), hi)
            else:
                held = d_bs + out[:, 0]
            positions.append(held)
        pos = torch.stack(positions, dim=1)
        trades = torch.diff(pos, dim=1, prepend=torch.zeros(pos.shape[0], 1))
        gains = (pos * torch.diff(f, dim=1)).sum(dim=1)
        cost = cost_rate * (trades.abs() * f[:, :-1]).sum(dim=1)
        return BP * (data.settled[rows] + gains - cost)


def _torch_risk(torch: Any, pnl: Any, measure: str, level: float) -> Any:
    if measure == "cvar":
        # Rockafellar-Uryasev: min over w of w + E(L - w)^+ / (1 - a); the minimiser is the
        # a-quantile of the loss, set in closed form (a learned w in bp crawls at Adam's step)
        w = torch.quantile(-pnl.detach(), level)
        return w + torch.relu(-pnl - w).mean() / (1.0 - level)
    if measure == "entropic":
        return (torch.logsumexp(-level * pnl, dim=0) - np.log(pnl.shape[0])) / level
    return -pnl.mean() + 0.5 * level * pnl.var(unbiased=False)


def _regime_groups(
    paths: HedgePaths, weights: Mapping[str, float] | None
) -> list[tuple[str, np.ndarray, float]]:
    names = sorted(set(paths.regime.tolist()))
    raw = {r: 1.0 for r in names} if weights is None else dict(weights)
    unknown = sorted(set(raw) - set(names))
    if unknown or any(not raw.get(r, 0.0) >= 0 for r in names):
        raise ValueError(
            f"regime_weights must map regimes of the training paths {names} to weights >= 0, "
            f"got {raw!r}"
        )
    total = sum(raw.get(r, 0.0) for r in names)
    if not total > 0:
        raise ValueError(f"regime_weights must give some training regime a weight > 0: {raw!r}")
    return [
        (r, np.flatnonzero(paths.regime == r), raw.get(r, 0.0) / total)
        for r in names
        if raw.get(r, 0.0) > 0
    ]


def train_policy(
    paths: HedgePaths,
    *,
    validation: HedgePaths | None = None,
    cost_rate: float = 5e-4,
    risk_measure: RiskMeasure = "cvar",
    risk_level: float = 0.95,
    regime_weights: Mapping[str, float] | None = None,
    robust_step: float = 0.0,
    architecture: Architecture = "band",
    hidden: Sequence[int] = HIDDEN,
    steps: int = STEPS,
    batch: int = BATCH,
    learning_rate: float = LEARNING_RATE,
    weight_decay: float = WEIGHT_DECAY,
    check_every: int = CHECK_EVERY,
    patience: int = PATIENCE,
    seed: int = 0,
) -> HedgePolicy:
    """Train a hedging policy on ``paths`` (needs PyTorch); the module docstring has the method.

    Parameters
    ----------
    paths : HedgePaths
        Training paths; ``regime`` groups them for the regime-mix loss.
    validation : HedgePaths, optional
        Held-out paths (another regime than the training ones, never the test regime) for
        early stopping: their risk, equally weighted across their regimes, is checked every
        ``check_every`` steps; the best weights are kept.
    cost_rate : float
        Proportional transaction cost (fraction of traded notional; 5e-4 = 5 bp).
    risk_measure : {'cvar', 'entropic', 'mean-variance'}
    risk_level : float
        CVaR level ``alpha`` in (0, 1), entropic ``lam`` (per bp) or mean-variance aversion.
    regime_weights : mapping of str to float, optional
        Weight of each training regime's risk in the loss (normalised; default equal): the
        fixed weights, or the starting weights of the dynamic ones.
    robust_step : float
        Dynamic regime weighting (group distributionally robust optimisation, Sagawa et al.
        2020): before each step the weights become ``q_r exp(robust_step rho_r / |rho_r^0|)``,
        normalised, with ``rho_r`` the regime's minibatch risk and ``rho_r^0`` its risk at the
        first step (at least 1 bp), so that weight moves to the regimes hedged worst relative
        to where they started. 0 (default): fixed weights.
    architecture : {'band', 'residual'}
    hidden : sequence of int
        Hidden layer widths (tanh).
    steps, batch, learning_rate, weight_decay : int, int, float, float
        AdamW steps, paths per regime per minibatch, step size, decoupled weight decay.
    check_every, patience : int
        Early stopping: steps between validation checks, checks without improvement.
    seed : int
        Seeds the initial weights and the minibatches.

    Returns
    -------
    HedgePolicy

    Raises
    ------
    ImportError
        If PyTorch is not installed.
    ValueError
        If a setting is out of range (the message names it).
    """
    torch = import_torch("training a hedging policy")
    check_level(risk_measure, risk_level)
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    if steps < 1 or batch < 1 or not hidden or min(hidden) < 1 or check_every < 1:
        raise ValueError(
            "steps, batch, check_every and hidden widths must be >= 1, got "
            f"steps={steps}, batch={batch}, check_every={check_every}, hidden={tuple(hidden)}"
        )
    if not cost_rate >= 0:
        raise ValueError(f"cost_rate must be >= 0, got {cost_rate!r}")
    if not robust_step >= 0:
        raise ValueError(f"robust_step must be >= 0, got {robust_step!r}")
    groups = _regime_groups(paths, regime_weights)
    q = np.array([w for _, _, w in groups])
    start: FloatArray | None = None
    x = static_features(paths).reshape(-1, len(FEATURES) - 1)
    shift = np.append(x.mean(axis=0), 0.5)
    scale = np.append(np.where(x.std(axis=0) > 1e-12, x.std(axis=0), 1.0), 0.5)
    n_out = 2 if architecture == "band" else 1
    sizes = (len(FEATURES), *hidden, n_out)
    rng = np.random.default_rng(seed)
    with TorchSession(torch):
        gen = torch.Generator().manual_seed(seed)
        policy = _TorchPolicy(torch, sizes, shift, scale, architecture, gen)
        data = _Tensors(torch, paths)
        held = None if validation is None else _Tensors(torch, validation)
        held_groups = [] if validation is None else _regime_groups(validation, None)
        opt = torch.optim.AdamW(policy.mlp.params, lr=learning_rate, weight_decay=weight_decay)
        best, best_step, best_risk, waited = policy.mlp.snapshot(), 0, np.inf, 0
        best_q = q.copy()
        for step in range(1, steps + 1):
            opt.zero_grad()
            risks_t = []
            for _, rows, _ in groups:
                pick = torch.as_tensor(rng.choice(rows, size=min(batch, rows.size), replace=False))
                pnl = policy.pnl(data, pick, cost_rate)
                risks_t.append(_torch_risk(torch, pnl, risk_measure, risk_level))
            now = np.array([float(r.detach()) for r in risks_t])
            if start is None:
                start = np.maximum(np.abs(now), 1.0)
            if robust_step > 0:
                q = q * np.exp(robust_step * now / start)
                q = q / q.sum()
            loss = sum((float(w) * r for w, r in zip(q, risks_t, strict=True)), torch.zeros(()))
            loss.backward()
            opt.step()
            if held is not None and (step % check_every == 0 or step == steps):
                with torch.no_grad():
                    risks = []
                    for _, rows, _ in held_groups:
                        pnl = policy.pnl(held, torch.as_tensor(rows), cost_rate).numpy()
                        risks.append(risk(pnl.astype(float), risk_measure, risk_level))
                value = float(np.mean(risks))
                if value < best_risk:
                    best, best_step, best_risk, waited = policy.mlp.snapshot(), step, value, 0
                    best_q = q.copy()
                else:
                    waited += 1
                    if waited >= patience:
                        break
        if held is None:
            best, best_step, best_q = policy.mlp.snapshot(), steps, q
        net = policy.mlp.value(best)
    settings = {
        "cost_rate": cost_rate,
        "risk_measure": risk_measure,
        "risk_level": risk_level,
        "regime_weights": tuple(sorted((r, w) for r, _, w in groups)),
        "robust_step": robust_step,
        "final_regime_weights": tuple(
            sorted((r, float(w)) for (r, _, _), w in zip(groups, best_q, strict=True))
        ),
        "hidden": tuple(hidden),
        "steps": steps,
        "batch": batch,
        "learning_rate": learning_rate,
        "weight_decay": weight_decay,
        "check_every": check_every,
        "patience": patience,
        "seed": seed,
    }
    return HedgePolicy(
        net, architecture, best_step, None if held is None else best_risk, tuple(settings.items())
    )
