"""Ordinary mistakes, one table: each ends in exit code 2, exactly one line on stderr naming the
input, checked before any work (no run folder left behind), and the store unchanged.

``python -m tests.cli.test_bad_inputs`` prints the table with the messages (for the notes).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.guard.conftest import synthetic_market, synthetic_snapshot, write_store
from volguard.cli.main import app

runner = CliRunner()
STUDY = "[data]\nsimulate = 'markov'\n{data}[engines]\n{engines}\n[protocols]\nhedging = true\n"
AT = ["--underlying", "BTC", "--at", "2026-01-03"]

# (name, arguments with {store} {tmp} {file} {bad} placeholders, text the line must hold)
CASES: list[tuple[str, list[str], str]] = [
    # ingest
    ("ingest-format", ["ingest", "{good}", "--format", "nope", "--store", "{store}"], "'nope'"),
    (
        "ingest-missing-file",
        ["ingest", "{tmp}/gone.parquet", "--format", "quotes", "--store", "{store}"],
        "gone.parquet",
    ),
    (
        "ingest-bad-file-1-worker",
        ["ingest", "{good}", "{bad}", "--format", "quotes", "--store", "{store}", "--workers", "1"],
        "bad.parquet",
    ),
    (
        "ingest-bad-file-2-workers",
        ["ingest", "{good}", "{bad}", "--format", "quotes", "--store", "{store}", "--workers", "2"],
        "bad.parquet",
    ),
    (
        "ingest-store-is-file",
        ["ingest", "{good}", "--format", "quotes", "--store", "{file}"],
        "--store",
    ),
    (
        "ingest-workers-0",
        ["ingest", "{good}", "--format", "quotes", "--store", "{store}", "--workers", "0"],
        "--workers",
    ),
    (
        "ingest-mapping-missing",
        [
            "ingest",
            "{good}",
            "--format",
            "csv",
            "--store",
            "{store}",
            "--mapping",
            "{tmp}/gone.toml",
        ],
        "gone.toml",
    ),
    ("ingest-no-store-option", ["ingest", "{good}", "--format", "quotes"], "--store"),
    # data
    ("summary-store-missing", ["data", "summary", "--store", "{tmp}/nowhere"], "nowhere"),
    (
        "snapshot-bad-at",
        ["data", "snapshot", "--store", "{store}", "--underlying", "BTC", "--at", "yesterday"],
        "--at 'yesterday'",
    ),
    (
        "snapshot-far-at",
        ["data", "snapshot", "--store", "{store}", "--underlying", "BTC", "--at", "2031-01-01"],
        "nearest is 2026-01-06",
    ),
    # fit
    ("fit-engine", ["fit", "nope", "--store", "{store}", *AT, "--out", "{tmp}/o"], "'nope'"),
    (
        "fit-learned",
        ["fit", "gbm", "--store", "{store}", *AT, "--out", "{tmp}/o"],
        "needs training",
    ),
    (
        "fit-at-word",
        [
            "fit",
            "svi",
            "--store",
            "{store}",
            "--underlying",
            "BTC",
            "--at",
            "yesterday",
            "--out",
            "{tmp}/o",
        ],
        "--at 'yesterday'",
    ),
    (
        "fit-at-impossible",
        [
            "fit",
            "svi",
            "--store",
            "{store}",
            "--underlying",
            "BTC",
            "--at",
            "2026-13-45",
            "--out",
            "{tmp}/o",
        ],
        "2026-13-45",
    ),
    (
        "fit-at-outside",
        [
            "fit",
            "svi",
            "--store",
            "{store}",
            "--underlying",
            "BTC",
            "--at",
            "2031-01-01",
            "--out",
            "{tmp}/o",
        ],
        "nearest is 2026-01-06",
    ),
    (
        "fit-store-missing",
        ["fit", "svi", "--store", "{tmp}/nowhere", *AT, "--out", "{tmp}/o"],
        "nowhere",
    ),
    ("fit-store-is-file", ["fit", "svi", "--store", "{file}", *AT, "--out", "{tmp}/o"], "a file"),
    ("fit-out-is-file", ["fit", "svi", "--store", "{store}", *AT, "--out", "{file}"], "--out"),
    (
        "fit-out-read-only",
        ["fit", "svi", "--store", "{store}", *AT, "--out", "/sys/volguard"],
        "not writable",
    ),
    (
        "fit-underlying",
        [
            "fit",
            "svi",
            "--store",
            "{store}",
            "--underlying",
            "SOL",
            "--at",
            "2026-01-03",
            "--out",
            "{tmp}/o",
        ],
        "'SOL'",
    ),
    (
        "fit-weighting",
        ["fit", "svi", "--store", "{store}", *AT, "--out", "{tmp}/o", "--weighting", "vegas"],
        "'vegas'",
    ),
    (
        "fit-grid-order",
        ["fit", "svi", "--store", "{store}", *AT, "--out", "{tmp}/o", "--grid", "1:0:0.1"],
        "--grid",
    ),
    (
        "fit-grid-text",
        ["fit", "svi", "--store", "{store}", *AT, "--out", "{tmp}/o", "--grid", "wide"],
        "--grid",
    ),
    # simulate
    ("simulate-scenario", ["simulate", "nope", "--out", "{tmp}/o"], "nope"),
    ("simulate-days", ["simulate", "markov", "--out", "{tmp}/o", "--days", "-1"], "days"),
    ("simulate-days-text", ["simulate", "markov", "--out", "{tmp}/o", "--days", "ten"], "--days"),
    ("simulate-out-is-file", ["simulate", "markov", "--out", "{file}"], "--out"),
    # stress and adversarial
    (
        "stress-scenario",
        ["stress", "meteor", "--store", "{store}", *AT, "--out", "{tmp}/o"],
        "meteor",
    ),
    (
        "stress-at",
        [
            "stress",
            "vol-up-20",
            "--store",
            "{store}",
            "--underlying",
            "BTC",
            "--at",
            "tomorrow",
            "--out",
            "{tmp}/o",
        ],
        "--at 'tomorrow'",
    ),
    (
        "stress-toml-name",
        ["stress", "{tmp}/s.toml:nope", "--store", "{store}", *AT, "--out", "{tmp}/o"],
        "s.toml",
    ),
    (
        "adversarial-objective",
        ["adversarial", "svi", "--store", "{store}", *AT, "--out", "{tmp}/o", "--objective", "pnl"],
        "'pnl'",
    ),
    (
        "adversarial-engine",
        ["adversarial", "nope", "--store", "{store}", *AT, "--out", "{tmp}/o"],
        "'nope'",
    ),
    # study
    ("study-missing", ["study", "{tmp}/gone.toml", "--out", "{tmp}/o"], "gone.toml"),
    ("study-key", ["study", "{tmp}/dayz.toml", "--out", "{tmp}/o"], "dayz"),
    (
        "study-engine-setting",
        ["study", "{tmp}/weighting.toml", "--out", "{tmp}/o"],
        "svi.weighting",
    ),
    ("study-not-toml", ["study", "{file}", "--out", "{tmp}/o"], "not a readable TOML"),
    (
        "study-workers",
        ["study", "{tmp}/dayz.toml", "--out", "{tmp}/o", "--workers", "0"],
        "--workers",
    ),
    (
        "study-executor",
        ["study", "{tmp}/good.toml", "--out", "{tmp}/o", "--executor", "dask"],
        "'dask'",
    ),
    # guard replay
    (
        "replay-engine",
        [
            "guard",
            "replay",
            "--store",
            "{store}",
            "--underlying",
            "BTC",
            "--out",
            "{tmp}/o",
            "--engine",
            "nope",
        ],
        "'nope'",
    ),
    (
        "replay-fallback",
        [
            "guard",
            "replay",
            "--store",
            "{store}",
            "--underlying",
            "BTC",
            "--out",
            "{tmp}/o",
            "--fallback",
            "nn",
        ],
        "needs training",
    ),
    (
        "replay-from",
        [
            "guard",
            "replay",
            "--store",
            "{store}",
            "--underlying",
            "BTC",
            "--out",
            "{tmp}/o",
            "--from",
            "yesterday",
        ],
        "--from 'yesterday'",
    ),
    (
        "replay-to",
        [
            "guard",
            "replay",
            "--store",
            "{store}",
            "--underlying",
            "BTC",
            "--out",
            "{tmp}/o",
            "--to",
            "2026-02-30",
        ],
        "--to '2026-02-30'",
    ),
    (
        "replay-empty-window",
        [
            "guard",
            "replay",
            "--store",
            "{store}",
            "--underlying",
            "BTC",
            "--out",
            "{tmp}/o",
            "--from",
            "2031-01-01",
        ],
        "no BTC snapshot",
    ),
    (
        "replay-warmup",
        [
            "guard",
            "replay",
            "--store",
            "{store}",
            "--underlying",
            "BTC",
            "--out",
            "{tmp}/o",
            "--warmup",
            "0",
        ],
        "--warmup",
    ),
    (
        "replay-speed",
        [
            "guard",
            "replay",
            "--store",
            "{store}",
            "--underlying",
            "BTC",
            "--out",
            "{tmp}/o",
            "--speed",
            "0",
        ],
        "--speed",
    ),
    (
        "replay-underlying",
        ["guard", "replay", "--store", "{store}", "--underlying", "SOL", "--out", "{tmp}/o"],
        "'SOL'",
    ),
    (
        "replay-store-missing",
        ["guard", "replay", "--store", "{tmp}/nowhere", "--underlying", "BTC", "--out", "{tmp}/o"],
        "nowhere",
    ),
    # serve (refused before it listens)
    (
        "serve-engine",
        ["serve", "--store", "{store}", "--underlying", "BTC", "--engine", "x"],
        "'x'",
    ),
    (
        "serve-port",
        ["serve", "--store", "{store}", "--underlying", "BTC", "--port", "70000"],
        "--port",
    ),
    (
        "serve-store-missing",
        ["serve", "--store", "{tmp}/nowhere", "--underlying", "BTC"],
        "nowhere",
    ),
    ("serve-underlying", ["serve", "--store", "{store}", "--underlying", "SOL"], "SOL"),
    (
        "serve-from",
        ["serve", "--store", "{store}", "--underlying", "BTC", "--from", "soon"],
        "--from 'soon'",
    ),
    (
        "serve-public-no-token",
        ["serve", "--store", "{store}", "--underlying", "BTC", "--host", "0.0.0.0"],
        "--token",
    ),
    # the command line itself
    ("unknown-command", ["fitt"], "fitt"),
    ("unknown-option", ["fit", "svi", "--stor", "x"], "--stor"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A store of six synthetic BTC snapshots and the files the cases name."""
    tmp = tmp_path_factory.mktemp("bad-inputs")
    write_store(tmp / "store", synthetic_market(6, None))
    rng = __import__("numpy").random.default_rng(0)
    start = __import__("pandas").Timestamp("2026-02-01 09:00", tz="UTC")
    synthetic_snapshot(start, 0.5, -0.1, rng).to_parquet(tmp / "good.parquet")
    (tmp / "bad.parquet").write_bytes(b"PAR1 not really")
    (tmp / "a-file").write_text("not a folder, not TOML = = =\n")
    (tmp / "s.toml").write_text("[only]\nsurface = { level = 0.1 }\n")
    (tmp / "dayz.toml").write_text(STUDY.format(data="dayz = 2\n", engines="svi = {}"))
    (tmp / "weighting.toml").write_text(STUDY.format(data="", engines="svi = { weighting = 3 }"))
    (tmp / "good.toml").write_text(STUDY.format(data="days = 1\n", engines="svi = {}"))
    return {
        "store": str(tmp / "store"),
        "tmp": str(tmp),
        "file": str(tmp / "a-file"),
        "good": str(tmp / "good.parquet"),
        "bad": str(tmp / "bad.parquet"),
    }


def _state(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "_lock"
    }


def invoke(args: list[str], inputs: dict[str, str]) -> tuple[int, str]:
    result = runner.invoke(app, [a.format(**inputs) for a in args])
    return result.exit_code, result.stderr


@pytest.mark.parametrize(("args", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_and_exit_2(
    inputs: dict[str, str], args: list[str], needle: str
) -> None:
    store = Path(inputs["store"])
    before = _state(store)
    code, stderr = invoke(args, inputs)
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert needle.format(**inputs) in lines[0]
    assert _state(store) == before
    assert not (Path(inputs["tmp"]) / "o").exists()  # no empty run folder left behind
    assert not (store.parent / "nowhere").exists()


def test_the_table_is_long_enough() -> None:
    assert len(CASES) >= 40
    commands = {c[1][0] for c in CASES}
    assert {"ingest", "fit", "simulate", "stress", "study", "guard", "serve"} <= commands


if __name__ == "__main__":  # the table for the notes: input, message, exit code
    import tempfile

    root = Path(tempfile.mkdtemp())

    class _Factory:
        def mktemp(self, name: str) -> Path:
            return root

    made = inputs.__wrapped__(_Factory())  # type: ignore[attr-defined]
    print("| input | message | exit |\n| --- | --- | --- |")
    for _, args, _ in CASES:
        code, stderr = invoke(args, made)
        line = stderr.strip().replace(str(root), "TMP").replace("|", "\\|")
        shown = " ".join(a.format(**made) for a in args).replace(str(root), "TMP")
        print(f"| `volguard {shown}` | {line} | {code} |")
    sys.exit(0)
