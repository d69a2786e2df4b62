"""River-style conformance of every streaming component: update returns None, reset equals a
fresh instance, pickling mid-stream changes nothing, inputs are not mutated."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from volguard.guard.conformal import AdaptiveConformal
from volguard.guard.drift import ADWIN, CUSUM, PageHinkley, stationary_streams
from volguard.guard.monitors import ErrorMonitor
from volguard.models.regime import RegimeFilter

STREAM = np.r_[stationary_streams(1, 40, seed=3)[0], stationary_streams(1, 20, seed=4)[0] + 4]


def _residuals(i: int) -> pd.DataFrame:
    rng = np.random.default_rng(i)
    return pd.DataFrame(
        {
            "t": rng.uniform(0.01, 1, 30),
            "k": rng.uniform(-0.4, 0.4, 30),
            "err_vol": rng.normal(0, 0.01, 30),
            "err_hs": rng.normal(0, 1, 30),
        }
    )


def _aci_input(i: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(i)
    return np.zeros(20), rng.normal(0, 1 + (i > 30), 20)


COMPONENTS: dict[str, tuple[Callable[[], Any], Callable[[int], Any], Callable[[Any], Any]]] = {
    # name: (factory, i-th input, observable state)
    "cusum": (CUSUM, lambda i: STREAM[i], lambda c: (c.drift_detected, c.statistic)),
    "page_hinkley": (PageHinkley, lambda i: STREAM[i], lambda c: c.drift_detected),
    "adwin": (ADWIN, lambda i: STREAM[i], lambda c: c.drift_detected),
    "regime": (
        RegimeFilter,
        lambda i: np.array([STREAM[i] * 3]),
        lambda c: tuple(c.probabilities.round(12)),
    ),
    "monitor": (ErrorMonitor, _residuals, lambda c: c.summary.round(12).to_json()),
    "conformal": (AdaptiveConformal, _aci_input, lambda c: (c.alpha_t, c.half_width)),
}


def _feed(component: Any, x: Any) -> Any:
    return component.update(*x) if isinstance(x, tuple) else component.update(x)


def _run(component: Any, inputs: list[Any], observe: Callable[[Any], Any]) -> list[Any]:
    out = []
    for x in inputs:
        assert _feed(component, x) is None
        out.append(observe(component))
    return out


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_reset_pickle_and_determinism(name: str) -> None:
    make, nth, observe = COMPONENTS[name]
    inputs = [nth(i) for i in range(len(STREAM))]
    reference = _run(make(), inputs, observe)
    assert _run(make(), inputs, observe) == reference  # deterministic
    used = make()
    _run(used, inputs[:25], observe)
    used.reset()
    assert _run(used, inputs, observe) == reference  # reset == fresh
    half = make()
    _run(half, inputs[:30], observe)
    copy = pickle.loads(pickle.dumps(half))
    assert _run(copy, inputs[30:], observe) == reference[30:]  # a pickle resumes exactly


@pytest.mark.parametrize("name", ["monitor", "conformal", "regime"])
def test_inputs_are_not_mutated(name: str) -> None:
    make, nth, _ = COMPONENTS[name]
    x = nth(31)
    before = pickle.dumps(x)
    _feed(make(), x)
    assert pickle.dumps(x) == before
