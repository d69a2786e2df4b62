"""The command line as a newcomer meets it: help and version, names that match the
registries, tables that fit 80 columns, the compile notice, the engines' warnings, units."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.guard.conftest import synthetic_market, write_store
from volguard.cli import main as cli
from volguard.cli.main import app

runner = CliRunner()


def test_help_version_and_dash_h() -> None:
    for args in (["--help"], ["-h"], ["fit", "-h"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Usage" in result.stdout
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == "volguard 0.1.0"


def test_the_names_in_help_are_the_registries() -> None:
    from volguard.data.loaders import LOADERS
    from volguard.models import ENGINES
    from volguard.sim import PRESETS
    from volguard.sim.stress_library import LIBRARY

    learned = {n for n, c in ENGINES.items() if getattr(c, "needs_training", False)}
    assert set(cli.FORMATS) == set(LOADERS)
    assert set(cli.FIT_ENGINES) == set(ENGINES) - learned and set(cli.LEARNED) == learned
    assert tuple(PRESETS) == cli.PRESET_NAMES and tuple(LIBRARY) == cli.SCENARIO_NAMES
    text = runner.invoke(app, ["fit", "--help"], terminal_width=200).stdout
    assert "heston" in text and "gbm" not in text and "hybrid" not in text


def _card() -> pd.DataFrame:
    rows = []
    for engine in ("black76-flat", "essvi", "persist-moneyness", "delta-sticky-moneyness"):
        for protocol in ("nowcast-wings", "forecast-1", "hedging"):
            for regime in ("calm", "crash"):
                rows.append(
                    {
                        "engine": engine,
                        "protocol": protocol,
                        "regime": regime,
                        "scenario": "market",
                        "iv_rmse_vol_pts": 12.3456,
                        "snap_iv_rmse_vol_pts": 1.2345,
                        "snap_inside_pct": 45.678,
                        "skill": -0.123,
                        "skill_naive": 0.045,
                        "best_baseline": "persist-moneyness",
                        "gen_gap": 1.2345,
                        "hedge_err_std_bp": 123.456,
                    }
                )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("wide", [False, True])
def test_the_scorecard_fits_80_columns(monkeypatch: pytest.MonkeyPatch, wide: bool) -> None:
    screen = Console(width=80, file=io.StringIO(), color_system=None)
    monkeypatch.setattr(cli, "out", screen)
    cli._print_scorecard(_card(), Path("runs/demo/study/scorecard.csv"), wide)
    text = screen.file.getvalue()  # type: ignore[attr-defined]
    assert max(len(line) for line in text.splitlines()) <= 80
    assert ("insid" in text) is wide  # --wide: every column, folded if it must
    if not wide:
        assert "delta-sticky-moneyness" in text and "nowcast-wings" in text  # names whole


def test_study_json_is_for_machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("volguard.lab.study.run_study", lambda *a, **k: _card())
    config = tmp_path / "s.toml"
    config.write_text(
        "[data]\nsimulate = 'markov'\n[engines]\nsvi = {}\n[protocols]\nhedging = true\n"
    )
    result = runner.invoke(app, ["study", str(config), "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == len(_card())


def test_compilation_is_announced_once_and_timed_apart() -> None:
    import numba

    from volguard.cli.warmup import NOTICE, compile_timer

    screen = Console(file=io.StringIO(), width=200)
    with compile_timer(screen) as seconds:
        first = numba.njit(lambda x: x + 1)
        second = numba.njit(lambda x: x * 2)
        first(1), second(2)  # two compilations, one notice
    assert screen.file.getvalue().count(NOTICE) == 1  # type: ignore[attr-defined]
    assert seconds[0] > 0
    quiet = Console(file=io.StringIO())
    with compile_timer(quiet) as again:
        first(3)  # compiled already
    assert quiet.file.getvalue() == "" and again[0] == 0.0  # type: ignore[attr-defined]


def test_fit_prints_the_engines_warnings_on_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from volguard.models.parametric.black76_flat import Black76Flat

    class Bounded(Black76Flat):  # type: ignore[misc]
        def _calibrate(self, quotes: Any) -> Any:
            params, converged, fallback, _ = super()._calibrate(quotes)
            return params, converged, fallback, ("kappa at its upper bound 20",)

    store = tmp_path / "store"
    write_store(store, synthetic_market(2, None))
    monkeypatch.setattr(cli, "_engine", lambda *a, **k: Bounded())
    args = ["fit", "black76-flat", "--store", str(store), "--underlying", "BTC"]
    result = runner.invoke(app, [*args, "--at", "2026-01-01", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "warning: kappa at its upper bound 20" in result.stderr
    assert np.isfinite(json.loads((tmp_path / "o" / "fit.json").read_text())["fit_ms"])


def test_warmup_compiles_ahead_and_says_how_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("volguard.cli.warmup.WARM_ENGINES", ("black76-flat",))
    result = runner.invoke(app, ["warmup"])
    assert result.exit_code == 0, result.output
    assert "compiled the numerical kernels in" in result.stdout or "already" in result.stdout
