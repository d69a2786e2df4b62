"""The ``hybrid`` engine: a first-principles prior times a learned correction, shrunk to the
prior out of its training domain."""

from __future__ import annotations

import pickle
import sys
from dataclasses import replace

import numpy as np
import pytest
from sklearn.base import clone

from tests.models._learned import calm_btc, rmse_vol_pts
from volguard.market import MarketSnapshot
from volguard.models import ENGINES, make_engine
from volguard.models.hybrid import HybridModel, train_hybrid
from volguard.models.learned.gbm import GBMSurface
from volguard.models.parametric.ssvi import ESSVI
from volguard.sim import preset, simulate

TINY = {"hidden": (16, 16), "epochs": 150, "learning_rate": 0.01}
"""Test-sized training: two hidden layers of 16, 150 full-batch steps (about two seconds)."""
K = np.linspace(-1.0, 1.0, 41)[:, None]
T = np.array([0.01, 0.05, 0.1, 0.25, 0.5])[None, :]


@pytest.fixture(scope="module")
def calm() -> list[MarketSnapshot]:
    """Eight calm BTC snapshots, 12 hours apart (simulated, seed 1)."""
    return list(calm_btc(4))


@pytest.fixture(scope="module")
def crash() -> MarketSnapshot:
    """A simulated crash snapshot: skew -0.43, term slope -0.04 (calm: -0.2, +0.04)."""
    scenario = replace(preset("crash-2026-02"), script=(("crash", 5.0),))
    return list(simulate(scenario, days=2, freq="24h", seed=1).snapshots("BTC"))[-1]


@pytest.fixture(scope="module")
def model(calm: list[MarketSnapshot]) -> HybridModel:
    pytest.importorskip("torch")
    return train_hybrid(calm[:5], **TINY)  # type: ignore[arg-type]


def test_no_worse_than_its_prior_in_domain(calm: list[MarketSnapshot], model: HybridModel) -> None:
    # trained on five calm snapshots, asked for the next three (12 to 36 hours later): hybrid
    # 3.6 to 4.6 vol points, ssvi fitted to each snapshot 5.6 to 6.7; the bound allows the
    # hybrid 0.25 vol points worse than its prior, and it must not add static arbitrage
    for later in calm[5:]:
        engine = make_engine("hybrid", model=model).fit(later)
        assert engine.shrink_ > 0.5
        hybrid, prior = rmse_vol_pts(engine, later), rmse_vol_pts(engine.prior_, later)
        assert hybrid <= prior + 0.25
        assert engine.result_.arbitrage.total <= engine.prior_.result_.arbitrage.total


def test_returns_to_its_prior_out_of_domain(crash: MarketSnapshot, model: HybridModel) -> None:
    engine = make_engine("hybrid", model=model).fit(crash)
    assert engine.distance_ > 10 and engine.shrink_ < 1e-3
    assert engine.result_.params["shrink"] == engine.shrink_
    gap = np.abs(engine.implied_vol(K, T) - engine.prior_.implied_vol(K, T))
    assert gap.max() < 1e-3  # a tenth of a vol point
    assert any("correction shrunk" in w for w in engine.result_.warnings)


def test_shrink_distance_zero_is_the_prior(calm: list[MarketSnapshot], model: HybridModel) -> None:
    engine = make_engine("hybrid", model=model, shrink_distance=0.0).fit(calm[5])
    np.testing.assert_array_equal(engine.total_variance(K, T), engine.prior_.total_variance(K, T))
    never = make_engine("hybrid", model=model, shrink_distance=np.inf).fit(calm[5])
    assert never.shrink_ == 1.0
    with pytest.raises(ValueError, match="shrink_distance must be >= 0"):
        make_engine("hybrid", model=model, shrink_distance=-1.0).fit(calm[5])


def test_training_is_seeded_and_deterministic(
    calm: list[MarketSnapshot], model: HybridModel
) -> None:
    again = train_hybrid(calm[:5], **TINY)  # type: ignore[arg-type]
    assert again == model
    a = make_engine("hybrid", model=model).fit(calm[6])
    b = make_engine("hybrid", model=again).fit(calm[6])
    np.testing.assert_array_equal(a.total_variance(K, T), b.total_variance(K, T))
    assert a.result_.params == b.result_.params


def test_other_priors_and_settings(calm: list[MarketSnapshot]) -> None:
    pytest.importorskip("torch")
    essvi = train_hybrid(calm[:3], prior=ESSVI(weighting="spread"), epochs=5)
    assert essvi.prior_name == "essvi" and essvi.prior_settings == (("weighting", "spread"),)
    engine = make_engine("hybrid", model=essvi).fit(calm[5])
    assert engine.prior_.name == "essvi" and engine.prior_.get_params()["weighting"] == "spread"
    with pytest.raises(ValueError, match="must be a first-principles engine"):
        train_hybrid(calm[:2], prior=GBMSurface())


def test_clone_and_pickle_keep_the_trained_model(
    calm: list[MarketSnapshot], model: HybridModel
) -> None:
    engine = make_engine("hybrid", model=model, weighting="spread")
    fresh = clone(engine)
    assert fresh.model == model and fresh.get_params() == engine.get_params()
    assert pickle.loads(pickle.dumps(model)) == model
    engine.fit(calm[5])
    again = pickle.loads(pickle.dumps(engine))
    np.testing.assert_array_equal(again.implied_vol(K, T), engine.implied_vol(K, T))


def test_predicts_without_torch(
    calm: list[MarketSnapshot], model: HybridModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # any import of torch now fails
    engine = make_engine("hybrid", model=pickle.loads(pickle.dumps(model))).fit(calm[5])
    assert np.all(np.isfinite(engine.implied_vol(K, T)))
    with pytest.raises(ImportError, match=r"pip install 'volguard\[ml\]'"):
        train_hybrid(calm[:2])


def test_needs_a_trained_model(calm: list[MarketSnapshot]) -> None:
    with pytest.raises(ValueError, match="hybrid needs a trained model"):
        make_engine("hybrid").fit(calm[0])
    with pytest.raises(TypeError, match="HybridModel"):
        make_engine("hybrid", model="weights").fit(calm[0])
    assert getattr(ENGINES["hybrid"], "needs_training", False)
    assert set(make_engine("hybrid").get_params()) == {"model", "shrink_distance", "weighting"}
