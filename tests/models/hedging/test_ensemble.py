"""The gated ensemble: the gate moves the hedge toward the engine delta when members disagree."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from tests.models.hedging._world import bs_paths
from volguard.models.hedging import FEATURES, GatedEnsemble, HedgePolicy
from volguard.models.mlp import MLP


def constant_policy(offset: float) -> HedgePolicy:
    """A residual policy with no hidden layer that holds Black-76 delta + ``offset``."""
    n = len(FEATURES)
    params = np.concatenate([np.zeros(n), [offset]]).astype("<f8").tobytes()
    net = MLP((n, 1), params, (0.0,) * n, (1.0,) * n)
    return HedgePolicy(net, "residual", 0, None, ())


def test_gate_blends_toward_engine_delta() -> None:
    p = bs_paths(20, 8, seed=5)
    engine = p.delta_bs + 0.05  # an engine that disagrees with Black-76
    paths = type(p)(p.forward, p.strike, p.tau, p.premium, p.iv, engine, p.realized_vol, p.regime)
    members = (constant_policy(0.2), constant_policy(-0.2))  # mean: Black-76, sd 0.2
    quiet = GatedEnsemble(members, threshold=0.5, rule="switch").rollout(paths)
    np.testing.assert_allclose(quiet.positions, p.delta_bs)
    np.testing.assert_allclose(quiet.disagreement, 0.2)
    assert not quiet.blend.any()
    loud = GatedEnsemble(members, threshold=0.1, rule="switch").rollout(paths)
    np.testing.assert_allclose(loud.positions, engine)
    half = GatedEnsemble(members, threshold=0.1, rule="linear", width=0.2).rollout(paths)
    np.testing.assert_allclose(half.blend, 0.5)
    np.testing.assert_allclose(half.positions, 0.5 * p.delta_bs + 0.5 * engine)


def test_gate_rules_and_settings() -> None:
    members = (constant_policy(0.0), constant_policy(0.1))
    g = GatedEnsemble(members, threshold=0.1, rule="linear")
    np.testing.assert_allclose(g.gate(np.array([0.05, 0.1, 0.15, 0.2, 0.5])), [0, 0, 0.5, 1, 1])
    assert not GatedEnsemble(members, np.inf).gate(np.array([10.0])).any()
    assert pickle.loads(pickle.dumps(g)) == g
    with pytest.raises(ValueError, match="members must hold at least 2"):
        GatedEnsemble(members[:1], 0.1)
    with pytest.raises(ValueError, match="threshold must be >= 0"):
        GatedEnsemble(members, -1.0)
    with pytest.raises(ValueError, match="rule must be one of"):
        GatedEnsemble(members, 0.1, rule="soft")  # type: ignore[arg-type]


def test_gate_can_fall_back_to_black76() -> None:
    p = bs_paths(10, 6, seed=6)
    engine = p.delta_bs + 0.05
    paths = type(p)(p.forward, p.strike, p.tau, p.premium, p.iv, engine, p.realized_vol, p.regime)
    members = (constant_policy(0.3), constant_policy(0.1))
    run = GatedEnsemble(members, threshold=0.0, rule="switch", fallback="black76").rollout(paths)
    np.testing.assert_allclose(run.positions, p.delta_bs)
    with pytest.raises(ValueError, match="fallback must be one of"):
        GatedEnsemble(members, 0.1, fallback="heston")  # type: ignore[arg-type]
