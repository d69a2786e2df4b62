"""Scenarios: presets, TOML files with overrides, and clear errors."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from volguard.errors import ConfigError
from volguard.sim import PRESETS, REGIME_NAMES, Regime, load_scenario, preset


def test_every_preset_loads_with_every_regime() -> None:
    for name in PRESETS:
        scenario = load_scenario(name)
        assert set(scenario.regimes) == set(REGIME_NAMES)
        assert scenario.spot > 0 and scenario.v0 > 0


def test_presets_start_in_their_window() -> None:
    crash = preset("crash-2026-02")
    assert crash.start == pd.Timestamp("2026-01-29 09:00", tz="UTC")
    assert crash.script == (("crash", math.inf),)
    assert preset("calm-then-crash").second_asset is not None


def test_toml_overrides_a_preset(tmp_path: Path) -> None:
    path = tmp_path / "flip.toml"
    path.write_text(
        """
preset = "markov"
start = 2026-03-01T00:00:00Z
spot = 80000.0
script = [["calm", 10], ["crash", 3]]

[regimes.crash]
rho = 0.4

[second_asset]
underlying = "ETH"
spot = 2500.0
vol_scale = 1.3
corr = {calm = 0.8, crash = 0.95}
"""
    )
    s = load_scenario(path)
    assert s.name == "flip" and s.spot == 80_000.0
    assert s.start == pd.Timestamp("2026-03-01", tz="UTC")
    assert s.script == (("calm", 10.0), ("crash", 3.0))
    assert s.regimes["crash"].rho == 0.4  # the spot-vol correlation flips sign
    assert s.regimes["calm"] == preset("markov").regimes["calm"]
    assert s.second_asset is not None and s.second_asset.corr["crash"] == 0.95
    assert s.second_asset.corr["rally"] == 0.8  # unnamed regimes take corr_default


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("spto = 1.0", "unknown setting(s) ['spto']"),
        ("[regimes.boom]\nrho = 0.1", "[regimes.boom] is not a regime"),
        ("[regimes.calm]\nrho = 1.5", "rho must be in (-1, 1), got 1.5"),
        ("[regimes.calm]\nkapa = 1.0", "unknown regime setting(s) ['kapa']"),
        ('script = [["calm", -1]]', "days > 0"),
        ("spot = = 3", "not a readable TOML file"),
    ],
)
def test_bad_scenarios_name_the_file_and_the_key(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert str(path) in str(info.value) and needle in str(info.value)


def test_unknown_preset_or_missing_file() -> None:
    with pytest.raises(ConfigError, match="not a preset name"):
        load_scenario("no-such-preset")


def test_regime_round_trips_through_a_dict() -> None:
    regime = preset("markov").regimes["rally"]
    assert Regime.from_dict(regime.to_dict()) == regime
