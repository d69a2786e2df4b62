"""`volguard guard replay` end to end on a synthetic store, and the report page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from tests.guard.conftest import synthetic_market, write_store
from volguard.cli.main import app
from volguard.report.guard_report import guard_report_html

runner = CliRunner()


def test_guard_replay_writes_the_three_outputs_and_resumes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_store(store, synthetic_market(16, 12))
    out = tmp_path / "run"
    args = [
        "guard",
        "replay",
        "--store",
        str(store),
        "--underlying",
        "btc",
        "--engine",
        "ssvi",
        "--fallback",
        "black76-flat",
        "--to",
        "2026-01-14",
        "--out",
        str(out),
        "--warmup",
        "5",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    decisions = pd.read_parquet(out / "decisions.parquet")
    assert len(decisions) == 13  # Jan 1 .. Jan 13, 09:00
    guarded = pd.read_parquet(out / "guarded.parquet")
    assert {
        "ts",
        "instrument",
        "model_iv",
        "lower_iv",
        "upper_iv",
        "bid_usd",
        "ask_usd",
        "state",
    } <= set(guarded.columns)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "guard replay: BTC, ssvi" in html and "plotly" in html
    # a later --to continues the same run folder from its log
    result = runner.invoke(app, [*args[:-6], "--out", str(out), "--warmup", "5"])
    assert result.exit_code == 0, result.output
    assert "resumed after 2026-01-13" in result.output
    decisions = pd.read_parquet(out / "decisions.parquet")
    assert decisions["seq"].tolist() == list(range(16))
    assert decisions["state"].iloc[-1] != "NORMAL"  # the break at snapshot 12


def test_unknown_engine_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "guard",
            "replay",
            "--store",
            str(tmp_path),
            "--underlying",
            "BTC",
            "--engine",
            "nope",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2
    assert "engine 'nope' is unknown" in result.output


def test_report_of_an_empty_run_still_renders() -> None:
    html = guard_report_html(pd.DataFrame(columns=["ts", "state", "z", "p_stress", "detectors"]))
    assert "<html>" in html and "guard state" in html
