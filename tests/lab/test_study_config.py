"""Every key of a study file is checked when the file is read (lab.study_config)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from volguard.cli.main import app
from volguard.errors import ConfigError
from volguard.lab.study import Study

REPO = Path(__file__).resolve().parents[2]
BASE = "[data]\nsimulate = 'markov'\n{data}[engines]\n{engines}\n[protocols]\n{protocols}\n"


def _file(tmp_path: Path, data: str = "", engines: str = "svi = {}", protocols: str = "") -> Path:
    path = tmp_path / "study.toml"
    text = BASE.format(data=data, engines=engines, protocols=protocols or "hedging = true")
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("parts", "needle"),
    [
        ({"data": "dayz = 2\n"}, "[data] dayz: unknown key (did you mean 'days'?)"),
        ({"data": "days = 'ten'\n"}, "[data] days: expected float, got 'ten' (str)"),
        (
            {"protocols": "forecast = { horizonn = 1 }"},
            "[protocols] forecast.horizonn: unknown key (did you mean 'horizon'?)",
        ),
        (
            {"protocols": "forecast = { horizon = 1.5 }"},
            "[protocols] forecast.horizon: expected int, got 1.5",
        ),
        ({"engines": "svi = { weighting = 3 }"}, "[engines] svi.weighting: expected one of 'vega'"),
        (
            {"engines": "svi = { weighting = 'vegas' }"},
            "[engines] svi.weighting: expected one of 'vega', 'spread'",
        ),
        ({"engines": "sabr = { betta = 0.5 }"}, "[engines] sabr.betta: unknown key (did you mean"),
        ({"engines": "ssvi = 1"}, "[engines] ssvi: expected a table of settings"),
        ({"engines": "ensemble = { members = ['ssvi', 'svj'] }"}, "ensemble.members: expected"),
        ({"engines": "gbm = { n_estimatorz = 5 }"}, "(did you mean 'n_estimators'?)"),
        ({"protocols": "hedging = { price = 'last' }"}, "hedging.price: expected one of 'mid'"),
        ({"protocols": "greeks = { treshold = 2 }\nhedging = true"}, "(did you mean 'threshold'?)"),
        ({"data": "start = 'soon'\n"}, "[data] start: 'soon' is not a time"),
    ],
)
def test_a_mistake_inside_a_section_is_one_error_naming_file_key_and_nearest(
    tmp_path: Path, parts: dict[str, str], needle: str
) -> None:
    path = _file(tmp_path, **parts)
    with pytest.raises(ConfigError) as info:
        Study.from_toml(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and needle in message and "\n" not in message


def test_the_cli_stops_before_any_work_with_one_line(tmp_path: Path) -> None:
    path = _file(tmp_path, data="dayz = 2\n")
    result = CliRunner().invoke(app, ["study", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "dayz" in line and "'days'" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "example", sorted((REPO / "examples").glob("*.toml")), ids=lambda p: p.name
)
def test_every_example_study_passes_the_schema(example: Path) -> None:
    if "[data]" not in example.read_text(encoding="utf-8"):
        pytest.skip("not a study file")
    Study.from_toml(example)


def test_the_cell_cache_key_follows_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from volguard.lab import study as study_module

    snap = SimpleNamespace(ts=pd.Timestamp("2026-01-01", tz="UTC"))
    cell = study_module._Cell("BTC", 0, snap, None, None, ())  # type: ignore[arg-type]
    study = Study(name="s", data={"simulate": "markov"}, engines={"svi": {}}, protocols={})
    key = cell.key(study)
    assert study_module.code_fingerprint().startswith("0.")  # the version, then the hash
    monkeypatch.setattr(study_module, "code_fingerprint", lambda: "0.1.0+another-source")
    assert cell.key(study) != key


def test_a_store_that_does_not_exist_is_named(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text(
        f"[data]\nstore = '{tmp_path / 'nowhere'}'\n[engines]\nsvi = {{}}\n[protocols]\n"
        "hedging = true\n"
    )
    with pytest.raises(ConfigError, match=r"\[data\] store .*nowhere.*: no such folder"):
        Study.from_toml(path)


def test_a_truth_file_that_does_not_exist_is_named(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text(
        f"[data]\nstore = '{tmp_path}'\ntruth = '{tmp_path / 'nowhere.parquet'}'\n[engines]\n"
        "svi = {}\n[protocols]\nhedging = true\n"
    )
    with pytest.raises(ConfigError, match=r"\[data\] truth .*nowhere.parquet.*: no such file"):
        Study.from_toml(path)
    path.write_text(
        f"[data]\ndataset = 'deribit-svcj-snapshots'\ntruth = '{tmp_path}'\n[engines]\n"
        "svi = {}\n[protocols]\nhedging = true\n"
    )
    with pytest.raises(ConfigError, match=r"\[data\] truth belongs to a store"):
        Study.from_toml(path)
