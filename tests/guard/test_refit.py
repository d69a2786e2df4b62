"""Background refits: the deferred swap is deterministic, the async one never waits, a pending
refit survives a pickle, and the array hot path equals the DataFrame one."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.guard.conftest import START, synthetic_market, synthetic_snapshot
from volguard.data.events import ReplaySource
from volguard.data.store import QuoteStore
from volguard.guard.refit import Refitter
from volguard.guard.runtime import Guard, GuardSettings
from volguard.guard.scoring import score
from volguard.market.quotes import QuoteVols, observed_vols
from volguard.market.snapshot import MarketSnapshot
from volguard.models import make_engine
from volguard.models.parametric.ssvi import SSVI


class Held(Executor):
    """Runs each job only when the test calls ``release()``: a refit that takes as long as the
    test wants."""

    def __init__(self) -> None:
        self.queue: list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.queue.append((future, fn, args))
        return future

    def release(self) -> None:
        for future, fn, args in self.queue:
            future.set_result(fn(*args))
        self.queue.clear()


def snapshot(day: int, seed: int = 0) -> MarketSnapshot:
    rng = np.random.default_rng(seed)
    return MarketSnapshot.from_quotes(
        synthetic_snapshot(START + pd.Timedelta(days=day), 0.45, -0.1, rng)
    )


def test_refitter_modes_and_a_pickled_pending_job() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        Refitter("eager")  # type: ignore[arg-type]
    held = Held()
    live = Refitter("async", held)
    live.submit("primary", make_engine("ssvi"), snapshot(0))
    live.submit("primary", make_engine("ssvi"), snapshot(1))  # one job per role: ignored
    assert live.take("primary") is None and live.pending("primary")  # not done: not waited for
    held.release()
    outcome = live.take("primary")
    assert outcome is not None and outcome.snapshot_ts == snapshot(0).ts
    assert outcome.engine is not None and outcome.converged and live.fits == 1
    # pickling waits for the job in flight and keeps its result, to be taken after the restore
    deferred = Refitter("deferred")
    deferred.submit("fallback", make_engine("black76-flat"), snapshot(2), 0.25)
    restored = pickle.loads(pickle.dumps(deferred))
    again, direct = restored.take("fallback"), deferred.take("fallback")
    assert again is not None and direct is not None and again.engine is not None
    assert again.snapshot_ts == snapshot(2).ts and restored.take("fallback") is None
    k, t = np.array([-0.1, 0.0, 0.1]), np.full(3, 45 / 365)
    np.testing.assert_array_equal(again.engine.implied_vol(k, t), direct.engine.implied_vol(k, t))
    deferred.close()


def test_deferred_refits_give_the_same_decisions_on_any_executor(
    make_store: Callable[..., QuoteStore],
) -> None:
    store = make_store(16, 11)
    runs = []
    for executor in (None, Held()):  # a worker thread; jobs run only when awaited
        guard = Guard(
            make_engine("ssvi"),
            make_engine("black76-flat"),
            GuardSettings(warmup=5),
            executor=executor,
        )
        decisions = []
        for snap in ReplaySource(store, ["BTC"]):
            if isinstance(executor, Held):
                executor.release()  # the refit finishes whenever: the swap point is fixed
            guard.update(snap)
            assert guard.decision is not None
            decisions.append(guard.decision.to_json())
        guard.close()
        runs.append(decisions)
    assert runs[0] == runs[1]
    assert any('"refit_valid": true' in d for d in runs[0])
    assert '"refit_ts": "2026-01-01T09:00:00+00:00"' in runs[0][1]  # fit at 0, swapped in at 1


def test_async_refits_swap_in_only_once_finished(make_store: Callable[..., QuoteStore]) -> None:
    held = Held()
    settings = GuardSettings(warmup=3, refit_mode="async")
    guard = Guard(make_engine("ssvi"), make_engine("black76-flat"), settings, executor=held)
    snaps = list(ReplaySource(make_store(5, None), ["BTC"]))
    for snap in snaps[:3]:
        guard.update(snap)  # the first fit never finishes: nothing to serve, nothing scored
    assert guard.served is None and guard.guarded.empty and guard.refitter.fits == 0
    held.release()
    guard.update(snaps[3])
    assert guard.served is not None and guard.decision is not None
    assert guard.decision.metrics["refit_ts"] == snaps[0].ts.isoformat()
    assert guard.refitter.wait_seconds == 0.0


def test_the_array_hot_path_equals_the_dataframe_one() -> None:
    quotes = synthetic_market(2, None, seed=3)
    snap = MarketSnapshot.from_quotes(quotes[quotes["ts"] == quotes["ts"].max()])
    frame = observed_vols(snap)
    arrays = QuoteVols.from_snapshot(snap)
    for column in ("strike", "forward", "t", "k", "mid_iv", "half_spread_iv"):
        np.testing.assert_allclose(getattr(arrays, column), frame[column], rtol=1e-12)
    assert arrays.is_call.tolist() == frame["is_call"].tolist()
    assert snap.quotes["instrument"].iloc[arrays.rows].tolist() == frame["instrument"].tolist()
    engine = make_engine("ssvi").fit(snap)
    scores = score(engine, arrays)
    np.testing.assert_allclose(scores.err_vol, scores.model_iv - frame["mid_iv"], rtol=1e-12)
    np.testing.assert_allclose(scores.err_hs * arrays.half_spread_iv, scores.err_vol, atol=1e-15)


class Broken(SSVI):
    """An SSVI whose calibration fails with a numerical error, not a ValueError."""

    def _calibrate(self, quotes: Any) -> Any:
        raise ZeroDivisionError("calibration blew up")


def test_a_refit_failing_with_any_error_is_an_invalid_refit_not_a_jammed_guard() -> None:
    refitter = Refitter("deferred")
    refitter.submit("primary", Broken(), snapshot(0))
    outcome = refitter.take("primary")
    assert outcome is not None and outcome.engine is None
    assert "ZeroDivisionError: calibration blew up" in str(outcome.error)
    assert refitter.take("primary") is None  # taken: the next refit may start
    refitter.submit("primary", make_engine("ssvi"), snapshot(1))
    again = refitter.take("primary")
    assert again is not None and again.engine is not None
    refitter.close()
