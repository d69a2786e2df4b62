"""A study from TOML to scorecard: regimes, generalization gap, hedging, cache, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.lab.test_policy_hedging import TINY
from volguard.cli.main import app
from volguard.errors import ConfigError
from volguard.lab.policy_hedging import BASELINES, GATED
from volguard.lab.study import Study, run_study

SCENARIO = """
preset = "calm-2026-01"
script = [["calm", 2], ["crash", 1.5]]
"""

STUDY = """
name = "tiny"
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
[protocols]
nowcast = [{{ mode = "wings", test_size = 0.2 }}, {{ mode = "illiquid" }}]
forecast = {{ horizon = 1 }}
hedging = true
"""


@pytest.fixture
def study_file(tmp_path: Path) -> Path:
    scenario = tmp_path / "shift.toml"
    scenario.write_text(SCENARIO)
    path = tmp_path / "study.toml"
    path.write_text(STUDY.format(scenario=scenario))
    return path


def test_study_scores_every_engine_protocol_and_regime_and_resumes(
    study_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    card = run_study(Study.from_toml(study_file), out)
    assert set(card["regime"]) == {"calm", "crash"}
    assert set(card["protocol"]) == {"nowcast-wings", "nowcast-illiquid", "forecast-1"}
    assert set(card["scenario"]) == {"market"}
    # 3 engines (ssvi, black76-flat and the baseline svi-plain) x 3 protocols x 2 regimes, the
    # forecast's persistence and sticky-strike svi-plain baselines, the nowcast's venue mark
    assert len(card) == 3 * 3 * 2 + 3 * 2 + 2
    assert set(card.loc[card["protocol"] == "forecast-1", "engine"]) == {
        "ssvi",
        "black76-flat",
        "svi-plain",
        "svi-plain-strike",
        "persist-strike",
        "persist-moneyness",
    }
    core = card.dropna(subset=["snap_iv_rmse_vol_pts"])
    assert core["skill"].notna().all() and (core["snap_iv_rmse_vol_pts"] > 0).all()
    desk = pd.read_csv(out / "desk.csv")
    assert set(desk["bucket"]) <= {"core", "short", "wing"}
    assert set(desk.loc[desk["baseline"], "engine"]) == {
        "svi-plain",
        "svi-plain-strike",
        "venue-mark",
        "persist-strike",
        "persist-moneyness",
    }
    calm = card[card["regime"] == "calm"]
    assert (calm["gen_gap"] == 1.0).all()
    engines = card[card["engine"].isin(["ssvi", "black76-flat"])]
    assert engines["hedge_err_std"].notna().all() and card["true_iv_rmse_vol_pts"].notna().all()
    saved = pd.read_csv(out / "scorecard.csv")
    assert len(saved) == len(card)
    first = json.loads((out / "study.json").read_text())
    chosen = {row["protocol"]: row for row in first["selection"]}
    pred = pd.read_parquet(out / "predictions.parquet")
    # every prediction after a group's first snapshot has a causal 90 % interval
    assert {"lower_iv", "upper_iv", "covered"} <= set(pred)
    assert (
        card["coverage_pct"].between(30, 100).all() and (card["interval_width_vol_pts"] > 0).all()
    )
    forecasts = pred[pred["protocol"] == "forecast-1"]
    sq = ((forecasts["model_iv"] - forecasts["mid_iv"]) ** 2).groupby(forecasts["engine"]).mean()
    assert chosen["forecast-1"]["best_engine"] == sq.idxmin()
    assert chosen["forecast-1"]["snapshots"] == 6
    assert first["cells_cached"] == 0 and first["cells"] == 7  # one per snapshot
    regimes = pd.read_parquet(out / "regimes.parquet")
    assert len(regimes) == 7 and {"atm_30d", "regime"} <= set(regimes)
    steps = pd.read_parquet(out / "hedging.parquet")
    assert set(steps["ts"]) == set(regimes["ts"].iloc[:-1]) and steps["regime"].notna().all()
    again = run_study(Study.from_toml(study_file), out)
    assert json.loads((out / "study.json").read_text())["cells_cached"] == first["cells"]
    pd.testing.assert_frame_equal(again, card)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "[data]\nsimulate = 'markov'\n[engines]\nnope = {}\n[protocols]\nhedging = true",
            "'nope' is not an engine",
        ),
        ("[data]\nsimulate = 'markov'\n[engines]\nsvi = {}\n[protocols]\nbacktest = 1", "unknown"),
        ("[engines]\nsvi = {}\n[protocols]\nhedging = true", "[data] is missing"),
        ("colour = 1", "[colour]: unknown key (did you mean"),
        (
            "[data]\nsimulate = 'markov'\n[engines]\nsvi = {}\n[protocols]\nhedging = true\n"
            "[uncertainty]\nconfidence = 0.9",
            "[uncertainty] confidence: unknown key",
        ),
        (
            "[data]\nsimulate = 'markov'\n[engines]\nsvi = {}\n[protocols]\nhedging = true\n"
            "[stress]\nscenarios = ['meteor']",
            "[stress] scenarios: expected a list of one of",
        ),
        (
            "[data]\nsimulate = 'markov'\n[engines]\nsvi = {}\n[protocols]\n"
            "nowcast = [{ mode = 'wings' }, { mode = 'edges' }]",
            "[protocols] nowcast[1].mode: expected one of 'random'",
        ),
        (
            "[data]\nsimulate = 'markov'\n[engines]\nsvi = {}\n[protocols]\nhedging = true\n"
            "[stress]\nadversarial = { engine = 'oracle' }",
            "[stress] adversarial.engine: expected one of",
        ),
        (
            "[data]\ndataset = 'mine'\n[engines]\nsvi = {}\n[protocols]\nhedging = true",
            "dataset 'mine' is unknown",
        ),
    ],
)
def test_bad_study_files_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        Study.from_toml(path)
    assert str(path) in str(info.value) and needle in str(info.value)


def test_cli_study(study_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["study", str(study_file), "--out", str(tmp_path / "o"), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "scorecard" in result.output and (tmp_path / "o" / "predictions.parquet").exists()


def test_stress_scenarios_rerun_every_protocol_on_stressed_snapshots(
    study_file: Path, tmp_path: Path
) -> None:
    text = study_file.read_text() + (
        '[stress]\nscenarios = ["vol-up-20", "crunch-mild"]\nevery = 3\n'
        'adversarial = { engine = "ssvi", maxiter = 1, popsize = 1 }\n'
    )
    study_file.write_text(text)
    out = tmp_path / "out"
    card = run_study(Study.from_toml(study_file), out).set_index(
        ["engine", "protocol", "regime", "scenario"]
    )
    stressed = card.xs("vol-up-20", level="scenario")
    assert set(stressed.index.get_level_values("protocol")) == {
        "nowcast-wings",
        "nowcast-illiquid",
        "shock",
    }
    # the stressed surface is the truth: every stressed prediction is scored against it
    assert stressed["true_iv_rmse_vol_pts"].notna().all()
    hedged = stressed.loc[["ssvi", "black76-flat"]]  # the persistence baselines do not hedge
    assert hedged["hedge_err_std"].notna().all()
    # vols up 20 %: engines fitted before the shock are far below the stressed truth; SSVI
    # fitted on the stressed quotes is not (flat Black misses the wings either way)
    pred = pd.read_parquet(out / "predictions.parquet")
    bias = (
        pred[pred["scenario"] == "vol-up-20"]
        .assign(err=lambda p: p["model_iv"] - p["true_iv"])
        .groupby(["protocol", "engine"])["err"]
        .mean()
    )
    assert (bias["shock"] < -0.05).all()
    assert abs(bias["nowcast-wings", "ssvi"]) < 0.2 * abs(bias["shock", "ssvi"])
    # stressed snapshots 0, 3, 6 only; the market's cells are unchanged
    pred = pd.read_parquet(out / "predictions.parquet")
    assert pred.loc[pred["scenario"] == "crunch-mild", "ts"].nunique() == 3
    # the adversarial stress found for ssvi on each stressed snapshot hurts ssvi more than
    # the named scenarios do (it was searched for that)
    ssvi = pred[(pred["engine"] == "ssvi") & (pred["protocol"] == "nowcast-wings")]
    err = ((ssvi["model_iv"] - ssvi["true_iv"]) ** 2).groupby(ssvi["scenario"]).mean()
    assert err["adversarial"] > err[["vol-up-20", "crunch-mild"]].max()
    assert (
        not pred.loc[pred["scenario"] == "crunch-mild", "gen_gap" if "gen_gap" in pred else "ts"]
        .isna()
        .any()
    )


def test_ray_and_process_pool_give_the_local_scorecard(study_file: Path, tmp_path: Path) -> None:
    study = Study.from_toml(study_file)
    local = run_study(study, tmp_path / "local")
    pooled = run_study(study, tmp_path / "pool", workers=2)
    on_ray = run_study(study, tmp_path / "ray", executor="ray", workers=2)
    timing = ["fit_ms"]  # wall time, the one thing that differs
    pd.testing.assert_frame_equal(pooled.drop(columns=timing), local.drop(columns=timing))
    pd.testing.assert_frame_equal(on_ray.drop(columns=timing), local.drop(columns=timing))
    assert json.loads((tmp_path / "ray" / "study.json").read_text())["executor"] == "ray"


def test_learned_engines_train_on_the_first_half_of_the_training_regime(
    study_file: Path, tmp_path: Path
) -> None:
    text = study_file.read_text().replace('"black76-flat" = {}', "gbm = { half_life_days = 1.0 }")
    study_file.write_text(text)
    study = Study.from_toml(study_file)
    out = tmp_path / "out"
    card = run_study(study, out)
    pred = pd.read_parquet(out / "predictions.parquet")
    regimes = pd.read_parquet(out / "regimes.parquet")
    calm = regimes.loc[regimes["regime"] == "calm", "ts"].sort_values()
    last_trained = calm.iloc[len(calm) // 2 - 1]  # 4 calm snapshots: trained on the first 2
    gbm = pred[pred["engine"] == "gbm"]
    assert len(gbm) and gbm["ts"].min() > last_trained  # scored only after its training data
    assert pred.loc[pred["engine"] == "ssvi", "ts"].min() < last_trained
    rows = card[(card["engine"] == "gbm") & (card["protocol"] == "forecast-1")]
    assert set(rows["regime"]) == {"calm", "crash"} and rows["gen_gap"].notna().all()
    # the cache knows the training: a second run reads every cell back
    again = run_study(study, out)
    assert json.loads((out / "study.json").read_text())["cells_cached"] == 7
    pd.testing.assert_frame_equal(again, card)


def test_learned_engines_need_snapshots_of_their_training_regime(
    study_file: Path, tmp_path: Path
) -> None:
    text = study_file.read_text().replace('"black76-flat" = {}', "gbm = {}")
    study_file.write_text(text + '[training]\nregime = "rally"\n')
    with pytest.raises(ConfigError, match=r"in_regime\), which has no BTC snapshot"):
        run_study(Study.from_toml(study_file), tmp_path / "out")


def test_an_ensemble_reports_its_disagreement_per_quote(study_file: Path, tmp_path: Path) -> None:
    text = study_file.read_text().replace(
        '"black76-flat" = {}', 'ensemble = { members = ["ssvi", "sabr"] }'
    )
    study_file.write_text(text)
    card = run_study(Study.from_toml(study_file), tmp_path / "out")
    pred = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    ensemble = pred[pred["engine"] == "ensemble"]
    assert len(ensemble) and (ensemble["disagreement_vol_pts"] >= 0).all()
    assert pred.loc[pred["engine"] == "ssvi", "disagreement_vol_pts"].isna().all()
    rows = card[card["engine"] == "ensemble"]
    assert (rows["disagreement_vol_pts"] > 0).all()


def test_aliases_and_walk_forward_retraining(study_file: Path, tmp_path: Path) -> None:
    engines = (
        '"gbm-slow" = { engine = "gbm", half_life_days = 30.0 }\n'
        '"gbm-fast" = { engine = "gbm", half_life_days = 0.5 }'
    )
    text = study_file.read_text().replace('"black76-flat" = {}', engines)
    study_file.write_text(text + "[training]\nretrain_every = 2\n")
    out = tmp_path / "out"
    card = run_study(Study.from_toml(study_file), out)
    assert {"gbm-slow", "gbm-fast"} <= set(card["engine"])
    about = json.loads((out / "study.json").read_text())["training"]["BTC"]
    # first trained on calm snapshots 0-1, then again before snapshots 4 and 6 on all before
    assert [entry["from_snapshot"] for entry in about] == [2, 4, 6]
    assert about[-1]["trained_on"].endswith(":6")
    pred = pd.read_parquet(out / "predictions.parquet")
    slow = pred[pred["engine"] == "gbm-slow"].set_index(["protocol", "ts", "instrument"])
    fast = pred[pred["engine"] == "gbm-fast"].set_index(["protocol", "ts", "instrument"])
    # the half-lives differ only once the training set spans more than a day
    late = slow.index.get_level_values("ts") >= slow.index.get_level_values("ts").unique()[-1]
    assert not np.allclose(slow.loc[late, "model_iv"], fast.loc[slow.index[late], "model_iv"])


def test_a_held_out_regime_early_stops_training_and_is_never_trained_on(
    study_file: Path, tmp_path: Path
) -> None:
    text = study_file.read_text().replace('"black76-flat" = {}', "gbm = {}")
    study_file.write_text(text + '[training]\nretrain_every = 2\nvalidation = "crash"\n')
    out = tmp_path / "out"
    run_study(Study.from_toml(study_file), out)
    about = json.loads((out / "study.json").read_text())["training"]["BTC"]
    regimes = pd.read_parquet(out / "regimes.parquet").sort_values("ts")
    crash = regimes.index[regimes["regime"].to_numpy() == "crash"]
    assert len(crash) and about[0]["trained_on"].endswith(":2")  # no crash seen yet
    # the last model has seen crash snapshots: they validate it and it trains on the rest
    seen = about[-1]["from_snapshot"]
    n_crash = int((regimes["regime"].iloc[:seen] == "crash").sum())
    assert n_crash > 0
    assert about[-1]["trained_on"].endswith(f":{seen - n_crash}|validation crash:{n_crash}")


def test_the_validation_regime_cannot_be_the_training_regime(
    study_file: Path, tmp_path: Path
) -> None:
    study_file.write_text(study_file.read_text() + '[training]\nvalidation = "calm"\n')
    with pytest.raises(ConfigError, match="validation 'calm' is the training regime"):
        Study.from_toml(study_file)


def test_engines_own_intervals_are_scored_beside_the_lab_s(
    study_file: Path, tmp_path: Path
) -> None:
    text = study_file.read_text().replace(
        '"black76-flat" = {}', 'conformal = { base = "svi", folds = 2 }'
    )
    study_file.write_text(text)
    card = run_study(Study.from_toml(study_file), tmp_path / "out")
    pred = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    own = pred[pred["engine"] == "conformal"]
    assert len(own) and (own["engine_lower_iv"] <= own["engine_upper_iv"]).all()
    assert pred.loc[pred["engine"] == "ssvi", "engine_lower_iv"].isna().all()
    rows = card[card["engine"] == "conformal"]
    assert rows["engine_coverage_pct"].between(0, 100).all()
    assert (rows["engine_width_vol_pts"] > 0).all()
    assert card.loc[card["engine"] == "ssvi", "engine_coverage_pct"].isna().all()
    mid, lo, hi = (own[c] for c in ("mid_iv", "engine_lower_iv", "engine_upper_iv"))
    pooled = 100 * ((lo <= mid) & (mid <= hi))[mid.notna()].mean()
    weights = rows["n"] / rows["n"].sum()
    assert pooled == pytest.approx(float((rows["engine_coverage_pct"] * weights).sum()), rel=0.05)


def test_the_greeks_protocol_scores_the_learned_deltas_on_marked_steps(
    study_file: Path, tmp_path: Path
) -> None:
    text = study_file.read_text().replace("hedging = true", 'hedging = { price = "mark" }')
    study_file.write_text(text.replace("[protocols]", "[protocols]\ngreeks = {}"))
    card = run_study(Study.from_toml(study_file), tmp_path / "out")
    steps = pd.read_parquet(tmp_path / "out" / "hedging.parquet")
    assert {"delta_sm", "delta_regime", "delta_mv_roll", "delta_regime_guard"} <= set(steps.columns)
    names = {
        "delta-sticky-moneyness",
        "delta-regime-aware",
        "delta-mv-rolling",
        "delta-regime-guard",  # the guard's regime model, scored by the lab
    }
    rows = card[card["engine"].isin(names) & card["hedge_err_std_bp"].notna()]
    assert set(rows["engine"]) == names and (rows["hedge_err_std_bp"] > 0).all()
    market = steps["scenario"] == "market"
    assert steps.loc[market, "delta_regime"].notna().all()
    assert steps.loc[~market, "delta_regime"].isna().all()  # stressed steps are not history
    assert steps.loc[market, "delta_regime_guard"].notna().all()


def test_greeks_need_the_hedging_protocol(study_file: Path) -> None:
    text = study_file.read_text().replace("hedging = true", "hedging = false")
    study_file.write_text(text.replace("[protocols]", "[protocols]\ngreeks = {}"))
    with pytest.raises(ConfigError, match="greeks scores deltas on the hedging steps"):
        Study.from_toml(study_file)


def test_the_policy_hedging_protocol_adds_its_rows_and_checks(
    study_file: Path, tmp_path: Path
) -> None:
    table = ", ".join(f"{k} = {json.dumps(v)}" for k, v in TINY.items())
    text = study_file.read_text().replace(
        "[protocols]", f"[protocols]\npolicy_hedging = {{ {table} }}"
    )
    study_file.write_text(text)
    card = run_study(Study.from_toml(study_file), tmp_path / "out")
    rows = card[card["protocol"] == "policy_hedging"]
    assert {*BASELINES, GATED} <= set(rows["engine"])
    assert set(rows.loc[~rows["engine"].str.startswith("check:"), "regime"]) == {"calm", "crash"}
    assert (rows["scenario"] == "simulated").all()
    assert rows["engine"].str.startswith("check:").any()
    # the study's other protocols are untouched
    assert (card["protocol"] != "policy_hedging").sum() > 0


def test_policy_hedging_settings_are_checked_when_the_study_is_read(study_file: Path) -> None:
    text = study_file.read_text().replace(
        "[protocols]", "[protocols]\npolicy_hedging = { nope = 1 }"
    )
    study_file.write_text(text)
    with pytest.raises(ConfigError, match="policy_hedging"):
        Study.from_toml(study_file)
