"""A study: data, regime labels, engines, protocols and stress scenarios from one TOML file.

::

    name = "calm-to-crash"
    seed = 0

    [data]                        # a simulator preset or scenario file ...
    simulate = "calm-then-crash"
    days = 40
    freq = "12h"
    underlyings = ["BTC"]
    # store = "runs/store"        # ... or a quote store, with start = "...", end = "..."
    # dataset = "deribit-svcj-snapshots"   # ... or a data set under VOLGUARD_DATA, ingested once

    [regimes]
    method = "truth"              # truth (simulated runs), rules, hmm or ranges
    in_regime = "calm"            # the training regime of the generalization gap
    # ranges = { crash = ["2026-01-29", "2026-02-06"] }

    [engines]                     # registered names and their settings
    ssvi = {}
    "black76-flat" = {}
    # "gbm-fast" = { engine = "gbm", half_life_days = 5 }   # an alias: the same engine again

    [protocols]
    nowcast = [{ mode = "wings", test_size = 0.2 }, { mode = "illiquid" }]   # or one table
    forecast = { horizon = 1 }
    baselines = true             # false drops the baselines: svi-plain, venue-mark (nowcast),
                                 # persist-strike and persist-moneyness (forecast)
    hedging = true               # or { price = "mark" }: options marked at the venue's mark
    # greeks = {}                 # and the learned deltas on those steps (docs/greeks.md)

    [training]                    # optional, for learned engines (gbm, nn, hybrid)
    share = 0.5                   # train on the first half of the training regime ...
    # regime = "calm"             # (default: in_regime)
    # retrain_every = 10          # ... and again every 10 snapshots on all before (walk-forward)
    # validation = "crash"        # held out of training; its past snapshots stop it early

    [uncertainty]                 # optional: the conformal intervals of every prediction
    level = 0.9                   # (method aci or split, window, gamma, score abs or half_spread)

    [stress]                      # optional: the protocols again on stressed snapshots
    scenarios = ["vol-up-20", "crash-combo"]   # names of volguard.sim.stress_library.LIBRARY
    every = 4                     # stress every 4th snapshot
    adversarial = { engine = "ssvi", maxiter = 3 }   # and the worst stress for ssvi found there

:func:`run_study` evaluates every engine under every protocol on every snapshot. The unit of
work is a *cell*, one snapshot of one underlying: each engine is fitted on the nowcast split's
visible quotes (nowcast) and once on the whole snapshot, and that one fit serves the forecast of
snapshot ``i + horizon`` and the hedge from ``i`` to ``i + 1``. A stress scenario reruns the
cell's protocols on the stressed snapshot (:func:`volguard.sim.stress.stress`), scenario
``market`` being the snapshots as they were: nowcast on the stressed quotes, ``shock`` (the
engines fitted before the stress predict the stressed quotes) and a hedge across the stress.

Cells run on an executor (:mod:`volguard.lab.executors`: a local process pool or Ray) and are
cached under ``OUT/cache`` by a content hash of what they depend on, the volguard version and a
hash of its source included (:func:`code_fingerprint`), so an interrupted or repeated study
skips the cells already done and a changed engine never serves stale cells. The outputs
(``scorecard.csv`` and ``.parquet``, ``predictions.parquet``, ``hedging.parquet``,
``regimes.parquet``, ``study.json``) are each written atomically.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import volguard
from volguard.data.files import parquet_bytes, write_atomic
from volguard.data.ingest import build_store
from volguard.data.store import open_store, utc
from volguard.errors import ConfigError
from volguard.lab.executors import make_executor
from volguard.lab.greeks import LEARNED, add_learned_deltas
from volguard.lab.hedging import PriceSource, fit_min_variance, hedge_step, hedge_summary
from volguard.lab.metrics import generalization_gap, scorecard, selection_overfitting
from volguard.lab.policy_hedging import PolicyHedgingSettings, policy_hedging_protocol
from volguard.lab.predict import PLAIN_FIT, fit_engines, forecast_snapshot, nowcast_snapshot
from volguard.lab.regimes import hmm_labels, range_labels, rule_labels, snapshot_features
from volguard.lab.skill import STATS, desk_table
from volguard.lab.splits import NowcastSplit
from volguard.lab.study_config import check_study
from volguard.lab.uncertainty import conformal_intervals, coverage_table
from volguard.market.history import with_realized_vol
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import FIT_ERRORS
from volguard.models.greeks import SpotVolBeta
from volguard.models.registry import ENGINES, make_engine, resolve
from volguard.sim.adversarial import adversarial_search
from volguard.sim.scenario import load_scenario
from volguard.sim.simulator import simulate
from volguard.sim.stress import Reference, StressScenario, compose, stress
from volguard.sim.stress_library import LIBRARY

UNCERTAINTY = {"level": 0.9, "method": "aci", "window": 20, "gamma": 0.2, "score": "abs"}
"""Default settings of the conformal intervals every prediction gets (``[uncertainty]``).
ACI's step ``gamma = 0.2`` (per snapshot) was chosen on simulated data: after a variance jump it
re-enters 2 points of nominal in 5 snapshots where split conformal takes 19, and on
``examples/calm-to-crash.toml`` it covers 90.0 / 90.5 % in calm / crash (0.05: 89.5 / 89.8)."""
DATASETS = {"deribit-svcj-snapshots": ("deribit-snapshot", "snapshots/*.csv.gz")}
"""Data sets a study can name: format and file pattern under ``VOLGUARD_DATA/<name>``."""
MARKET = "market"
"""The scenario of the snapshots as they were (no stress)."""
ADVERSARIAL = "adversarial"
"""The scenario found by an adversarial search per stressed snapshot (``[stress] adversarial``)."""
TRAIN_SHARE = 0.5
"""Share of the training regime's snapshots (the first, in time) that learned engines train on."""


@dataclass(frozen=True)
class Study:
    """A parsed study file (see the module docstring)."""

    name: str
    data: dict[str, Any]
    engines: dict[str, dict[str, Any]]
    protocols: dict[str, Any]
    regimes: dict[str, Any] = field(default_factory=lambda: {"method": "rules"})
    stress: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    uncertainty: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    @classmethod
    def from_toml(cls, path: str | Path) -> Study:
        """Read and check a study file.

        Raises
        ------
        ConfigError
            Naming the file and the key that is unknown, missing or invalid.
        """
        try:
            doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: not a readable TOML study file ({exc})") from exc
        check_study(doc, path)
        for key in ("data", "engines", "protocols"):
            if not doc.get(key):
                raise ConfigError(f"{path}: [{key}] is missing or empty")
        protocols = doc["protocols"]
        if "policy_hedging" in protocols:
            try:
                PolicyHedgingSettings.from_mapping(protocols["policy_hedging"])
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{path}: [protocols] policy_hedging: {exc}") from exc
        if "greeks" in protocols and not protocols.get("hedging"):
            raise ConfigError(f"{path}: [protocols] greeks scores deltas on the hedging steps")
        if "greeks" in protocols:
            try:
                SpotVolBeta(**protocols["greeks"])
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{path}: [protocols] greeks: {exc}") from exc
        hedging = protocols.get("hedging")
        if isinstance(hedging, dict) and hedging.get("price", "mid") not in ("mid", "mark"):
            raise ConfigError(
                f"{path}: [protocols] hedging price {hedging['price']!r}: expected mid or mark"
            )
        sources = [k for k in ("simulate", "store", "dataset") if k in doc["data"]]
        if len(sources) != 1:
            raise ConfigError(
                f"{path}: [data] needs exactly one of 'simulate', 'store' and 'dataset', "
                f"got {sources}"
            )
        if "store" in doc["data"] and not Path(doc["data"]["store"]).is_dir():
            raise ConfigError(f"{path}: [data] store {doc['data']['store']!r}: no such folder")
        if "truth" in doc["data"] and "store" not in doc["data"]:
            raise ConfigError(f"{path}: [data] truth belongs to a store of simulated quotes")
        if "truth" in doc["data"] and not Path(doc["data"]["truth"]).is_file():
            raise ConfigError(f"{path}: [data] truth {doc['data']['truth']!r}: no such file")
        for key in ("start", "end"):
            if key in doc["data"]:
                try:
                    utc(str(doc["data"][key]))
                except ConfigError as exc:
                    raise ConfigError(f"{path}: [data] {key}: {exc}") from exc
        if doc["data"].get("dataset", next(iter(DATASETS))) not in DATASETS:
            raise ConfigError(
                f"{path}: [data] dataset {doc['data']['dataset']!r} is unknown; "
                f"expected one of {sorted(DATASETS)}"
            )
        nowcast = doc["protocols"].get("nowcast", [])
        for settings in [nowcast] if isinstance(nowcast, dict) else nowcast:
            try:
                NowcastSplit(**settings)
            except ValueError as exc:
                raise ConfigError(f"{path}: [protocols] nowcast {settings}: {exc}") from exc
        stressed = dict(doc.get("stress", {}))
        share = float(doc.get("training", {}).get("share", TRAIN_SHARE))
        if not 0 < share < 1:
            raise ConfigError(f"{path}: [training] share must be in (0, 1), got {share}")
        retrain = int(doc.get("training", {}).get("retrain_every", 0))
        if retrain < 0:
            raise ConfigError(f"{path}: [training] retrain_every must be >= 0, got {retrain}")
        training = doc.get("training", {})
        if "validation" in training and training["validation"] == training.get(
            "regime", doc.get("regimes", {}).get("in_regime")
        ):
            raise ConfigError(
                f"{path}: [training] validation {training['validation']!r} is the training "
                "regime; early stopping needs a regime held out of training"
            )
        if int(stressed.get("every", 1)) < 1:
            raise ConfigError(f"{path}: [stress] every must be >= 1, got {stressed['every']}")
        return cls(
            name=str(doc.get("name", Path(path).stem)),
            data=dict(doc["data"]),
            engines={k: dict(v) for k, v in doc["engines"].items()},
            protocols=dict(doc["protocols"]),
            regimes=dict(doc.get("regimes", {"method": "rules"})),
            stress=stressed,
            training=dict(doc.get("training", {})),
            uncertainty={**UNCERTAINTY, **doc.get("uncertainty", {})},
            seed=int(doc.get("seed", 0)),
        )

    @property
    def nowcast_splits(self) -> list[NowcastSplit]:
        """The nowcast protocol's splits: one table of settings, or a list of them."""
        settings = self.protocols.get("nowcast", [])
        return [NowcastSplit(**s) for s in ([settings] if isinstance(settings, dict) else settings)]

    @property
    def underlyings(self) -> list[str]:
        """The underlyings studied (``underlyings``, or the one ``underlying``; default BTC)."""
        return [str(u) for u in self.data.get("underlyings", [self.data.get("underlying", "BTC")])]


SOURCE_SUFFIXES = (".py", ".json", ".toml")
"""The package files whose content can change a cell's result (code, presets, scenarios)."""


def source_fingerprint(root: Path) -> str:
    """A hash of the files under ``root`` with :data:`SOURCE_SUFFIXES` (paths and contents).

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "engine.py").write_text("A = 1")
    >>> before = source_fingerprint(root)
    >>> _ = (root / "engine.py").write_text("A = 2")
    >>> before == source_fingerprint(root)
    False
    """
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file())
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


@functools.cache
def code_fingerprint() -> str:
    """``VERSION+HASH``: the volguard version and :func:`source_fingerprint` of the package,
    part of every cell's cache key (read once per process)."""
    return f"{volguard.__version__}+{source_fingerprint(Path(volguard.__file__).parent)}"


def data_root() -> Path:
    """Where named data sets live: ``VOLGUARD_DATA``, default ``../shared/data``."""
    return Path(os.environ.get("VOLGUARD_DATA", "../shared/data"))


def load_data(
    study: Study, out_dir: str | Path
) -> tuple[dict[str, list[MarketSnapshot]], pd.DataFrame | None]:
    """The study's snapshots per underlying in time order, and the simulator's truth (None for
    stored data). A named data set is ingested once into ``out_dir/store``. Each snapshot
    carries the realised vol of the index over the 7 days before it, from the study's own
    snapshots (:func:`~volguard.market.history.with_realized_vol`), for learned engines' state.
    ``[data] truth`` names the truth table of a store of simulated quotes."""
    d = study.data
    if "simulate" in d:
        run = simulate(
            load_scenario(d["simulate"]),
            float(d.get("days", 30)),
            str(d.get("freq", "12h")),
            int(d.get("seed", study.seed)),
        )
        truth = run.truth[run.truth["underlying"].isin(study.underlyings)]
        return {u: with_realized_vol(list(run.snapshots(u))) for u in study.underlyings}, truth
    if "dataset" in d:
        fmt, pattern = DATASETS[d["dataset"]]
        files = sorted((data_root() / d["dataset"]).glob(pattern))
        if not files:
            raise ConfigError(
                f"data set {d['dataset']!r}: no files {pattern} under {data_root() / d['dataset']}"
                " (set VOLGUARD_DATA)"
            )
        store_dir = Path(out_dir) / "store"
        if not (store_dir / "_manifest.json").exists():
            build_store(store_dir, [(fmt, f) for f in files])
    else:
        store_dir = Path(d["store"])
    store = open_store(store_dir)
    snapshots = {}
    for underlying in study.underlyings:
        stamps = store.timestamps(underlying)
        start = _utc(d.get("start", stamps.min()))
        end = _utc(d.get("end", stamps.max()))
        chosen = stamps[(stamps >= start) & (stamps <= end)]
        snapshots[underlying] = with_realized_vol(
            [store.snapshot_at(underlying, ts) for ts in chosen]
        )
    # a store of simulated quotes can bring the simulator's truth (``volguard simulate`` writes it)
    return snapshots, (pd.read_parquet(d["truth"]) if "truth" in d else None)


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts


def label_regimes(
    study: Study, snapshots: dict[str, list[MarketSnapshot]], truth: pd.DataFrame | None
) -> pd.DataFrame:
    """One row per underlying and snapshot: ``underlying, ts, regime`` and the market features
    of :func:`~volguard.lab.regimes.snapshot_features` behind rule and HMM labels."""
    method = study.regimes.get("method", "rules")
    panel = pd.concat([s.quotes for snaps in snapshots.values() for s in snaps], ignore_index=True)
    features = snapshot_features(panel)
    if method == "truth":
        if truth is None:
            raise ConfigError("regimes method 'truth' needs simulated data")
        first = truth.drop_duplicates("ts").set_index("ts")["regime"].astype(str)
        labels = first.reindex(features["ts"]).to_numpy()
    elif method == "ranges":
        ranges = {k: tuple(v) for k, v in study.regimes["ranges"].items()}
        labels = range_labels(features["ts"], ranges).to_numpy()
    elif method == "rules":
        labels = rule_labels(features).to_numpy()
    elif method == "hmm":
        labels = hmm_labels(features, seed=study.seed).to_numpy()
    else:
        raise ConfigError(
            f"regimes method {method!r} is unknown; expected truth, rules, hmm or ranges"
        )
    return features.assign(regime=pd.array(labels, dtype="string"))


@dataclass(frozen=True)
class _Cell:
    """What one cell needs: the snapshot, its successors and the study's settings."""

    underlying: str
    index: int
    now: MarketSnapshot
    nxt: MarketSnapshot | None
    later: MarketSnapshot | None
    stressed: tuple[str, ...]
    models: dict[str, Any] = field(default_factory=dict)
    trained_on: str = ""

    def key(self, study: Study) -> str:
        what = {
            "code": code_fingerprint(),
            "trained_on": self.trained_on,
            "learned": sorted(self.models),
            "data": study.data,
            "seed": study.seed,
            "engines": study.engines,
            "protocols": study.protocols,
            "underlying": self.underlying,
            "ts": [str(s.ts) if s is not None else None for s in (self.now, self.nxt, self.later)],
            "stress": self.stressed,
            "stress_settings": study.stress,
            "level": {**UNCERTAINTY, **study.uncertainty}["level"],  # of the engines' own intervals
        }
        text = json.dumps(what, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:24]


def _run_cell(study: Study, cell: _Cell) -> dict[str, pd.DataFrame]:
    """Every protocol of the study on one cell: predictions, fit cells and hedge steps."""
    engines = {
        name: make_engine(_base(study, name), **_engine_settings(study, name), **_model(cell, name))
        for name in study.engines
        if not _learned(study, name) or name in cell.models
    }
    protocols = study.protocols
    baselines = bool(protocols.get("baselines", True))
    if baselines and PLAIN_FIT not in engines:  # the naive fit every engine must beat
        engines[PLAIN_FIT] = make_engine(PLAIN_FIT)
    level = float({**UNCERTAINTY, **study.uncertainty}["level"])
    hedging = protocols.get("hedging")
    price: PriceSource = hedging.get("price", "mid") if isinstance(hedging, dict) else "mid"
    horizon = int(protocols.get("forecast", {}).get("horizon", 1))
    fitting = "forecast" in protocols or bool(protocols.get("hedging")) or bool(cell.stressed)
    fits = fit_engines(engines, cell.now) if fitting else {}
    parts: dict[str, list[pd.DataFrame]] = {"predictions": [], "cells": [], "hedging": []}

    def score(
        snapshot: MarketSnapshot,
        later: MarketSnapshot | None,
        nxt: MarketSnapshot | None,
        scenario: str,
        forecast_protocol: str,
        truth: pd.DataFrame | None = None,
    ) -> None:
        found: list[tuple[pd.DataFrame, pd.DataFrame]] = []
        for split in study.nowcast_splits:
            own = fits if snapshot is cell.now and fits else None  # stressed: fitted anew
            found.append(nowcast_snapshot(snapshot, engines, split, own, level, baselines))
        if "forecast" in protocols and later is not None:
            found.append(
                forecast_snapshot(fits, cell.now, later, forecast_protocol, baselines, level)
            )
        for pred, fit_cells in found:
            if truth is not None and len(pred):
                pred = pred.merge(truth, on="instrument", how="left")
            parts["predictions"].append(pred.assign(scenario=scenario))
            parts["cells"].append(fit_cells.assign(scenario=scenario))
        if protocols.get("hedging") and nxt is not None:
            fitted = {name: engine for name, (engine, _) in fits.items()}
            parts["hedging"].append(
                hedge_step(cell.now, nxt, fitted, price=price).assign(scenario=scenario)
            )

    score(cell.now, cell.later, cell.nxt, MARKET, f"forecast-{horizon}")
    reference = _reference(cell.now) if cell.stressed else None
    for offset, name in enumerate(cell.stressed):
        if reference is None:
            break
        seed = study.seed + cell.index + offset
        scenario = _adversarial(study, reference, seed) if name == ADVERSARIAL else LIBRARY[name]
        result = stress(reference, scenario, seed=seed)
        truth = result.truth[["instrument", "iv"]].rename(columns={"iv": "true_iv"})
        score(result.snapshot, result.snapshot, result.snapshot, name, "shock", truth)
    return {
        part: _concat(frames).assign(underlying=cell.underlying) for part, frames in parts.items()
    }


def _adversarial(study: Study, reference: Reference, seed: int) -> StressScenario:
    """The stress that maximises ``[stress] adversarial``'s engine's error on this snapshot
    (:func:`volguard.sim.adversarial.adversarial_search` over the library's parameter box)."""
    settings = dict(study.stress[ADVERSARIAL])
    engine = make_engine(str(settings.pop("engine", "ssvi")))
    found = adversarial_search(
        engine,
        reference,
        objective=settings.get("objective", "iv_rmse"),
        seed=seed,
        maxiter=int(settings.get("maxiter", 3)),
        popsize=int(settings.get("popsize", 1)),
    )
    return compose(found.worst_params, ADVERSARIAL)


def _reference(snapshot: MarketSnapshot) -> Reference | None:
    """The stress reference of ``snapshot``, None where eSSVI cannot fit it (no stress then)."""
    try:
        return Reference.fit(snapshot)
    except FIT_ERRORS:
        return None


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _base(study: Study, name: str) -> str:
    """The registered engine behind a study's engine name (``engine = ...`` for an alias)."""
    return str(study.engines[name].get("engine", name))


def _learned(study: Study, name: str) -> bool:
    return bool(getattr(ENGINES[_base(study, name)], "needs_training", False))


def _engine_settings(study: Study, name: str) -> dict[str, Any]:
    """The settings of the study's engine ``name`` that are its constructor's (a learned
    engine's others are training settings)."""
    settings = {k: v for k, v in study.engines[name].items() if k != "engine"}
    if not _learned(study, name):
        return settings
    own = set(ENGINES[_base(study, name)]().get_params())
    return {k: v for k, v in settings.items() if k in own}


def _model(cell: _Cell, name: str) -> dict[str, Any]:
    return {"model": cell.models[name]} if name in cell.models else {}


Trained = list[tuple[int, dict[str, Any], str]]
"""Per underlying: ``(first snapshot index, models, fingerprint)``, in order; a model serves
the snapshots from its first index to the next entry's."""


def _train(
    study: Study, snapshots: dict[str, list[MarketSnapshot]], regimes: pd.DataFrame
) -> dict[str, Trained]:
    """The learned engines' models per underlying. They first train on the first
    ``[training] share`` of the snapshots of ``[training] regime`` (default: the in-regime)
    and serve every later snapshot; with ``retrain_every = n`` they train again every ``n``
    snapshots on every snapshot before (the half-life of their sample weights decides how far
    back they look), and each model serves only snapshots after its training data. With
    ``[training] validation = "regime"``, that regime's snapshots are held out of every training
    set, and those already past early-stop the training (a model with none trains in full).

    Raises
    ------
    ConfigError
        If a learned engine is named and the training regime has no snapshot.
    """
    learned = [name for name in study.engines if _learned(study, name)]
    if not learned:
        return {}
    regime = study.training.get("regime", study.regimes.get("in_regime"))
    share = float(study.training.get("share", TRAIN_SHARE))
    every = int(study.training.get("retrain_every", 0))
    held_out = study.training.get("validation")
    trained: dict[str, Trained] = {}
    for underlying, snaps in snapshots.items():
        labels = regimes[regimes["underlying"] == underlying].set_index("ts")["regime"]
        pool = [s for s in snaps if labels.get(s.ts) == regime]
        if not pool:
            raise ConfigError(
                f"learned engines {learned} train on regime {regime!r} ([training] regime, "
                f"else [regimes] in_regime), which has no {underlying} snapshot"
            )
        first = pool[: max(1, int(len(pool) * share))]
        start = next(i for i, snap in enumerate(snaps) if snap is first[-1]) + 1
        sets = [(start, first)]
        if every:
            sets += [(i, snaps[:i]) for i in range(start + every, len(snaps), every)]
        entries = []
        for i, seen in sets:
            # the held-out regime's past snapshots stop the training early; never trained on
            validation = [s for s in seen if labels.get(s.ts) == held_out]
            train = [s for s in seen if labels.get(s.ts) != held_out]
            fingerprint = f"{regime}:{train[0].ts}:{train[-1].ts}:{len(train)}"
            if validation:
                fingerprint += f"|validation {held_out}:{len(validation)}"
            entries.append((i, _models(study, learned, train, validation), fingerprint))
        trained[underlying] = entries
    return trained


def _models(
    study: Study,
    learned: list[str],
    train: list[MarketSnapshot],
    validation: list[MarketSnapshot],
) -> dict[str, Any]:
    models = {}
    for name in learned:
        own = set(_engine_settings(study, name)) | {"engine"}
        settings = {k: v for k, v in study.engines[name].items() if k not in own}
        if validation:
            settings["validation"] = validation
        models[name] = ENGINES[_base(study, name)].train(
            train, seed=study.seed, **resolve(settings)
        )
    return models


def _plan(
    study: Study,
    snapshots: dict[str, list[MarketSnapshot]],
    trained: dict[str, Trained],
) -> list[_Cell]:
    horizon = int(study.protocols.get("forecast", {}).get("horizon", 1))
    every = int(study.stress.get("every", 1))
    names = tuple(study.stress.get("scenarios", ()))
    names += (ADVERSARIAL,) if ADVERSARIAL in study.stress else ()
    plan = []
    for underlying, snaps in snapshots.items():
        serving = trained.get(underlying, [])
        for i, now in enumerate(snaps):
            current = [entry for entry in serving if entry[0] <= i]
            _, models, fingerprint = current[-1] if current else (0, {}, "")
            plan.append(
                _Cell(
                    underlying,
                    i,
                    now,
                    snaps[i + 1] if i + 1 < len(snaps) else None,
                    snaps[i + horizon] if i + horizon < len(snaps) else None,
                    names if i % every == 0 else (),
                    models,
                    fingerprint,
                )
            )
    return plan


def run_study(
    study: Study,
    out_dir: str | Path,
    *,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> pd.DataFrame:
    """Run ``study`` into ``out_dir`` (see the module docstring); returns the scorecard.

    Cells run on ``executor`` (``local``: a process pool of ``workers``, 1 running in this
    process; ``ray``: Ray tasks, on the cluster at ``address`` or a local Ray of ``workers``
    CPUs); cached cells are read back instead of run. Every executor gives the same results.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    cache = out / "cache"
    snapshots, truth = load_data(study, out)
    regimes = label_regimes(study, snapshots, truth)
    trained = _train(study, snapshots, regimes)
    plan = _plan(study, snapshots, trained)
    keys = [cell.key(study) for cell in plan]
    results: dict[str, dict[str, pd.DataFrame]] = {}
    for key in keys:
        files = {
            part: cache / f"{key}.{part}.parquet" for part in ("predictions", "cells", "hedging")
        }
        if all(f.exists() for f in files.values()):
            results[key] = {part: pd.read_parquet(f) for part, f in files.items()}
    todo = [(cell, key) for cell, key in zip(plan, keys, strict=True) if key not in results]
    cached = len(results)
    progress(cached, len(plan))
    with make_executor(executor, workers=workers, address=address) as pool:
        for (_, key), parts in zip(
            todo, pool.map(_run_cell, [(study, c) for c, _ in todo]), strict=True
        ):
            for part, frame in parts.items():
                write_atomic(cache / f"{key}.{part}.parquet", parquet_bytes(frame))
            results[key] = parts
            progress(len(results), len(plan))

    def gather(part: str) -> pd.DataFrame:
        return _concat([results[key][part] for key in keys])

    predictions, cells, steps = gather("predictions"), gather("cells"), gather("hedging")
    if "greeks" in study.protocols and len(steps):
        steps = add_learned_deltas(steps, study.protocols["greeks"], snapshots=snapshots)
    labels = regimes.set_index(["underlying", "ts"])["regime"]
    for frame in (predictions, cells, steps):
        if len(frame):
            where = pd.MultiIndex.from_frame(frame[["underlying", "ts"]])
            frame["regime"] = labels.reindex(where).to_numpy()
    if truth is not None and len(predictions):
        columns = [
            "underlying",
            "ts",
            "instrument",
            "true_iv",
            "true_delta",
            "true_gamma",
            "true_vega",
        ]
        unstressed = predictions["scenario"] == MARKET
        known = predictions[unstressed].drop(columns=["true_iv"], errors="ignore")
        known = known.merge(truth[columns], on=["underlying", "ts", "instrument"], how="left")
        predictions = pd.concat([known, predictions[~unstressed]], ignore_index=True)
    labels_by = ("engine", "protocol", "regime", "scenario")
    settings = {**UNCERTAINTY, **study.uncertainty}
    level = float(settings.pop("level"))
    if len(predictions):
        predictions = conformal_intervals(predictions, level, **settings)
    card = scorecard(predictions, cells, by=labels_by)
    desk = desk_table(predictions, labels_by) if len(predictions) else pd.DataFrame()
    if len(desk):  # the desk's protocol on the core bucket beside the pooled figures
        core = desk[desk["bucket"] == "core"].drop(columns=["bucket", "baseline"])
        per_snapshot = [
            c for c in map(str, core.columns) if c.startswith(STATS) or c == "snapshots"
        ]
        core = core.rename(columns={c: f"snap_{c}" for c in per_snapshot})
        card = card.merge(core, on=list(labels_by), how="left")
    if len(predictions):
        coverage = coverage_table(predictions, labels_by, level=level)
        card = card.merge(
            coverage[[*labels_by, "coverage_pct", "median_width_vol_pts"]].rename(
                columns={"median_width_vol_pts": "interval_width_vol_pts"}
            ),
            on=list(labels_by),
            how="left",
        )
    in_regime = study.regimes.get("in_regime")
    market = predictions[predictions["scenario"] == MARKET] if len(predictions) else predictions
    if in_regime is not None and in_regime in set(market["regime"]):
        gap = generalization_gap(market, in_regime, seed=study.seed).assign(scenario=MARKET)
        card = card.merge(gap, on=["engine", "protocol", "regime", "scenario"], how="left")
    if len(steps):
        hedges = _hedging_table(steps, _deltas(study, steps), in_regime)
        card = card.merge(hedges, on=["engine", "regime", "scenario"], how="left")
        # deltas that are not engines (``[protocols] greeks``) have hedging rows only
        alone = hedges[~hedges["engine"].isin(card["engine"])].assign(protocol="hedging")
        card = pd.concat([card, alone], ignore_index=True) if len(alone) else card
    if "policy_hedging" in study.protocols:
        card = pd.concat([card, _policy_hedging(study)], ignore_index=True)
    write_atomic(out / "scorecard.csv", card.to_csv(index=False))
    write_atomic(out / "scorecard.parquet", parquet_bytes(card))
    write_atomic(out / "desk.csv", desk.to_csv(index=False))
    write_atomic(out / "desk.parquet", parquet_bytes(desk))
    write_atomic(out / "predictions.parquet", parquet_bytes(predictions))
    write_atomic(out / "hedging.parquet", parquet_bytes(steps))
    write_atomic(out / "regimes.parquet", parquet_bytes(regimes))
    selection = selection_overfitting(market) if len(market) else pd.DataFrame()
    about = {
        "study": study.__dict__,
        "selection": selection.to_dict("records"),
        "training": {
            u: [{"from_snapshot": i, "trained_on": fingerprint} for i, _, fingerprint in entries]
            for u, entries in trained.items()
        },
        "cells": len(plan),
        "cells_cached": cached,
        "snapshots": {u: len(s) for u, s in snapshots.items()},
        "executor": executor,
        "workers": workers,
        "seconds": round(time.perf_counter() - started, 3),
        "code": code_fingerprint(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
    write_atomic(out / "study.json", json.dumps(about, indent=2, default=str) + "\n")
    return card


def _policy_hedging(study: Study) -> pd.DataFrame:
    """The scorecard rows of ``[protocols] policy_hedging`` (:mod:`volguard.lab.policy_hedging`):
    hedging policies trained on simulated paths, scored per regime and on the real data sets
    it names (paths relative to ``VOLGUARD_DATA``), with its checks; ``scenario`` is the source
    of the paths (``simulated``, ``binance``, ``deribit``)."""
    table = dict(study.protocols["policy_hedging"])
    for key in ("binance", "deribit", "deribit_perpetual"):
        if key in table:
            table[key] = str(data_root() / table[key])
    rows = policy_hedging_protocol(table, seed=study.seed)
    return rows.rename(columns={"source": "scenario"})


GREEKS = {
    "sm": "delta-sticky-moneyness",
    "regime": "delta-regime-aware",
    "mv_roll": "delta-mv-rolling",
    "regime_guard": "delta-regime-guard",
}
"""Scorecard names of the deltas ``[protocols] greeks`` adds (``delta_<name>`` columns)."""


def _deltas(study: Study, steps: pd.DataFrame) -> dict[str, str]:
    """The hedge steps' ``delta_<name>`` columns to score, and their scorecard engine names."""
    engines = {e: e for e in study.engines if f"delta_{e}" in steps}
    return engines | {d: GREEKS[d] for d in LEARNED if f"delta_{d}" in steps}


def _hedging_table(
    steps: pd.DataFrame, engines: Mapping[str, str], in_regime: str | None
) -> pd.DataFrame:
    """Per delta (``engines``: its column name after ``delta_`` -> its scorecard name), regime
    and scenario: hedge error std, CVaR 95 and the reductions against Black-76 at the quote's
    vol and against the minimum-variance delta fitted on the in-regime market steps (Hull and
    White 2017)."""
    train = steps[(steps["scenario"] == MARKET) & (steps["regime"] == in_regime)]
    deltas = ["bs", *engines]
    if len(train):
        steps = steps.assign(delta_mv=fit_min_variance(train).delta(steps))
        deltas.append("mv")
    rows = []
    for (regime, scenario), group in steps.groupby(["regime", "scenario"], observed=True):
        present = [
            d for d in deltas if group[f"delta_{d}"].notna().any()
        ]  # learned: after training
        summary = hedge_summary(group, present).set_index("delta")
        stds = summary["hedge_err_std_bp"].astype(float)
        for name in (e for e in engines if e in summary.index):
            row = summary.loc[name]
            mv = 1 - (stds[name] / stds["mv"]) ** 2 if "mv" in stds else np.nan
            rows.append(
                {
                    "engine": engines[name],
                    "regime": regime,
                    "scenario": scenario,
                    "hedge_err_std": row["hedge_err_std"],
                    "hedge_err_cvar95": row["hedge_err_cvar95"],
                    "hedge_err_std_bp": stds[name],
                    "hedge_err_cvar95_bp": row["hedge_err_cvar95_bp"],
                    "hedge_err_reduction_vs_bs": row["reduction_vs_bs"],
                    "hedge_err_reduction_vs_mv": mv,
                }
            )
    return pd.DataFrame(rows)
