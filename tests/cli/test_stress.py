"""``volguard stress`` and ``volguard adversarial`` on a real stored snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from volguard.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def store(snapshot_files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stress") / "store"
    calm = next(p for p in snapshot_files if "20260115T" in p.name)
    result = runner.invoke(
        app, ["ingest", "--format", "deribit-snapshot", "--store", str(path), str(calm)]
    )
    assert result.exit_code == 0, result.output
    return path


def test_stress_writes_quotes_truth_and_a_clean_arbitrage_check(
    store: Path, tmp_path: Path
) -> None:
    args = ["stress", "crash-combo", "--store", str(store), "--underlying", "BTC"]
    result = runner.invoke(app, [*args, "--at", "2026-01-15T09:00", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "stress.json").read_text())
    assert report["arbitrage"]["butterfly_count"] == report["arbitrage"]["calendar_count"] == 0
    truth = pd.read_parquet(tmp_path / "truth.parquet")
    quotes = pd.read_parquet(tmp_path / "quotes.parquet")
    assert len(quotes) == int(truth["visible"].sum()) < len(truth)  # the crunch removed wings


def test_stress_names_an_unknown_scenario(store: Path, tmp_path: Path) -> None:
    args = ["stress", "meteor", "--store", str(store), "--underlying", "BTC", "--at", "2026-01-15"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "not a library scenario" in result.output


def test_adversarial_beats_the_named_scenarios(store: Path, tmp_path: Path) -> None:
    args = ["adversarial", "black76-flat", "--store", str(store), "--underlying", "BTC"]
    result = runner.invoke(
        app, [*args, "--at", "2026-01-15", "--out", str(tmp_path), "--maxiter", "2"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "adversarial.json").read_text())
    assert report["worst_error"] > max(report["baselines"].values())
    path = pd.read_parquet(tmp_path / "path.parquet")
    assert len(path) > 10 and path["error"].max() == pytest.approx(report["worst_error"])
