"""``volguard simulate``: a run written as Parquet that the store ingests clean."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from volguard.cli.main import app
from volguard.sim.simulator import TRUTH_COLUMNS

runner = CliRunner()


def test_simulate_writes_a_run_the_store_ingests(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["simulate", "calm-then-crash", "--days", "0.5", "--freq", "3h", "--seed", "4"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {
        "quotes.parquet",
        "truth.parquet",
        "path.parquet",
        "run.json",
    }
    truth = pd.read_parquet(out / "truth.parquet")
    assert list(truth.columns) == list(TRUTH_COLUMNS)
    assert json.loads((out / "run.json").read_text())["seed"] == 4

    store = tmp_path / "store"
    result = runner.invoke(
        app,
        [
            "ingest",
            "--format",
            "quotes",
            "--store",
            str(store),
            "--json",
            str(out / "quotes.parquet"),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    quotes = pd.read_parquet(out / "quotes.parquet")
    assert summary["rows_read"] == summary["rows_clean"] == len(quotes) > 0
    assert summary["rows_quarantined"] == 0


def test_simulate_rejects_bad_settings_with_a_message(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["simulate", "markov", "--days", "1", "--freq", "7min", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2
    assert "multiple of the path step" in result.output
    assert not (tmp_path / "x").exists()
    result = runner.invoke(app, ["simulate", "nope.toml", "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "not a preset name" in result.output


def test_quotes_loader_names_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    pd.DataFrame({"ts": [1]}).to_parquet(path)
    result = runner.invoke(
        app, ["ingest", "--format", "quotes", "--store", str(tmp_path / "s"), str(path)]
    )
    assert result.exit_code == 2
    assert "bad.parquet" in result.output and "missing column(s)" in result.output
