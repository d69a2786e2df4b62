"""The guard's policy: a state machine from NORMAL to RISK_REDUCE, with hysteresis.

States, in escalating order, and what the runtime does in each:

NORMAL
    Serve the primary engine; refit it on schedule (``refit_every``) when the refit validates.
WATCH
    An alarm: the standardized error rate crossed ``z_watch``, a drift detector fired, or the
    trades since the last snapshot executed far from the served engine (``trade_alarm``). Keep
    serving, widen quotes more. (A refit that fails validation in NORMAL or WATCH is not an
    alarm: the last validated fit stays in service, and if it ages badly its error says so.)
RECALIBRATE
    Alarms persist (``escalate_alarms`` within ``escalate_window`` snapshots) or the error is
    large (``z_recalibrate``): refit the primary on every snapshot, swap in each refit that
    validates.
FALLBACK
    The primary cannot be trusted: its error is extreme (``z_fallback``), its refit fails
    validation while recalibrating, or an alarm comes with a stressed regime
    (``p_stress_fallback``). Serve the conservative fallback engine, widen quotes further.
RISK_REDUCE
    Extreme error in a stressed regime (``z_risk`` and ``p_risk``): signal to cut exposure.

Escalation may skip levels; de-escalation is one level at a time after ``calm_exit``
consecutive calm snapshots (``z < z_calm``, no detector alarm, stress probability below
``p_calm``), and FALLBACK steps down only when the primary's refit validates. Every update
produces one :class:`Decision` with a reason code and the numbers behind it.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any

import pandas as pd


class State(IntEnum):
    """Guard states, ordered by severity."""

    NORMAL = 0
    WATCH = 1
    RECALIBRATE = 2
    FALLBACK = 3
    RISK_REDUCE = 4


REASONS: dict[str, str] = {
    "warmup": "learning the calm reference of the error rate; no decision yet",
    "illiquid": "fewer than min_quotes quotes within max_half_spread_vol_pts: not scored, no refit",
    "calm": "nothing abnormal",
    "unsettled": "not calm, not alarming: the calm count restarts",
    "error_rate": "the standardized error rate crossed z_watch",
    "detector": "a drift detector fired (names in metrics)",
    "trade_error": "min_trades trades since the last snapshot, their median error against the "
    "served engine at least trade_alarm_half_spreads half-spreads",
    "persistent_alarms": "escalate_alarms alarms within escalate_window snapshots",
    "large_error": "the standardized error rate crossed z_recalibrate",
    "refit_rejected": "the primary's refit failed validation",
    "extreme_error": "the standardized error rate crossed z_fallback",
    "stress_regime": "an alarm while the stress probability is above p_stress_fallback",
    "risk": "z_risk crossed while the stress probability is above p_risk",
    "step_down": "calm_exit calm snapshots in a row: one level down",
}
"""Reason codes of :class:`Decision`."""


@dataclass(frozen=True)
class PolicySettings:
    """Thresholds of the policy; ``z`` is the standardized error rate (calm mean 0, sd 1).

    Defaults: ``z_watch = 5``: at most 1 in 1,000 calm updates reach it on the simulated calm
    streams the detectors are tuned on (docs/guard.md; 4.5 alarms often enough that the
    resulting 2-hourly refits inflate ``z`` and the alarms feed themselves);
    ``z_recalibrate = 6`` and ``z_fallback = 12`` are steps of the same scale;
    ``p_stress_fallback = 0.9`` and ``p_risk = 0.99`` are probabilities of the stressed regime;
    ``widen`` multiplies the conformal half-width (in half-spreads) added to each side of the
    quote, per state.
    """

    z_watch: float = 5.0
    z_recalibrate: float = 6.0
    z_fallback: float = 12.0
    z_risk: float = 20.0
    escalate_alarms: int = 2
    escalate_window: int = 4
    p_stress_fallback: float = 0.9
    p_risk: float = 0.99
    calm_exit: int = 3
    z_calm: float = 2.0
    p_calm: float = 0.5
    widen: tuple[float, float, float, float, float] = (0.5, 1.0, 1.0, 2.0, 3.0)

    def __post_init__(self) -> None:
        if not self.z_calm <= self.z_watch <= self.z_recalibrate <= self.z_fallback:
            raise ValueError(
                "thresholds must satisfy z_calm <= z_watch <= z_recalibrate <= z_fallback"
            )
        if self.calm_exit < 1 or self.escalate_alarms < 1 or self.escalate_window < 1:
            raise ValueError("calm_exit, escalate_alarms and escalate_window must be >= 1")
        if len(self.widen) != len(State) or min(self.widen) < 0:
            raise ValueError(f"widen needs {len(State)} non-negative multipliers, one per state")


@dataclass(frozen=True)
class Observation:
    """What the policy sees of one snapshot: ``z`` (standardized error rate), the names of the
    detectors that fired, the stress probability, whether the primary's refit swapped in at this
    snapshot validated (None when none was), and whether the trades since the last snapshot
    raised an alarm (the runtime's rule: ``GuardSettings.trade_alarm_half_spreads``)."""

    ts: pd.Timestamp
    z: float
    alarms: tuple[str, ...] = ()
    p_stress: float = 0.0
    refit_valid: bool | None = None
    trade_alarm: bool = False


@dataclass(frozen=True)
class Decision:
    """One decision: the state after it, the one before, the action, its reason code
    (:data:`REASONS`) and the numbers behind it."""

    seq: int
    ts: pd.Timestamp
    underlying: str
    state: str
    previous: str
    action: str
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """One JSON line (timestamps ISO, non-finite numbers as null).

        Examples
        --------
        >>> d = Decision(0, pd.Timestamp("2026-01-29 15:45", tz="UTC"), "BTC", "WATCH",
        ...              "NORMAL", "widen", "error_rate", {"z": 6.5, "p": float("nan")})
        >>> Decision.from_json(d.to_json()) == Decision(**{**d.__dict__, "metrics": {
        ...     "z": 6.5, "p": None}})
        True
        """
        record = asdict(self)
        record["ts"] = self.ts.isoformat()
        record["metrics"] = {k: _finite(v) for k, v in self.metrics.items()}
        return json.dumps(record, sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, line: str) -> Decision:
        """Parse a line written by :meth:`to_json`."""
        record = json.loads(line)
        record["ts"] = pd.Timestamp(record["ts"])
        return cls(**record)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Policy:
    """The state machine (see the module docstring); ``update(obs)`` returns None, read
    ``state``, ``action`` and ``reason`` after it.

    Examples
    --------
    >>> p = Policy(PolicySettings(calm_exit=1))
    >>> ts = pd.Timestamp("2026-01-29", tz="UTC")
    >>> p.update(Observation(ts, z=5.0))
    >>> p.state.name, p.reason
    ('WATCH', 'error_rate')
    >>> p.update(Observation(ts, z=0.1))
    >>> p.state.name, p.reason
    ('NORMAL', 'step_down')
    """

    def __init__(self, settings: PolicySettings | None = None) -> None:
        self.settings = settings or PolicySettings()
        self.reset()

    def reset(self) -> None:
        """Back to NORMAL with no alarm history."""
        self._state = State.NORMAL
        self._calm = 0
        self._recent: deque[bool] = deque(maxlen=self.settings.escalate_window)
        self._reason = "calm"
        self._action = "hold"

    @property
    def state(self) -> State:
        return self._state

    @property
    def reason(self) -> str:
        return self._reason

    @property
    def action(self) -> str:
        """``hold``, ``escalate`` or ``step_down``."""
        return self._action

    @property
    def widen(self) -> float:
        """The quote-widening multiplier of the current state."""
        return self.settings.widen[self._state]

    def update(self, obs: Observation) -> None:
        """Move the state machine by one snapshot."""
        s = self.settings
        z = obs.z if math.isfinite(obs.z) else 0.0
        alarm = bool(obs.alarms) or z >= s.z_watch or obs.trade_alarm
        self._recent.append(alarm)
        target, reason = State.NORMAL, "calm"
        if alarm:
            reason = "error_rate" if z >= s.z_watch else "detector" if obs.alarms else "trade_error"
            target = State.WATCH
        if alarm and sum(self._recent) >= s.escalate_alarms:
            target, reason = State.RECALIBRATE, "persistent_alarms"
        if z >= s.z_recalibrate:
            target, reason = max(target, State.RECALIBRATE), "large_error"
        if obs.refit_valid is False and self._state >= State.RECALIBRATE:
            target, reason = State.FALLBACK, "refit_rejected"
        if alarm and obs.p_stress >= s.p_stress_fallback and self._state >= State.RECALIBRATE:
            target, reason = State.FALLBACK, "stress_regime"
        if z >= s.z_fallback:
            target, reason = max(target, State.FALLBACK), "extreme_error"
        if z >= s.z_risk and obs.p_stress >= s.p_risk:
            target, reason = State.RISK_REDUCE, "risk"
        if target > self._state:
            self._state, self._reason, self._action, self._calm = target, reason, "escalate", 0
            return
        calm = (
            not alarm and z < s.z_calm and obs.p_stress < s.p_calm and obs.refit_valid is not False
        )
        self._calm = self._calm + 1 if calm else 0
        can_leave = self._state != State.FALLBACK or obs.refit_valid is True
        if self._state > State.NORMAL and self._calm >= s.calm_exit and can_leave:
            self._state = State(self._state - 1)
            self._reason, self._action, self._calm = "step_down", "step_down", 0
            return
        self._reason, self._action = ("calm" if calm else "unsettled"), "hold"
        if alarm:
            self._reason = reason
