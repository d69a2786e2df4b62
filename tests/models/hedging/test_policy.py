"""The deep-hedging policy: a tiny one trains in seconds, beats no hedge, and is deterministic."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from tests.models.hedging._world import bs_paths
from volguard.models.hedging import NoHedge, cvar, outcome, train_policy

pytest.importorskip("torch")

FIELDS = ("forward", "strike", "tau", "premium", "iv", "delta_engine", "realized_vol", "regime")
TINY = {"hidden": (8,), "steps": 40, "batch": 256, "learning_rate": 1e-2, "cost_rate": 2e-3}


@pytest.fixture(scope="module")
def world() -> tuple:
    return bs_paths(600, 12, seed=10), bs_paths(600, 12, seed=11)


@pytest.mark.parametrize("architecture", ["band", "residual"])
def test_tiny_policy_beats_no_hedge(world: tuple, architecture: str) -> None:
    train, test = world
    policy = train_policy(train, architecture=architecture, seed=0, **TINY)
    hedged = outcome(test, policy.positions(test), TINY["cost_rate"]).pnl
    naked = outcome(test, NoHedge().positions(test), TINY["cost_rate"]).pnl
    assert cvar(hedged) < 0.5 * cvar(naked)
    assert hedged.std() < 0.5 * naked.std()


def test_training_lowers_the_objective_with_costs(world: tuple) -> None:
    # with a 20 bp cost the band learns to trade less than its 0.01-wide start
    train, test = world
    start = train_policy(train, seed=0, **{**TINY, "steps": 1, "learning_rate": 1e-9})
    trained = train_policy(train, seed=0, **TINY)
    risk = [cvar(outcome(test, p.positions(test), TINY["cost_rate"]).pnl) for p in (start, trained)]
    turn = [outcome(test, p.positions(test), 0.0).turnover.mean() for p in (start, trained)]
    assert risk[1] < risk[0]
    assert turn[1] < turn[0]


def test_seeded_training_is_deterministic(world: tuple) -> None:
    train, test = world
    val = bs_paths(200, 12, seed=12)
    a = train_policy(train, validation=val, check_every=10, seed=3, **TINY)
    b = train_policy(train, validation=val, check_every=10, seed=3, **TINY)
    c = train_policy(train, validation=val, check_every=10, seed=4, **TINY)
    assert a == b
    assert a.net.params != c.net.params
    assert np.isfinite(a.validation_risk) and 0 <= a.steps <= TINY["steps"]
    assert pickle.loads(pickle.dumps(a)) == a
    np.testing.assert_array_equal(a.positions(test), b.positions(test))


def test_dynamic_regime_weights_move_to_the_worse_hedged_regime() -> None:
    lo, hi = bs_paths(300, 12, vol=0.3, seed=13), bs_paths(300, 12, vol=0.9, seed=14)
    lo = type(lo)(*(getattr(lo, f) for f in FIELDS[:-1]), np.full(300, "lo", dtype=object))
    hi = type(hi)(*(getattr(hi, f) for f in FIELDS[:-1]), np.full(300, "hi", dtype=object))
    both = type(lo).concat([lo, hi])
    fixed = dict(train_policy(both, seed=0, **TINY).settings)
    moving = dict(train_policy(both, seed=0, robust_step=0.5, **TINY).settings)
    assert fixed["final_regime_weights"] == (("hi", 0.5), ("lo", 0.5))
    weights = dict(moving["final_regime_weights"])
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights != {"hi": 0.5, "lo": 0.5}
    with pytest.raises(ValueError, match="robust_step must be >= 0"):
        train_policy(both, robust_step=-1.0)


def test_settings_are_checked(world: tuple) -> None:
    train, _ = world
    with pytest.raises(ValueError, match="risk level of 'cvar' must be in"):
        train_policy(train, risk_level=1.5)
    with pytest.raises(ValueError, match="architecture must be one of"):
        train_policy(train, architecture="lstm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="regime_weights must map"):
        train_policy(train, regime_weights={"crash": 1.0})
