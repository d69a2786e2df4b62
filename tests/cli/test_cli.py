"""The command line, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from volguard.cli.main import app

runner = CliRunner()


def test_ingest_summary_snapshot_json(tmp_path: Path, snapshot_files: list[Path]) -> None:
    store = tmp_path / "store"
    files = [str(p) for p in snapshot_files[:2]]
    result = runner.invoke(
        app, ["ingest", "--format", "deribit-snapshot", "--store", str(store), "--json", *files]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows_read"] == summary["rows_clean"] + summary["rows_quarantined"] > 0
    assert set(summary) >= {"rows_read", "rows_clean", "rows_quarantined", "quarantine_by_reason"}

    result = runner.invoke(app, ["data", "summary", "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    per_day = json.loads(result.stdout)
    assert sum(r["quotes"] for r in per_day) == summary["rows_clean"]
    assert {r["underlying"] for r in per_day} == {"BTC", "ETH"}

    result = runner.invoke(
        app,
        [
            "data",
            "snapshot",
            "--store",
            str(store),
            "--underlying",
            "eth",
            "--at",
            "2025-12-31T09:00",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    snap = json.loads(result.stdout)
    assert snap["underlying"] == "ETH" and snap["ts"].startswith("2025-12-31")
    assert all(e["forward"] > 0 for e in snap["expiries"])


def test_glob_patterns_are_expanded(tmp_path: Path, snapshot_files: list[Path]) -> None:
    pattern = str(snapshot_files[0].parent / "deribit_options_snapshot_202512*.csv.gz")
    result = runner.invoke(
        app,
        [
            "ingest",
            "--format",
            "deribit-snapshot",
            "--store",
            str(tmp_path / "s"),
            "--json",
            pattern,
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files_read"] == 2  # 2025-12-30 and 2025-12-31


def test_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,strike\n1,2\n")
    result = runner.invoke(
        app, ["ingest", "--format", "deribit-snapshot", "--store", str(tmp_path / "s"), str(bad)]
    )
    assert result.exit_code == 2
    assert "bad.csv: missing required column(s)" in result.stderr
    assert not (tmp_path / "s" / "_manifest.json").exists()
    result = runner.invoke(
        app, ["ingest", "--format", "nope", "--store", str(tmp_path / "s"), str(bad)]
    )
    assert result.exit_code == 2 and "format 'nope' is unknown" in result.stderr


def test_python_dash_m_works() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "volguard", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "ingest" in proc.stdout
