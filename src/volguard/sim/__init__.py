"""Regime-switching market simulator, liquidity model, stress and adversarial scenarios."""

from volguard.sim.regimes import REGIME_NAMES, Regime
from volguard.sim.scenario import PRESETS, Scenario, SecondAsset, load_scenario, preset
from volguard.sim.simulator import SimResult, simulate

__all__ = [
    "PRESETS",
    "REGIME_NAMES",
    "Regime",
    "Scenario",
    "SecondAsset",
    "SimResult",
    "load_scenario",
    "preset",
    "simulate",
]
