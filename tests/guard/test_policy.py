"""The policy state machine: escalation rules, hysteresis, settings validation, decisions."""

from __future__ import annotations

import pandas as pd
import pytest

from volguard.guard.policy import REASONS, Decision, Observation, Policy, PolicySettings, State

TS = pd.Timestamp("2026-01-29 15:45", tz="UTC")


def run(policy: Policy, *observations: Observation) -> list[tuple[str, str]]:
    out = []
    for obs in observations:
        policy.update(obs)
        out.append((policy.state.name, policy.reason))
        assert policy.reason in REASONS
    return out


def test_escalation_ladder() -> None:
    p = Policy()
    assert run(p, Observation(TS, 5.5)) == [("WATCH", "error_rate")]
    assert run(p, Observation(TS, 0.0, ("cusum",))) == [("RECALIBRATE", "persistent_alarms")]
    assert run(p, Observation(TS, 5.5, (), 0.95)) == [("FALLBACK", "stress_regime")]
    assert run(p, Observation(TS, 25.0, ("cusum",), 0.995)) == [("RISK_REDUCE", "risk")]


def test_large_errors_skip_levels() -> None:
    assert run(Policy(), Observation(TS, 6.5)) == [("RECALIBRATE", "large_error")]
    assert run(Policy(), Observation(TS, 13.0)) == [("FALLBACK", "extreme_error")]


def test_a_rejected_refit_is_no_alarm_in_normal_but_falls_back_when_recalibrating() -> None:
    p = Policy()
    assert run(p, Observation(TS, 0.0, refit_valid=False)) == [("NORMAL", "unsettled")]
    run(p, Observation(TS, 7.0))
    assert run(p, Observation(TS, 0.0, refit_valid=False)) == [("FALLBACK", "refit_rejected")]


def test_hysteresis_one_level_down_after_calm_exit_calm_snapshots() -> None:
    p = Policy(PolicySettings(calm_exit=3))
    run(p, Observation(TS, 13.0))
    calm = Observation(TS, 0.0, refit_valid=True)
    states = [s for s, _ in run(p, *[calm] * 9)]
    assert states == ["FALLBACK"] * 2 + ["RECALIBRATE"] * 3 + ["WATCH"] * 3 + ["NORMAL"]


def test_no_flapping_on_a_borderline_stream() -> None:
    # errors alternating just above z_watch and calm: the state only climbs, never steps down
    p = Policy()
    history = run(p, *[Observation(TS, 4.1 if i % 2 else 0.0) for i in range(12)])
    levels = [State[name] for name, _ in history]
    assert levels == sorted(levels)
    assert "step_down" not in {reason for _, reason in history}


def test_fallback_waits_for_a_valid_refit() -> None:
    p = Policy(PolicySettings(calm_exit=1))
    run(p, Observation(TS, 13.0))
    assert run(p, *[Observation(TS, 0.0, refit_valid=None)] * 3)[-1][0] == "FALLBACK"
    assert run(p, Observation(TS, 0.0, refit_valid=True)) == [("RECALIBRATE", "step_down")]


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="z_calm <= z_watch"):
        PolicySettings(z_watch=8.0, z_recalibrate=6.0)
    with pytest.raises(ValueError, match="widen"):
        PolicySettings(widen=(1.0, 1.0, 1.0, 1.0, -1.0))
    with pytest.raises(ValueError, match="calm_exit"):
        PolicySettings(calm_exit=0)


def test_decision_json_round_trip() -> None:
    d = Decision(
        3,
        TS,
        "ETH",
        State.FALLBACK.name,
        "RECALIBRATE",
        "escalate",
        "stress_regime",
        {"z": 4.5, "p_stress": 0.97, "detectors": "cusum", "refit_valid": True},
    )
    assert Decision.from_json(d.to_json()) == d
