"""The command line, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests._http_server import Server, ok
from tests.data._files import DERIBIT_FIXTURES, TARDIS_FIXTURE, csv_file
from tests.data.test_fetch import BOOK_PATH, INSTRUMENTS_PATH
from tests.data.test_mapped_csv import COIN_HEADER, COIN_MAPPING, COIN_ROWS
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
    for command in (
        ["data", "summary"],
        ["data", "snapshot", "--underlying", "BTC", "--at", "2025-12-31"],
    ):  # the tables people read
        result = runner.invoke(app, [*command, "--store", str(store)])
        assert result.exit_code == 0, result.output
        assert "BTC" in result.stdout


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


def test_demo_simulates_ingests_and_reports(tmp_path: Path) -> None:
    """What ``make run`` does: no ../shared, no network."""
    args = ["demo", "--out", str(tmp_path / "demo"), "--days", "3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "demo" / "summary.json").read_text())
    counts = report["ingest"]["quotes"]
    assert counts["rows_read"] == counts["rows_clean"] > 0 and counts["rows_quarantined"] == 0
    assert {r["underlying"] for r in report["store"]} == {"BTC", "ETH"}
    text = (tmp_path / "demo" / "report.md").read_text()
    assert "| quotes |" in text and "## Scorecard" in text and "| **sabr** |" in text
    card = pd.read_csv(tmp_path / "demo" / "study" / "scorecard.csv")
    engines = {"black76-flat", "svi", "ssvi", "essvi", "sabr"}
    deltas = {
        "delta-sticky-moneyness",
        "delta-regime-aware",
        "delta-mv-rolling",
        "delta-regime-guard",
    }
    baselines = {"persist-strike", "persist-moneyness", "svi-plain", "svi-plain-strike"}
    baselines |= {"venue-mark"}
    assert set(card["engine"]) == engines | baselines | deltas
    assert set(card.loc[card["engine"].isin(deltas), "protocol"]) == {"hedging"}
    assert set(card.loc[card["protocol"] == "nowcast-wings", "engine"]) == engines | {
        "svi-plain",
        "venue-mark",
    }
    market = card[card["scenario"] == "market"].dropna(subset=["iv_rmse_vol_pts"])
    assert market["true_iv_rmse_vol_pts"].notna().all()  # scored against the truth too
    # a second run replaces the store rather than piling onto it
    again = runner.invoke(app, args)
    assert again.exit_code == 0
    assert json.loads((tmp_path / "demo" / "summary.json").read_text()) == report
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == [
        "report.md",
        "sim",
        "store",
        "study",
        "summary.json",
    ]


def test_fetch_deribit_then_ingest(tmp_path: Path, server: Server) -> None:
    bundle = json.loads(DERIBIT_FIXTURES["BTC"].read_text())
    server.routes[INSTRUMENTS_PATH] = [ok(json.dumps(bundle["get_instruments"]).encode())]
    server.routes[BOOK_PATH] = [ok(json.dumps(bundle["get_book_summary_by_currency"]).encode())]
    result = runner.invoke(
        app,
        [
            "fetch",
            "deribit",
            "--currency",
            "btc",
            "--dest",
            str(tmp_path / "raw"),
            "--base-url",
            server.base,
        ],
    )
    assert result.exit_code == 0, result.output
    [path] = (tmp_path / "raw").iterdir()
    result = runner.invoke(
        app,
        ["ingest", "--format", "deribit-api", "--store", str(tmp_path / "s"), "--json", str(path)],
    )
    summary = json.loads(result.stdout)
    assert summary["rows_read"] == len(bundle["get_book_summary_by_currency"]["result"])


def test_fetch_tardis_thins_to_hourly(tmp_path: Path, server: Server) -> None:
    server.routes["/v1/deribit/options_chain/2025/06/01/OPTIONS.csv.gz"] = [
        ok(TARDIS_FIXTURE.read_bytes())
    ]
    result = runner.invoke(
        app,
        [
            "fetch",
            "tardis",
            "--day",
            "2025-06-01",
            "--dest",
            str(tmp_path),
            "--base-url",
            server.base,
        ],
    )
    assert result.exit_code == 0, result.output
    [path] = tmp_path.iterdir()
    assert path.name == "deribit_options_chain_2025-06-01_OPTIONS.every3600s.csv.gz"
    assert "rows kept" in result.stdout
    result = runner.invoke(
        app,
        [
            "fetch",
            "tardis",
            "--day",
            "2025-06-02",
            "--dest",
            str(tmp_path),
            "--base-url",
            server.base,
        ],
    )
    assert result.exit_code == 2 and "only the first day of each month" in result.stderr


def test_ingest_csv_with_a_mapping(tmp_path: Path) -> None:
    mapping = tmp_path / "vendor.toml"
    mapping.write_text(COIN_MAPPING)
    data = csv_file(tmp_path / "q.csv", COIN_HEADER, COIN_ROWS)
    result = runner.invoke(
        app,
        [
            "ingest",
            "--format",
            "csv",
            "--mapping",
            str(mapping),
            "--store",
            str(tmp_path / "s"),
            "--json",
            str(data),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows_clean"] == len(COIN_ROWS)


@pytest.mark.parametrize("engine", ["essvi", "heston"])
def test_every_engine_writes_valid_json(
    tmp_path: Path, snapshot_files: list[Path], engine: str
) -> None:
    store = tmp_path / "store"
    crash = [str(p) for p in snapshot_files if "20260205T093647Z" in p.name]
    runner.invoke(app, ["ingest", "--format", "deribit-snapshot", "--store", str(store), *crash])
    result = runner.invoke(
        app,
        [
            "fit",
            engine,
            "--store",
            str(store),
            "--underlying",
            "eth",
            "--at",
            "2026-02-05",
            "--out",
            str(tmp_path / "fit"),
        ],
    )
    assert result.exit_code == 0, result.output
    fit = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert isinstance(fit["converged"], bool) and fit["n_quotes"] > 300


def test_fit_writes_params_fit_and_surface(tmp_path: Path, snapshot_files: list[Path]) -> None:
    store = tmp_path / "store"
    crash = [str(p) for p in snapshot_files if "20260205T093647Z" in p.name]
    assert (
        runner.invoke(
            app, ["ingest", "--format", "deribit-snapshot", "--store", str(store), *crash]
        ).exit_code
        == 0
    )
    result = runner.invoke(
        app,
        [
            "fit",
            "svi",
            "--store",
            str(store),
            "--underlying",
            "btc",
            "--at",
            "2026-02-05T12:00",
            "--out",
            str(tmp_path / "fit"),
            "--grid",
            "-1:1:0.05",
        ],
    )
    assert result.exit_code == 0, result.output
    fit = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert fit["engine"] == "svi" and fit["n_quotes"] > 300 and fit["converged"]
    assert set(fit) >= {
        "rmse_vol_pts",
        "mae_half_spreads",
        "inside_spread_pct",
        "fit_ms",
        "arbitrage",
    }
    params = json.loads((tmp_path / "fit" / "params.json").read_text())
    assert len(params["params"]) == 12 and {"a", "b", "rho", "m", "sigma"} <= set(
        next(iter(params["params"].values()))
    )
    surface = pd.read_parquet(tmp_path / "fit" / "surface.parquet")
    assert list(surface.columns) == ["expiry", "t", "k", "iv"]
    assert len(surface) == 12 * 41 and surface["iv"].gt(0).all()
    bad = runner.invoke(
        app,
        [
            "fit",
            "nope",
            "--store",
            str(store),
            "--underlying",
            "btc",
            "--at",
            "2026-02-05",
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert bad.exit_code == 2 and "engine 'nope' is unknown" in bad.stderr
