"""A study: data, regime labels, engines and protocols from one TOML file, run to a scorecard.

::

    name = "calm-to-crash"
    seed = 0

    [data]                        # a simulator preset or scenario file ...
    simulate = "calm-then-crash"
    days = 40
    freq = "12h"
    underlying = "BTC"
    # store = "runs/store"        # ... or a quote store, with start = "...", end = "..."

    [regimes]
    method = "truth"              # truth (simulated runs), rules, hmm or ranges
    in_regime = "calm"            # the training regime of the generalization gap
    # ranges = { crash = ["2026-01-29", "2026-02-06"] }

    [engines]                     # registered names and their settings
    ssvi = {}
    "black76-flat" = {}

    [protocols]
    nowcast = { mode = "random", test_size = 0.2 }
    forecast = { horizon = 1 }
    hedging = true

:func:`run_study` evaluates every engine under every protocol on every snapshot. Each
(protocol, snapshot) cell is cached under ``OUT/cache`` by a content hash of what it depends
on, so an interrupted or repeated study skips the cells already done; the outputs
(``scorecard.csv`` and ``.parquet``, ``predictions.parquet``, ``hedging.csv``, ``study.json``)
are each written atomically.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volguard.data.files import parquet_bytes, write_atomic
from volguard.data.store import open_store
from volguard.errors import ConfigError
from volguard.lab.hedging import hedge_steps, hedge_summary
from volguard.lab.metrics import generalization_gap, scorecard
from volguard.lab.predict import forecast, nowcast
from volguard.lab.regimes import hmm_labels, range_labels, rule_labels, snapshot_features
from volguard.lab.splits import NowcastSplit
from volguard.market.snapshot import MarketSnapshot
from volguard.models.registry import ENGINES, make_engine
from volguard.sim.scenario import load_scenario
from volguard.sim.simulator import simulate

SECTIONS = {"name", "seed", "data", "regimes", "engines", "protocols"}


@dataclass(frozen=True)
class Study:
    """A parsed study file (see the module docstring)."""

    name: str
    data: dict[str, Any]
    engines: dict[str, dict[str, Any]]
    protocols: dict[str, Any]
    regimes: dict[str, Any] = field(default_factory=lambda: {"method": "rules"})
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
        unknown = sorted(set(doc) - SECTIONS)
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {unknown}; expected {sorted(SECTIONS)}")
        for key in ("data", "engines", "protocols"):
            if not isinstance(doc.get(key), dict) or not doc[key]:
                raise ConfigError(f"{path}: [{key}] is missing or empty")
        for name in doc["engines"]:
            if name not in ENGINES:
                raise ConfigError(
                    f"{path}: [engines] {name!r} is not an engine; "
                    f"expected one of {sorted(ENGINES)}"
                )
        bad = sorted(set(doc["protocols"]) - {"nowcast", "forecast", "hedging"})
        if bad:
            raise ConfigError(
                f"{path}: [protocols] {bad} unknown; expected nowcast, forecast, hedging"
            )
        if ("simulate" in doc["data"]) == ("store" in doc["data"]):
            raise ConfigError(f"{path}: [data] needs exactly one of 'simulate' and 'store'")
        return cls(
            name=str(doc.get("name", Path(path).stem)),
            data=dict(doc["data"]),
            engines={k: dict(v) for k, v in doc["engines"].items()},
            protocols=dict(doc["protocols"]),
            regimes=dict(doc.get("regimes", {"method": "rules"})),
            seed=int(doc.get("seed", 0)),
        )


def load_data(study: Study) -> tuple[list[MarketSnapshot], pd.DataFrame | None]:
    """The study's snapshots in time order, and the simulator's truth (None for a store)."""
    d = study.data
    underlying = str(d.get("underlying", "BTC"))
    if "simulate" in d:
        run = simulate(
            load_scenario(d["simulate"]),
            float(d.get("days", 30)),
            str(d.get("freq", "12h")),
            int(d.get("seed", study.seed)),
        )
        return list(run.snapshots(underlying)), run.truth[run.truth["underlying"] == underlying]
    store = open_store(d["store"])
    stamps = store.timestamps(underlying)
    start = pd.Timestamp(d.get("start", stamps.min()))
    end = pd.Timestamp(d.get("end", stamps.max()))
    start = start.tz_localize("UTC") if start.tzinfo is None else start
    end = end.tz_localize("UTC") if end.tzinfo is None else end
    chosen = stamps[(stamps >= start) & (stamps <= end)]
    return [store.snapshot_at(underlying, ts) for ts in chosen], None


def label_regimes(
    study: Study, snapshots: list[MarketSnapshot], truth: pd.DataFrame | None
) -> pd.Series:
    """The regime of each snapshot time, by the study's method."""
    method = study.regimes.get("method", "rules")
    stamps = pd.Series([s.ts for s in snapshots])
    if method == "truth":
        if truth is None:
            raise ConfigError("regimes method 'truth' needs simulated data")
        first = truth.drop_duplicates("ts").set_index("ts")["regime"].astype(str)
        return pd.Series(first.reindex(stamps).to_numpy(), index=stamps)
    if method == "ranges":
        labels = range_labels(stamps, {k: tuple(v) for k, v in study.regimes["ranges"].items()})
        return pd.Series(labels.to_numpy(), index=stamps)
    panel = pd.concat([s.quotes for s in snapshots], ignore_index=True)
    features = snapshot_features(panel)
    if method == "rules":
        labels = rule_labels(features)
    elif method == "hmm":
        labels = hmm_labels(features, seed=study.seed)
    else:
        raise ConfigError(
            f"regimes method {method!r} is unknown; expected truth, rules, hmm or ranges"
        )
    return pd.Series(labels.to_numpy(), index=features["ts"].to_numpy())


def _cell_key(study: Study, protocol: str, stamps: tuple[pd.Timestamp, ...]) -> str:
    what = {
        "data": study.data,
        "seed": study.seed,
        "engines": study.engines,
        "protocol": protocol,
        "settings": study.protocols.get(protocol),
        "ts": [str(t) for t in stamps],
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _run_cell(
    protocol: str, settings: Any, engines: dict[str, dict[str, Any]], snaps: list[MarketSnapshot]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    built = {name: make_engine(name, **params) for name, params in engines.items()}
    if protocol == "nowcast":
        return nowcast(snaps, built, NowcastSplit(**settings))
    return forecast(snaps, built, horizon=int(settings.get("horizon", 1)))


def run_study(
    study: Study,
    out_dir: str | Path,
    *,
    workers: int = 1,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> pd.DataFrame:
    """Run ``study`` into ``out_dir`` (see the module docstring); returns the scorecard.

    Cells run in a process pool of ``workers`` (1: in this process); cached cells are read
    back instead of run.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    cache = out / "cache"
    snapshots, truth = load_data(study)
    regimes = label_regimes(study, snapshots, truth)
    tasks: list[tuple[str, str, list[MarketSnapshot]]] = []
    for protocol in ("nowcast", "forecast"):
        if protocol not in study.protocols:
            continue
        settings = study.protocols[protocol]
        horizon = int(settings.get("horizon", 1)) if protocol == "forecast" else 0
        groups = (
            [[s] for s in snapshots]
            if protocol == "nowcast"
            else [[a, b] for a, b in zip(snapshots[:-horizon], snapshots[horizon:], strict=True)]
        )
        for snaps in groups:
            tasks.append((protocol, _cell_key(study, protocol, tuple(s.ts for s in snaps)), snaps))
    results: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    todo = []
    for protocol, key, snaps in tasks:
        pred_file, cell_file = cache / f"{key}.pred.parquet", cache / f"{key}.cells.parquet"
        if pred_file.exists() and cell_file.exists():
            results[key] = (pd.read_parquet(pred_file), pd.read_parquet(cell_file))
        else:
            todo.append((protocol, key, snaps))
    done = len(results)
    progress(done, len(tasks))

    def keep(key: str, pair: tuple[pd.DataFrame, pd.DataFrame]) -> None:
        nonlocal done
        write_atomic(cache / f"{key}.pred.parquet", parquet_bytes(pair[0]))
        write_atomic(cache / f"{key}.cells.parquet", parquet_bytes(pair[1]))
        results[key] = pair
        done += 1
        progress(done, len(tasks))

    args = [(p, study.protocols[p], study.engines, snaps) for p, _, snaps in todo]
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for (_, key, _), pair in zip(
                todo, pool.map(_run_cell, *zip(*args, strict=True)), strict=True
            ):
                keep(key, pair)
    else:
        for (_, key, _), arg in zip(todo, args, strict=True):
            keep(key, _run_cell(*arg))

    ordered = [results[key] for _, key, _ in tasks]
    predictions = pd.concat([p for p, _ in ordered if len(p)], ignore_index=True)
    cells = pd.concat([c for _, c in ordered if len(c)], ignore_index=True)
    predictions["regime"] = regimes.reindex(predictions["ts"]).to_numpy()
    cells["regime"] = regimes.reindex(cells["ts"]).to_numpy()
    if truth is not None:
        columns = ["ts", "instrument", "true_iv", "true_delta", "true_gamma", "true_vega"]
        predictions = predictions.merge(truth[columns], on=["ts", "instrument"], how="left")
    card = scorecard(predictions, cells, by=("engine", "protocol", "regime"))
    in_regime = study.regimes.get("in_regime")
    if in_regime is not None and in_regime in set(predictions["regime"]):
        gap = generalization_gap(predictions, in_regime, seed=study.seed)
        card = card.merge(gap, on=["engine", "protocol", "regime"], how="left")
    hedging = pd.DataFrame()
    if study.protocols.get("hedging"):
        hedging = _hedging(study, snapshots, regimes, truth)
        card = card.merge(hedging, on=["engine", "regime"], how="left")
    write_atomic(out / "scorecard.csv", card.to_csv(index=False))
    write_atomic(out / "scorecard.parquet", parquet_bytes(card))
    write_atomic(out / "predictions.parquet", parquet_bytes(predictions))
    about = {
        "study": study.__dict__,
        "cells": len(tasks),
        "cells_cached": len(tasks) - len(todo),
        "snapshots": len(snapshots),
        "seconds": round(time.perf_counter() - started, 3),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
    write_atomic(out / "study.json", json.dumps(about, indent=2, default=str) + "\n")
    return card


def _hedging(
    study: Study,
    snapshots: list[MarketSnapshot],
    regimes: pd.Series,
    truth: pd.DataFrame | None,
) -> pd.DataFrame:
    """Per engine and regime: hedge error std and its reduction against Black-76."""
    built = {name: make_engine(name, **params) for name, params in study.engines.items()}
    steps = hedge_steps(snapshots, built)
    steps["regime"] = regimes.reindex(steps["ts"]).to_numpy()
    rows = []
    for regime, group in steps.groupby("regime"):
        summary = hedge_summary(group, ["bs", *built]).set_index("delta")
        for name in built:
            rows.append(
                {
                    "engine": name,
                    "regime": regime,
                    "hedge_err_std": summary.loc[name, "hedge_err_std"],
                    "hedge_err_reduction_vs_bs": summary.loc[name, "reduction_vs_bs"],
                }
            )
    return pd.DataFrame(rows)
