"""The study report: one offline HTML page with every section, from a tiny real study."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from plotly.offline import get_plotlyjs
from typer.testing import CliRunner

from tests.lab.test_policy_hedging import TINY
from volguard.cli.main import app
from volguard.report.study_html import SECTIONS, write_study_report

SCENARIO = """
preset = "calm-2026-01"
script = [["calm", 2], ["crash", 1.5]]
"""

STUDY = """
name = "tiny-report"
seed = 1
[data]
simulate = "{scenario}"
days = 3.5
freq = "12h"
[regimes]
method = "truth"
in_regime = "calm"
[engines]
ssvi = {{}}
"black76-flat" = {{}}
"gbm-fast" = {{ engine = "gbm", half_life_days = 0.5 }}
"gbm-slow" = {{ engine = "gbm", half_life_days = 5.0 }}
[protocols]
nowcast = {{ mode = "wings", test_size = 0.2 }}
forecast = {{ horizon = 1 }}
hedging = true
[stress]
scenarios = ["vol-up-20", "crash-combo"]
every = 3
"""

FIGURES = (
    "gap",
    "regimes",
    "sweep",
    "smiles",
    "hedging",
    "policy-simulated",
    "timeline",
    "stress",
)
"""The sections with a chart (``<div id="fig-<name>">``)."""


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny simulated study with stress scenarios, run through ``volguard study`` (which
    writes the report)."""
    root = tmp_path_factory.mktemp("study")
    (root / "shift.toml").write_text(SCENARIO)
    policy = ", ".join(f"{k} = {json.dumps(v)}" for k, v in TINY.items())
    study = STUDY.format(scenario=root / "shift.toml").replace(
        "[protocols]", f"[protocols]\npolicy_hedging = {{ {policy} }}"
    )
    (root / "study.toml").write_text(study)
    out = root / "out"
    result = CliRunner().invoke(
        app, ["study", str(root / "study.toml"), "--out", str(out), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'report.html'}" in result.output.replace("\n", "")
    return out


class _Rows(HTMLParser):
    """The ``<tbody>`` rows of the table with id ``table_id``: (class, cell texts)."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.depth = 0  # > 0 inside the table
        self.in_body = False
        self.rows: list[tuple[str, list[str]]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and (self.depth or found.get("id") == self.table_id):
            self.depth += 1
        elif self.depth and tag == "tbody":
            self.in_body = True
        elif self.depth and self.in_body and tag == "tr":
            self.rows.append((found.get("class") or "", []))
        elif self.depth and self.in_body and tag == "td":
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1
        elif tag == "tbody":
            self.in_body = False
        elif tag == "td" and self.cell is not None:
            self.rows[-1][1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def _table_rows(page: str, table_id: str) -> list[tuple[str, list[str]]]:
    parser = _Rows(table_id)
    parser.feed(page)
    return parser.rows


def test_report_is_one_offline_page_with_every_section(study_dir: Path) -> None:
    path = study_dir / "report.html"
    page = path.read_text(encoding="utf-8")
    bundle = get_plotlyjs()
    assert page.count(bundle) == 1  # plotly.js inlined exactly once
    rest = page.replace(bundle, "")
    assert rest.startswith("<!doctype html>")
    assert rest.count("<html") == 1 and rest.count("</html>") == 1
    assert not re.search(r"<script[^>]*\bsrc\s*=", rest)  # no external script at all
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", rest)
    for key, _ in SECTIONS:
        assert f'<section id="sec-{key}">' in rest
    for name in FIGURES:
        assert f'id="fig-{name}"' in rest
    assert 'class="missing"' not in rest  # this study has every input


def test_scorecard_table_has_every_row_and_marks_the_best_engine(study_dir: Path) -> None:
    card = pd.read_parquet(study_dir / "scorecard.parquet")
    card = card[card["protocol"] != "policy_hedging"]  # drawn in their own section
    assert set(card["scenario"]) == {"market", "vol-up-20", "crash-combo"}
    rows = _table_rows((study_dir / "report.html").read_text(encoding="utf-8"), "scorecard-table")
    assert len(rows) == len(card)
    # the leading cells are engine, protocol, regime, scenario
    best = {tuple(cells[1:4]): cells[0] for cls, cells in rows if "best" in cls.split()}
    groups = card.groupby(["protocol", "regime", "scenario"])
    winners = card.loc[groups["iv_rmse_vol_pts"].idxmin()]
    assert best == {
        (r.protocol, r.regime, r.scenario): r.engine for r in winners.itertuples(index=False)
    }


def test_hedging_table_has_each_regime_and_delta(study_dir: Path) -> None:
    rows = _table_rows((study_dir / "report.html").read_text(encoding="utf-8"), "hedging-table")
    steps = pd.read_parquet(study_dir / "hedging.parquet")
    market = steps[steps["scenario"] == "market"]
    deltas = ("bs", "ssvi", "black76-flat", "svi-plain", "gbm-fast", "gbm-slow")
    # a learned engine hedges only after its training snapshots
    assert {(cells[0], cells[1]) for _, cells in rows} == {
        (r, d) for r, g in market.groupby("regime") for d in deltas if g[f"delta_{d}"].notna().any()
    }


def test_missing_inputs_are_said_not_raised(study_dir: Path, tmp_path: Path) -> None:
    card = pd.read_parquet(study_dir / "scorecard.parquet")
    market = card[card["scenario"] == "market"].drop(columns=["gen_gap"])
    market.to_parquet(tmp_path / "scorecard.parquet")
    shutil.copy(study_dir / "study.json", tmp_path / "study.json")
    page = write_study_report(tmp_path).read_text(encoding="utf-8")
    for sentence in (
        "No generalization gap",
        "No stress results",
        "no predictions.parquet",
        "no hedging.parquet",
        "no regimes.parquet",
    ):
        assert sentence in page
    rows = _table_rows(page, "scorecard-table")
    assert len(rows) == len(market)
    assert 'id="fig-regimes"' in page and 'id="fig-gap"' not in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_page_renders_in_headless_chromium(study_dir: Path, tmp_path: Path) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip("no chromium or chromium-browser on PATH to render the page")
    done = subprocess.run(
        [
            binary,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
            (study_dir / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "Uncaught" not in done.stderr, done.stderr[-2000:]
    starts = {name: dom.find(f'id="fig-{name}"') for name in FIGURES}
    assert all(at >= 0 for at in starts.values()), starts
    ends = [*sorted(starts.values())[1:], len(dom)]
    for name, at in starts.items():
        end = min(e for e in ends if e > at)
        assert 'class="main-svg"' in dom[at:end], f"chart {name} did not render"


def test_learned_hedging_has_its_own_section_and_checks(study_dir: Path) -> None:
    page = (study_dir / "report.html").read_text(encoding="utf-8")
    rows = _table_rows(page, "policy-table")
    strategies = {cells[2] for _, cells in rows}
    assert {"black76", "gated_ensemble", "no_hedge"} <= strategies
    assert {cells[1] for _, cells in rows} == {"calm", "crash"}
    checks = _table_rows(page, "policy-checks")
    assert [cells[0] for _, cells in checks] == ["out_of_regime", "in_regime"]
    # the policy rows are not in the engines' scorecard
    assert not any("gated_ensemble" in cells for _, cells in _table_rows(page, "scorecard-table"))
