"""`volguard guard replay` end to end on a synthetic store, and the report page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
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
    assert len(decisions) == 14  # Jan 1 .. Jan 14, 09:00: --to keeps its whole day
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
    assert "resumed after 2026-01-14" in result.output
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


def _replay_args(store: Path, out: Path, *extra: str) -> list[str]:
    return [
        "guard",
        "replay",
        "--store",
        str(store),
        "--underlying",
        "BTC",
        "--out",
        str(out),
        "--warmup",
        "3",
        *extra,
    ]


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        (["--engine", "essvi"], "engine"),
        (["--underlying", "ETH"], "underlying"),
        (["--from", "2026-01-02"], "from"),
        (["--warmup", "4"], "warmup"),
    ],
)
def test_a_run_folder_made_with_other_settings_is_refused(
    tmp_path: Path, change: list[str], setting: str
) -> None:
    store = tmp_path / "store"
    both = pd.concat(
        [synthetic_market(6, None), synthetic_market(6, None).assign(underlying="ETH")]
    )
    write_store(store, both)
    out = tmp_path / "run"
    assert runner.invoke(app, _replay_args(store, out)).exit_code == 0
    before = (out / "decisions.jsonl").read_bytes()
    result = runner.invoke(app, [*_replay_args(store, out), *change])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert f"made with {setting} = " in line and "--force" in line
    assert (out / "decisions.jsonl").read_bytes() == before  # nothing appended
    result = runner.invoke(app, [*_replay_args(store, out), *change, "--force"])
    assert result.exit_code == 0, result.output
    assert (out / "decisions.jsonl").read_bytes() != before


def test_a_window_without_snapshots_or_an_earlier_end_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_store(store, synthetic_market(6, None))
    out = tmp_path / "run"
    result = runner.invoke(app, [*_replay_args(store, out), "--from", "2031-01-01"])
    assert result.exit_code == 2
    assert "no BTC snapshot from 2031-01-01" in result.stderr
    assert not out.exists()  # checked before anything is written
    assert runner.invoke(app, _replay_args(store, out)).exit_code == 0
    result = runner.invoke(app, [*_replay_args(store, out), "--to", "2026-01-03"])
    assert result.exit_code == 2 and "the log already runs to 2026-01-06" in result.stderr
