"""The guard runtime on a synthetic market with a known break."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from volguard.data.events import ReplaySource
from volguard.data.store import QuoteStore
from volguard.guard.policy import State
from volguard.guard.runtime import Guard, GuardSettings
from volguard.models import make_engine

SHIFT = 18


def run_guard(store: QuoteStore, guard: Guard) -> list[tuple[int, str, str, pd.DataFrame]]:
    out = []
    for snap in ReplaySource(store, ["BTC"]):
        guard.update(snap)
        assert guard.decision is not None
        out.append((guard.decision.seq, guard.decision.state, guard.decision.reason, guard.guarded))
    return out


def test_guard_is_quiet_when_calm_and_escalates_at_the_break(
    make_store: Callable[..., QuoteStore],
) -> None:
    store = make_store(26, SHIFT)
    guard = Guard(make_engine("ssvi"), make_engine("black76-flat"), GuardSettings(warmup=8))
    steps = run_guard(store, guard)
    assert [seq for seq, *_ in steps] == list(range(26))
    states = [State[s] for _, s, _, _ in steps]
    assert all(s == State.NORMAL for s in states[:SHIFT])
    assert [r for _, _, r, _ in steps[:9]] == ["warmup"] * 9
    assert states[SHIFT] >= State.RECALIBRATE  # a 15-point jump is a large error at once
    assert max(states[SHIFT:]) >= State.RECALIBRATE
    metrics = guard.decision.metrics if guard.decision else {}
    assert {"z", "error_rate", "p_stress", "aci_half_width", "served"} <= set(metrics)


def test_guarded_quotes_bracket_the_model_and_widen_with_the_state(
    make_store: Callable[..., QuoteStore],
) -> None:
    store = make_store(22, SHIFT)
    guard = Guard(make_engine("ssvi"), make_engine("black76-flat"), GuardSettings(warmup=8))
    steps = run_guard(store, guard)
    calm, crash = steps[SHIFT - 1][3], steps[SHIFT][3]
    for quotes in (calm, crash):
        assert (quotes["bid_iv"] < quotes["model_iv"]).all()
        assert (quotes["model_iv"] < quotes["ask_iv"]).all()
        assert (quotes["lower_iv"] < quotes["upper_iv"]).all()
        assert (quotes["bid_usd"] < quotes["ask_usd"]).all()

    def width(q: pd.DataFrame) -> float:
        return float(np.median(q["ask_iv"] - q["bid_iv"]))

    assert crash["state"].iloc[0] != "NORMAL"
    assert width(crash) > 1.5 * width(calm)


def test_fallback_serves_the_fallback_engine(make_store: Callable[..., QuoteStore]) -> None:
    from volguard.guard.policy import PolicySettings

    store = make_store(14, 10)
    settings = GuardSettings(
        warmup=5, policy=PolicySettings(z_watch=3.0, z_recalibrate=4.0, z_fallback=5.0)
    )
    guard = Guard(make_engine("ssvi"), make_engine("black76-flat"), settings)
    run_guard(store, guard)
    assert guard.state >= State.FALLBACK
    assert guard.decision is not None and guard.decision.metrics["served"] == "black76-flat"


def test_reset_forgets_everything(make_store: Callable[..., QuoteStore]) -> None:
    store = make_store(6, None)
    guard = Guard(make_engine("ssvi"), make_engine("black76-flat"), GuardSettings(warmup=3))
    first = [(s, r) for _, s, r, _ in run_guard(store, guard)]
    guard.reset()
    assert guard.decision is None and guard.guarded.empty and guard.monitor.n_updates == 0
    assert [(s, r) for _, s, r, _ in run_guard(store, guard)] == first


def test_an_ensemble_widens_its_quotes_by_its_members_disagreement(
    make_store: Callable[..., QuoteStore],
) -> None:
    store = make_store(12, 20)  # calm only
    guarded = {}
    for premium in (0.0, 2.0):
        settings = GuardSettings(warmup=8, disagreement_premium=premium)
        guard = Guard(make_engine("ensemble"), make_engine("black76-flat"), settings)
        guarded[premium] = run_guard(store, guard)[-1][3]
    plain, premium = guarded[0.0], guarded[2.0]
    assert (plain["disagreement_iv"] > 0).all()
    np.testing.assert_allclose(plain["disagreement_iv"], premium["disagreement_iv"])
    extra = (premium["ask_iv"] - premium["bid_iv"]) - (plain["ask_iv"] - plain["bid_iv"])
    np.testing.assert_allclose(extra, 2 * 2.0 * plain["disagreement_iv"], rtol=1e-9)


def test_z_is_standardized_by_every_rate_scored_in_normal_before_it(
    make_store: Callable[..., QuoteStore],
) -> None:
    store = make_store(16, None)
    for grow in (True, False):
        settings = GuardSettings(warmup=4, grow_reference=grow, min_scale=1e-6)
        guard = Guard(make_engine("ssvi"), make_engine("black76-flat"), settings)
        rates, checked = [], 0
        for snap in ReplaySource(store, ["BTC"]):
            guard.update(snap)
            d = guard.decision
            assert d is not None
            if "error_rate" not in d.metrics:
                continue
            rate = d.metrics["error_rate"]
            if np.isfinite(d.metrics["z"]):
                ref = np.array(rates if grow else rates[:4])
                expected = (rate - ref.mean()) / ref.std(ddof=1)
                assert d.metrics["z"] == pytest.approx(expected, rel=1e-9)
                checked += 1
            if d.previous == "NORMAL":
                rates.append(rate)
        assert checked >= 8
