"""docs/guard.md states the defaults the code has."""

from __future__ import annotations

from pathlib import Path

from volguard.guard.drift import ADWIN_DEFAULTS, CUSUM_DEFAULTS, PAGE_HINKLEY_DEFAULTS
from volguard.guard.policy import PolicySettings
from volguard.guard.runtime import GuardSettings

DOC = (Path(__file__).resolve().parents[2] / "docs" / "guard.md").read_text(encoding="utf-8")


def _g(value: float) -> str:
    return f"{value:g}"


def test_detector_defaults_are_documented() -> None:
    assert f"k = {_g(CUSUM_DEFAULTS['k'])}, h = {_g(CUSUM_DEFAULTS['h'])} |" in DOC
    assert (
        f"delta = {_g(PAGE_HINKLEY_DEFAULTS['delta'])}, "
        f"threshold = {PAGE_HINKLEY_DEFAULTS['threshold']:.1f} |" in DOC
    )
    assert f"delta = {_g(ADWIN_DEFAULTS['delta'])} |" in DOC


def test_policy_and_guard_defaults_are_documented() -> None:
    p, g = PolicySettings(), GuardSettings()
    for name in (
        "z_watch",
        "z_recalibrate",
        "z_fallback",
        "z_risk",
        "escalate_alarms",
        "escalate_window",
        "p_stress_fallback",
        "p_risk",
        "calm_exit",
    ):
        assert f"{name}` = {_g(getattr(p, name))}" in DOC, name
    for name in (
        "warmup",
        "max_half_spread_vol_pts",
        "min_quotes",
        "max_fit_vol_pts",
        "max_fit_half_spreads",
    ):
        assert f"`{name}` = {_g(getattr(g, name))}" in DOC, name
    assert f"w = {tuple(_g(w) for w in p.widen)}".replace("'", "") in DOC
