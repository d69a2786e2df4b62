"""The named scenarios and the TOML scenario files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from volguard.errors import ConfigError
from volguard.sim.stress import Jump, Reference, StaleQuotes, stress
from volguard.sim.stress_library import LIBRARY, example_path, load_scenario_toml

NAMES = [
    "crunch-mild",
    "crunch-severe",
    "vol-up-20",
    "vol-crush",
    "skew-twist",
    "corr-flip",
    "jump-down-15",
    "stale-30pct",
    "basis-dislocation",
    "crash-combo",
]


def test_the_library_has_the_documented_scenarios() -> None:
    assert list(LIBRARY) == NAMES
    doc = __import__("volguard.sim.stress_library", fromlist=["x"]).__doc__
    for name, scenario in LIBRARY.items():
        assert scenario.name == name
        assert scenario.description
        assert name in doc


@pytest.mark.parametrize("name", NAMES)
def test_each_named_scenario_is_arbitrage_free_and_changes_something(
    synthetic_ref: Reference, name: str
) -> None:
    base = stress(synthetic_ref, [])
    res = stress(synthetic_ref, LIBRARY[name])
    assert res.arbitrage.total == 0
    assert res.surface.condition_violations() == []
    same_quotes = res.snapshot.quotes.equals(base.snapshot.quotes)
    same_truth = np.allclose(res.truth["price"], base.truth["price"])
    assert not (same_quotes and same_truth)


@pytest.mark.realdata
@pytest.mark.parametrize("name", NAMES)
def test_each_named_scenario_is_arbitrage_free_on_real_chains(
    real_ref: Reference, name: str
) -> None:
    res = stress(real_ref, LIBRARY[name])
    assert res.arbitrage.total == 0, res.arbitrage.to_dict()
    assert len(res.snapshot) > 0


def test_the_example_file_loads() -> None:
    scenarios = load_scenario_toml(example_path())
    gap = scenarios["weekend-gap"]
    assert gap.transforms == (Jump(size=-0.083, beta=0.5), StaleQuotes(fraction=0.5))
    assert gap.params["jump.size"] == -0.083
    assert [t.kind for t in scenarios["short-squeeze"].transforms] == [
        "jump",
        "vol_shock",
        "corr_flip",
        "crunch",
    ]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scen.toml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = '[[scenario]]\nname = "a"\n[[scenario.transform]]\nkind = "jump"\nsize = -0.1\n'


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[[scenario]\nname = 'a'", r"not valid TOML"),
        ("title = 'x'", r"expected one or more \[\[scenario\]\] tables"),
        ("[[scenario]]\nname = 3", r"scenario\[0\]: key 'name' expected a non-empty string, got 3"),
        (GOOD + GOOD, r"scenario\[1\]: name 'a' is defined twice"),
        ("[[scenario]]\nname = 'a'\ncolour = 1", r"unknown keys \['colour'\]"),
        (
            "[[scenario]]\nname = 'a'\n[[scenario.transform]]\nkind = 'melt'",
            r"scenario\[0\] \(a\)\.transform\[0\]: key 'kind' expected one of \[",
        ),
        (
            "[[scenario]]\nname = 'a'\n[[scenario.transform]]\nkind = 'jump'\nsise = 0.1",
            r"transform\[0\]: unknown keys \['sise'\] for kind 'jump'; expected \['beta', 'size'\]",
        ),
        (
            "[[scenario]]\nname = 'a'\n[[scenario.transform]]\nkind = 'jump'\nsize = 0.9",
            r"transform\[0\]: jump\.size must be in \[-0\.5, 0\.5\] \(log move\); got 0\.9",
        ),
        (
            "[[scenario]]\nname = 'a'\n[[scenario.transform]]\nkind = 'jump'\nsize = 'big'",
            r"transform\[0\]: jump\.size must be a number",
        ),
        (
            GOOD + "[[scenario.transform]]\nkind = 'jump'\nsize = 0.1\n",
            r"scenario\[0\] \(a\): scenario 'a' repeats a transform kind",
        ),
    ],
)
def test_bad_files_raise_config_errors_naming_file_and_key(
    tmp_path: Path, text: str, match: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as info:
        load_scenario_toml(path)
    assert str(info.value).startswith(str(path))


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenario_toml(tmp_path / "nope.toml")
