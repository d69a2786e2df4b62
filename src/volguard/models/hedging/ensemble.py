"""An ensemble of hedging policies whose disagreement gates a fallback to the engine delta.

Members trained with different seeds agree where the training paths pinned the policy down and
drift apart elsewhere; their disagreement is an out-of-distribution signal (deep-ensemble
uncertainty, Lakshminarayanan et al. 2017). At each hedge time every member proposes a
position from the same state and the same position held; with ``m`` the members' mean and
``s`` their standard deviation (the disagreement, exposed for the guard), the ensemble holds
(``delta_engine`` stands for the ``fallback``, by default the engine's delta)

* ``switch``: ``m`` while ``s <= threshold``, else the engine delta;
* ``linear``: ``(1 - w) m + w delta_engine`` with ``w = clip((s - threshold) / width, 0, 1)``,
  a ramp from the threshold to ``threshold + width``.

The gating by ensemble disagreement with a blend toward the model delta follows the
uncertainty-aware deep-hedging preprint arXiv:2603.10137 (2026); the blend rules here are ours.

References
----------
.. [1] Lakshminarayanan, B., Pritzel, A. and Blundell, C. (2017). Simple and scalable predictive
   uncertainty estimation using deep ensembles. NeurIPS 30. arXiv:1612.01474
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from volguard._typing import FloatArray
from volguard.models.hedging.paths import HedgePaths
from volguard.models.hedging.policy import HedgePolicy, static_features

BlendRule = Literal["switch", "linear"]
BLEND_RULES: tuple[str, ...] = ("switch", "linear")
Fallback = Literal["engine", "black76"]
FALLBACKS: tuple[str, ...] = ("engine", "black76")


@dataclass(frozen=True)
class GatedRollout:
    """Positions of a gated ensemble and what drove them, each of shape (n, m)."""

    positions: FloatArray
    disagreement: FloatArray
    blend: FloatArray
    """Weight given to the engine delta (0: the ensemble mean, 1: the engine delta)."""


@dataclass(frozen=True)
class GatedEnsemble:
    """Policies averaged, with a fallback to the engine delta where they disagree.

    Parameters
    ----------
    members : sequence of HedgePolicy
        At least two trained policies (different seeds).
    threshold : float
        Disagreement (standard deviation of the members' positions, units of delta) above which
        the hedge moves toward the engine delta; ``inf`` never gates.
    rule : {'switch', 'linear'}
        Blend rule (module docstring).
    width : float or None
        Ramp width of the ``linear`` rule (default: ``threshold``).
    fallback : {'engine', 'black76'}
        The delta blended in: the engine's (default) or Black-76 at the implied vol.
    """

    members: tuple[HedgePolicy, ...]
    threshold: float
    rule: BlendRule = "linear"
    width: float | None = None
    fallback: Fallback = "engine"

    def __post_init__(self) -> None:
        if len(self.members) < 2:
            raise ValueError(f"members must hold at least 2 policies, got {len(self.members)}")
        if not self.threshold >= 0:
            raise ValueError(f"threshold must be >= 0, got {self.threshold!r}")
        if self.rule not in BLEND_RULES:
            raise ValueError(f"rule must be one of {BLEND_RULES}, got {self.rule!r}")
        if self.fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, got {self.fallback!r}")
        if self.width is not None and not self.width > 0:
            raise ValueError(f"width must be > 0 (or None), got {self.width!r}")

    def gate(self, disagreement: FloatArray) -> FloatArray:
        """Weight of the engine delta for each disagreement.

        Examples
        --------
        >>> from volguard.models.hedging.policy import HedgePolicy
        >>> from volguard.models.mlp import MLP
        >>> net = MLP((8, 1), bytes(72), (0.0,) * 8, (1.0,) * 8)
        >>> member = HedgePolicy(net, "residual", 0, None, ())
        >>> GatedEnsemble((member, member), threshold=0.1).gate(np.array([0.05, 0.15, 0.3]))
        array([0. , 0.5, 1. ])
        """
        s = np.asarray(disagreement, dtype=float)
        if self.rule == "switch":
            return (s > self.threshold).astype(float)
        if np.isinf(self.threshold):
            return np.zeros_like(s)
        width = self.width if self.width is not None else max(self.threshold, 1e-12)
        out: FloatArray = np.clip((s - self.threshold) / width, 0.0, 1.0)
        return out

    def step(
        self, state: FloatArray, held: FloatArray, delta_bs: FloatArray, fallback: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """One hedge decision for ``n`` positions: the static state (shape (n, 7), as
        :func:`~volguard.models.hedging.policy.static_features`), the positions held, the
        Black-76 delta and the fallback delta (shape (n,)).

        Returns
        -------
        position, disagreement, blend : ndarray, shape (n,)
        """
        proposals = np.stack([p.act(state, held, delta_bs) for p in self.members])
        s = proposals.std(axis=0)
        w = self.gate(s)
        position: FloatArray = (1 - w) * proposals.mean(axis=0) + w * fallback
        return position, s, w

    def rollout(self, paths: HedgePaths) -> GatedRollout:
        """Roll the gated ensemble along ``paths``."""
        state = static_features(paths)
        shape = state.shape[:2]
        pos, spread, blend = np.empty(shape), np.empty(shape), np.empty(shape)
        held = np.zeros(paths.n_paths)
        target = paths.delta_engine if self.fallback == "engine" else paths.delta_bs
        for i in range(paths.n_steps):
            held, spread[:, i], blend[:, i] = self.step(
                state[:, i], held, state[:, i, 2], target[:, i]
            )
            pos[:, i] = held
        return GatedRollout(pos, spread, blend)

    def positions(self, paths: HedgePaths) -> FloatArray:
        return self.rollout(paths).positions
