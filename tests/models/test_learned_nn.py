"""The ``nn`` learned engine: a small MLP surface trained with soft no-arbitrage penalties."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
from sklearn.base import clone

from tests.models._learned import calm_btc, rmse_vol_pts
from volguard.market import MarketSnapshot
from volguard.models import ENGINES, make_engine
from volguard.models.learned.nn import NNSurfaceModel, train_nn
from volguard.models.mlp import MLP

TINY = {"hidden": (16, 16), "epochs": 200, "learning_rate": 0.02}
"""Test-sized training: two hidden layers of 16, 200 full-batch steps (about a second)."""


@pytest.fixture(scope="module")
def calm() -> list[MarketSnapshot]:
    """Six calm BTC snapshots, 12 hours apart (simulated, seed 1)."""
    return list(calm_btc(3))


@pytest.fixture(scope="module")
def model(calm: list[MarketSnapshot]) -> NNSurfaceModel:
    pytest.importorskip("torch")
    return train_nn(calm[:5], **TINY)  # type: ignore[arg-type]


def test_predicts_a_later_snapshot_better_than_flat(
    calm: list[MarketSnapshot], model: NNSurfaceModel
) -> None:
    # trained on five snapshots (tiny network), asked for the sixth, 12 hours later: 2.50
    # vol points against 5.72 for black76-flat fitted to that snapshot itself (unweighted RMSE
    # of the mid vols of its fit quotes)
    later = calm[5]
    nn = rmse_vol_pts(make_engine("nn", model=model).fit(later), later)
    flat = rmse_vol_pts(make_engine("black76-flat").fit(later), later)
    assert nn < 4.5 and nn < 0.8 * flat


def test_training_is_seeded_and_deterministic(
    calm: list[MarketSnapshot], model: NNSurfaceModel
) -> None:
    again = train_nn(calm[:5], **TINY)  # type: ignore[arg-type]
    assert again == model
    engine = make_engine("nn", model=model).fit(calm[5])
    k, t = np.linspace(-0.5, 0.5, 21)[:, None], np.array([0.01, 0.1, 0.5])[None, :]
    np.testing.assert_array_equal(
        make_engine("nn", model=again).fit(calm[5]).total_variance(k, t),
        engine.total_variance(k, t),
    )
    other = train_nn(calm[:5], seed=1, **TINY)  # type: ignore[arg-type]
    assert other != model


def test_half_life_and_early_stopping(calm: list[MarketSnapshot], model: NNSurfaceModel) -> None:
    pytest.importorskip("torch")
    decayed = train_nn(calm[:5], half_life_days=0.5, **TINY)  # type: ignore[arg-type]
    assert decayed.mlp != model.mlp and decayed.half_life_days == 0.5
    stopped = train_nn(calm[:4], validation=[calm[4]], patience=1, hidden=(8,), epochs=400)
    assert 10 <= stopped.epochs < 400 and stopped.epochs % 10 == 0


def test_surface_is_positive_finite_and_nearly_arbitrage_free(
    calm: list[MarketSnapshot], model: NNSurfaceModel
) -> None:
    engine = make_engine("nn", model=model).fit(calm[5])
    k = np.linspace(-2.0, 2.0, 81)[:, None]
    t = np.geomspace(1e-3, 3.0, 60)[None, :]
    w = engine.total_variance(k, t)
    assert np.all(np.isfinite(w)) and np.all(w > 0)
    # soft penalties: no calendar violation and few butterfly points (of 3,600 on the mesh)
    arbitrage = engine.result_.arbitrage
    assert arbitrage.calendar_count == 0 and arbitrage.butterfly_count < 0.02 * arbitrage.n_points
    # linear wings beyond the trained range, outward
    lo, hi = model.k_range
    far = engine.total_variance(np.array([lo - 1, lo - 2, hi + 1, hi + 2]), np.full(4, 0.1))
    assert far[1] - far[0] >= 0 and far[3] - far[2] >= 0
    np.testing.assert_allclose(far[1] - far[0], far[0] - engine.total_variance(lo, 0.1))


def test_clone_and_pickle_keep_the_trained_model(
    calm: list[MarketSnapshot], model: NNSurfaceModel
) -> None:
    engine = make_engine("nn", model=model, weighting="spread")
    fresh = clone(engine)
    assert fresh.model == model and fresh.get_params() == engine.get_params()
    assert pickle.loads(pickle.dumps(model)) == model
    engine.fit(calm[5])
    again = pickle.loads(pickle.dumps(engine))
    k, t = np.linspace(-0.4, 0.4, 9), np.full(9, 0.05)
    np.testing.assert_array_equal(again.implied_vol(k, t), engine.implied_vol(k, t))


def test_predicts_without_torch(
    calm: list[MarketSnapshot], model: NNSurfaceModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # any import of torch now fails
    with pytest.raises(ImportError):
        import torch  # noqa: F401
    engine = make_engine("nn", model=pickle.loads(pickle.dumps(model))).fit(calm[5])
    assert np.all(np.isfinite(engine.implied_vol(np.linspace(-0.5, 0.5, 11), 0.1)))
    with pytest.raises(ImportError, match=r"pip install 'volguard\[ml\]'"):
        train_nn(calm[:2])


def test_needs_a_trained_model(calm: list[MarketSnapshot]) -> None:
    with pytest.raises(ValueError, match="nn needs a trained model"):
        make_engine("nn").fit(calm[0])
    with pytest.raises(TypeError, match="NNSurfaceModel"):
        make_engine("nn", model="weights").fit(calm[0])
    assert getattr(ENGINES["nn"], "needs_training", False)


def test_numpy_forward_pass() -> None:
    # one hidden layer of 2: tanh(W1 x + b1) then W2 h + b2, inputs standardised first
    w1, b1 = np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([0.0, 0.5])
    w2, b2 = np.array([[1.0, -1.0]]), np.array([0.25])
    params = np.concatenate([w1.ravel(), b1, w2.ravel(), b2]).astype("<f8").tobytes()
    mlp = MLP((2, 2, 1), params, shift=(1.0, 0.0), scale=(2.0, 1.0))
    x = np.array([[3.0, 0.1], [1.0, -0.2]])
    h = np.tanh(((x - [1.0, 0.0]) / [2.0, 1.0]) @ w1.T + b1)
    np.testing.assert_allclose(mlp(x), h @ w2[0] + b2[0], rtol=1e-15)
