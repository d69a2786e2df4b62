"""Learned hedging judged by P&L stability across regimes: the lab protocol.

:func:`policy_hedging_protocol` runs the whole study from one settings mapping and a seed:

1. simulated path sets per regime (:func:`volguard.lab.deep_hedging_paths.simulated_paths`),
   with separate seeds for training, validation and test paths;
2. an ensemble of deep-hedging policies (:func:`volguard.models.hedging.train_policy`, one seed
   per member) trained on the ``train_regimes`` with the regime-mix weights, early-stopped on
   the ``validation_regimes`` (never the test regime: the crash is held out of both);
3. the baselines: no hedge, Black-76 delta at the implied vol, the engine delta, the
   Whalley-Wilmott band (risk aversion chosen on the training paths) and the Hull-White
   minimum-variance delta (fitted on the training paths with
   :func:`volguard.lab.hedging.fit_min_variance`);
4. the gated ensemble (threshold: a quantile of the members' disagreement on the training
   paths, unless given) and the plain ensemble mean;
5. per strategy and regime of the test paths (and, with ``binance`` settings, of market paths;
   with ``deribit`` settings, one-step hedges of real options, hedging errors per option-step):
   P&L mean and standard deviation, CVaR 95, entropic risk, mean cost and turnover, each with a
   seeded percentile-bootstrap interval over paths (:func:`scorecard`), and the two checks of
   the issue (:func:`verdict`) as paired bootstrap differences.

P&L, risk and cost are in basis points of the initial notional ``F_0`` (a short call, hedged).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from volguard._typing import FloatArray
from volguard.kernels.api import black76_greeks
from volguard.lab.deep_hedging_deribit import (
    deribit_scorecard,
    load_perpetual_hourly,
    load_snapshots,
    policy_steps,
)
from volguard.lab.deep_hedging_paths import (
    BatesTable,
    bates_table,
    binance_paths,
    load_binance_hourly,
    simulated_paths,
    tau_grid,
)
from volguard.lab.hedging import fit_min_variance
from volguard.models.hedging import (
    BlackDelta,
    EngineDelta,
    GatedEnsemble,
    HedgePaths,
    HedgePolicy,
    MinVarianceHedge,
    NoHedge,
    Strategy,
    WhalleyWilmott,
    cvar,
    entropic,
    outcome,
    risk,
    train_policy,
)
from volguard.sim.scenario import preset

GATED = "gated_ensemble"
BASELINES: tuple[str, ...] = ("no_hedge", "black76", "engine", "whalley_wilmott", "min_variance")
HEDGING_BASELINES: tuple[str, ...] = BASELINES[1:]
"""Baselines that hedge; the unhedged short call is a bet on the drift, not a hedge, and is
left out of the comparison of :func:`verdict` (it wins outright in a falling market)."""
WW_AVERSIONS: tuple[float, ...] = tuple(float(g) for g in np.geomspace(1.0, 1e6, 13))
"""Candidate Whalley-Wilmott risk aversions (per unit of notional)."""


@dataclass(frozen=True)
class PolicyHedgingSettings:
    """Settings of :func:`policy_hedging_protocol` (every field a key of the settings table).

    Attributes
    ----------
    scenario : str
        Simulator preset whose regimes drive the paths.
    train_regimes, validation_regimes, test_regimes : tuple of str
        Regimes of the training, early-stopping and test paths; ``out_of_regime`` must be in
        neither of the first two.
    out_of_regime : str
        The held-out regime of the out-of-regime check.
    regime_weights : mapping or None
        Weight of each training regime in the loss (None: equal).
    robust_step : float
        Dynamic regime weighting (0: fixed weights; :func:`volguard.models.hedging.train_policy`).
    n_train, n_validation, n_test : int
        Paths per regime.
    days, hedge_hours : float
        Option life and rebalancing interval.
    strikes : tuple of float
        Log-moneyness of the calls.
    cost_rate : float
        Proportional cost of the futures (5e-4 = 5 bp).
    risk_measure, risk_level : str, float
        The training objective (:func:`volguard.models.hedging.train_policy`).
    members : int
        Policies in the ensemble (seeds ``seed, seed + 1, ...``).
    hidden, steps, batch, learning_rate, weight_decay, patience, check_every
        Training settings of each member.
    architecture : {'band', 'residual'}
    gate_quantile : float
        Threshold of the gate: this quantile of the members' disagreement on the training paths
        (ignored when ``gate_threshold`` is set).
    gate_threshold : float or None
    blend_rule : {'switch', 'linear'}
    gate_fallback : {'engine', 'black76'}
        The delta the gate blends toward.
    entropic_lambda : float
        Parameter of the reported entropic risk (per bp).
    bootstrap : int
        Bootstrap resamples of the intervals (0: none).
    tolerance_bp : float
        Tolerance of the out-of-regime check (bp of CVaR 95).
    binance : str or None
        Path of a Binance hourly file for the market paths (None: simulated only).
    deribit, deribit_perpetual : str or None
        Folder of the ``deribit-svcj-snapshots`` chains and the perpetual's hourly closes
        (``spot_history_hourly.csv.gz``) for the one-step hedges of real options
        (:mod:`volguard.lab.deep_hedging_deribit`; None: not run).
    deribit_underlying : str
    """

    scenario: str = "markov"
    train_regimes: tuple[str, ...] = ("calm", "trending", "rally")
    validation_regimes: tuple[str, ...] = ("plateau",)
    test_regimes: tuple[str, ...] = ("calm", "trending", "rally", "plateau", "crash")
    out_of_regime: str = "crash"
    regime_weights: Mapping[str, float] | None = None
    robust_step: float = 0.0
    n_train: int = 2000
    n_validation: int = 1000
    n_test: int = 2000
    days: float = 7.0
    hedge_hours: float = 2.0
    strikes: tuple[float, ...] = (-0.05, 0.0, 0.05)
    cost_rate: float = 5e-4
    risk_measure: str = "cvar"
    risk_level: float = 0.95
    members: int = 5
    hidden: tuple[int, ...] = (32, 32)
    steps: int = 200
    batch: int = 512
    learning_rate: float = 5e-3
    weight_decay: float = 1e-4
    patience: int = 5
    check_every: int = 20
    architecture: str = "band"
    gate_quantile: float = 0.95
    gate_threshold: float | None = None
    blend_rule: str = "linear"
    gate_fallback: str = "engine"
    entropic_lambda: float = 0.02
    bootstrap: int = 200
    tolerance_bp: float = 10.0
    binance: str | None = None
    deribit: str | None = None
    deribit_perpetual: str | None = None
    deribit_underlying: str = "BTC"
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        held = self.out_of_regime
        if held in self.train_regimes or held in self.validation_regimes:
            raise ValueError(
                f"out_of_regime {held!r} must be in neither train_regimes "
                f"{self.train_regimes} nor validation_regimes {self.validation_regimes}"
            )
        if set(self.validation_regimes) & set(self.train_regimes):
            raise ValueError(
                f"validation_regimes {self.validation_regimes} must be held out of "
                f"train_regimes {self.train_regimes}"
            )
        if self.members < 2:
            raise ValueError(f"members must be >= 2 (the gate needs a spread), got {self.members}")
        if not 0 < self.gate_quantile <= 1:
            raise ValueError(f"gate_quantile must be in (0, 1], got {self.gate_quantile!r}")
        if self.extra:
            known = sorted(f.name for f in fields(self) if f.name != "extra")
            raise ValueError(
                f"unknown policy_hedging setting(s) {sorted(self.extra)}; known: {known}"
            )

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> PolicyHedgingSettings:
        """From a settings table (lists become tuples; unknown keys raise ``ValueError``)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()
        }
        extra = {k: v for k, v in values.items() if k not in known}
        return cls(**{k: v for k, v in values.items() if k in known}, extra=extra)


@dataclass(frozen=True)
class TrainedHedgers:
    """What the protocol trained and fitted on the training paths."""

    members: tuple[HedgePolicy, ...]
    gated: GatedEnsemble
    baselines: dict[str, Strategy]
    seconds: float
    """Wall time of training the members (s)."""


# ------------------------------------------------------------------------------ paths
def regime_paths(
    settings: PolicyHedgingSettings,
    regimes: Sequence[str],
    n: int,
    seed: int,
    tables: dict[str, BatesTable],
) -> HedgePaths:
    """Paths of every regime in ``regimes`` (``n`` each), stacked; ``tables`` caches pricing."""
    scenario = preset(settings.scenario)
    tau = tau_grid(settings.days, settings.hedge_hours)
    parts = []
    for regime in regimes:
        if regime not in tables:
            tables[regime] = bates_table(scenario.regimes[regime], tau[:-1])
        parts.append(
            simulated_paths(
                scenario,
                regime,
                n,
                days=settings.days,
                hedge_hours=settings.hedge_hours,
                strikes=settings.strikes,
                table=tables[regime],
                seed=seed,
            )
        )
    return HedgePaths.concat(parts)


# ------------------------------------------------------------------------------ training
def option_steps(paths: HedgePaths) -> pd.DataFrame:
    """The rows :func:`volguard.lab.hedging.fit_min_variance` regresses: one per path and step,
    with the option valued by Black-76 at its implied vol (the payoff at expiry)."""
    n, m = paths.iv.shape
    f = paths.forward
    value = black76_greeks(f[:, :-1], paths.strike[:, None], paths.tau[None, :-1], paths.iv, True)[
        "price"
    ]
    value = np.column_stack([value, paths.payoff])
    return pd.DataFrame(
        {
            "is_call": np.ones(n * m, dtype=bool),
            "delta_bs": paths.delta_bs.ravel(),
            "vega": paths.vega_bs.ravel(),
            "forward": f[:, :-1].ravel(),
            "t": np.broadcast_to(paths.tau[None, :-1], (n, m)).ravel(),
            "d_forward": np.diff(f, axis=1).ravel(),
            "d_value": np.diff(value, axis=1).ravel(),
        }
    )


def fit_baselines(train: HedgePaths, settings: PolicyHedgingSettings) -> dict[str, Strategy]:
    """The baselines, their free settings chosen on the training paths only."""
    mv = fit_min_variance(option_steps(train))
    aversion = min(
        WW_AVERSIONS,
        key=lambda g: _training_risk(train, WhalleyWilmott(settings.cost_rate, g), settings),
    )
    return {
        "no_hedge": NoHedge(),
        "black76": BlackDelta(),
        "engine": EngineDelta(),
        "whalley_wilmott": WhalleyWilmott(settings.cost_rate, aversion),
        "min_variance": MinVarianceHedge(mv.calls),
    }


def _training_risk(paths: HedgePaths, strategy: Strategy, settings: PolicyHedgingSettings) -> float:
    """The training objective of ``strategy``: the regime-weighted mean CVaR/entropic/MV risk."""
    pnl = outcome(paths, strategy.positions(paths), settings.cost_rate).pnl
    regimes = sorted(set(paths.regime.tolist()))
    w = settings.regime_weights or {r: 1.0 for r in regimes}
    weights = np.array([w.get(r, 0.0) for r in regimes])
    risks = np.array(
        [risk(pnl[paths.regime == r], settings.risk_measure, settings.risk_level) for r in regimes]  # type: ignore[arg-type]
    )
    return float(weights @ risks / weights.sum())


def train_hedgers(
    train: HedgePaths, validation: HedgePaths, settings: PolicyHedgingSettings, seed: int
) -> TrainedHedgers:
    """Train the ensemble members, set the gate and fit the baselines."""
    start = time.perf_counter()
    members = tuple(
        train_policy(
            train,
            validation=validation,
            cost_rate=settings.cost_rate,
            risk_measure=settings.risk_measure,  # type: ignore[arg-type]
            risk_level=settings.risk_level,
            regime_weights=settings.regime_weights,
            robust_step=settings.robust_step,
            architecture=settings.architecture,  # type: ignore[arg-type]
            hidden=settings.hidden,
            steps=settings.steps,
            batch=settings.batch,
            learning_rate=settings.learning_rate,
            weight_decay=settings.weight_decay,
            check_every=settings.check_every,
            patience=settings.patience,
            seed=seed + j,
        )
        for j in range(settings.members)
    )
    seconds = time.perf_counter() - start
    threshold = settings.gate_threshold
    if threshold is None:
        free = GatedEnsemble(members, np.inf, settings.blend_rule)  # type: ignore[arg-type]
        spread = free.rollout(train).disagreement
        threshold = float(np.quantile(spread, settings.gate_quantile))
    gated = GatedEnsemble(
        members,
        threshold,
        settings.blend_rule,  # type: ignore[arg-type]
        fallback=settings.gate_fallback,  # type: ignore[arg-type]
    )
    return TrainedHedgers(members, gated, fit_baselines(train, settings), seconds)


# ------------------------------------------------------------------------------ evaluation
METRICS: tuple[str, ...] = (
    "pnl_mean_bp",
    "pnl_std_bp",
    "cvar95_bp",
    "entropic_bp",
    "mean_cost_bp",
    "turnover",
)
QUANTILES: tuple[int, ...] = (1, 5, 25, 50, 75, 95, 99)
"""Percentiles of the P&L reported per strategy and regime (``pnl_q05_bp`` ...)."""


def _metrics(pnl: FloatArray, cost: FloatArray, turnover: FloatArray, lam: float) -> FloatArray:
    return np.array(
        [pnl.mean(), pnl.std(), cvar(pnl), entropic(pnl, lam), cost.mean(), turnover.mean()]
    )


def scorecard(
    strategies: Mapping[str, Strategy],
    paths: HedgePaths,
    *,
    cost_rate: float,
    entropic_lambda: float,
    bootstrap: int,
    seed: int,
    source: str,
) -> tuple[pd.DataFrame, dict[tuple[str, str], FloatArray]]:
    """One row per strategy and regime of ``paths``: :data:`METRICS` with ``_lo``/``_hi``
    95 % percentile-bootstrap bounds (paths resampled, the same draws for every strategy).

    Returns
    -------
    DataFrame
        ``source, strategy, regime, n``, the metrics and the P&L percentiles
        :data:`QUANTILES` (``pnl_q05_bp`` ...); the gated ensemble adds
        ``gate_share`` (share of hedge decisions blended toward the engine delta) and
        ``disagreement_mean``.
    dict
        ``(strategy, regime) -> P&L`` per path (bp), for paired comparisons.
    """
    rows, pnls = [], {}
    regimes = sorted(set(paths.regime.tolist()))
    rng = np.random.default_rng(seed)
    draws = {
        r: rng.integers(
            0, int((paths.regime == r).sum()), (bootstrap, int((paths.regime == r).sum()))
        )
        for r in regimes
    }
    for name, strategy in strategies.items():
        extra: dict[str, FloatArray] = {}
        if isinstance(strategy, GatedEnsemble):
            run = strategy.rollout(paths)
            positions = run.positions
            extra = {
                "gate_share": (run.blend > 0).mean(axis=1),
                "disagreement_mean": run.disagreement.mean(axis=1),
            }
        else:
            positions = strategy.positions(paths)
        res = outcome(paths, positions, cost_rate)
        for regime in regimes:
            mask = paths.regime == regime
            pnl, cost, turn = res.pnl[mask], res.cost[mask], res.turnover[mask]
            pnls[(name, regime)] = pnl
            point = _metrics(pnl, cost, turn, entropic_lambda)
            row: dict[str, Any] = {
                "source": source,
                "strategy": name,
                "regime": regime,
                "n": int(mask.sum()),
            }
            row.update(dict(zip(METRICS, point, strict=True)))
            if bootstrap:
                boot = np.array(
                    [_metrics(pnl[d], cost[d], turn[d], entropic_lambda) for d in draws[regime]]
                )
                lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
                for j, metric in enumerate(METRICS):
                    row[f"{metric}_lo"], row[f"{metric}_hi"] = lo[j], hi[j]
            # the P&L distribution, for the report's per-regime plots
            for q in QUANTILES:
                row[f"pnl_q{q:02d}_bp"] = float(np.percentile(pnl, q))
            for key, values in extra.items():
                row[key] = float(values[mask].mean())
            rows.append(row)
    return pd.DataFrame(rows), pnls


def paired_cvar_gap(
    a: FloatArray, b: FloatArray, bootstrap: int, seed: int
) -> tuple[float, float, float]:
    """``CVaR95(a) - CVaR95(b)`` on the same paths, with a 95 % paired-bootstrap interval (bp)."""
    point = cvar(a) - cvar(b)
    if not bootstrap:
        return point, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(bootstrap):
        d = rng.integers(0, a.size, a.size)
        gaps.append(cvar(a[d]) - cvar(b[d]))
    lo, hi = np.percentile(gaps, [2.5, 97.5])
    return point, float(lo), float(hi)


def verdict(
    pnls: Mapping[tuple[str, str], FloatArray], settings: PolicyHedgingSettings, seed: int
) -> pd.DataFrame:
    """The checks of the issue, as paired CVaR 95 gaps with bootstrap intervals (bp).

    * out of regime: ``CVaR(gated) - min over hedging baselines of CVaR`` on the held-out
      regime, passing when at most ``tolerance_bp``;
    * in regime: ``CVaR(black76) - CVaR(gated)`` on each training regime (positive: the gated
      policy improves on Black-76 delta), passing when the interval's lower end is above 0.
    """
    rows = []
    held = settings.out_of_regime
    if (GATED, held) in pnls:
        best = min(HEDGING_BASELINES, key=lambda b: cvar(pnls[(b, held)]))
        gap, lo, hi = paired_cvar_gap(
            pnls[(GATED, held)], pnls[(best, held)], settings.bootstrap, seed
        )
        rows.append(
            {
                "check": "out_of_regime",
                "regime": held,
                "versus": best,
                "gap_bp": gap,
                "gap_lo": lo,
                "gap_hi": hi,
                "passed": gap <= settings.tolerance_bp,
            }
        )
    for regime in settings.train_regimes:
        if (GATED, regime) not in pnls:
            continue
        gap, lo, hi = paired_cvar_gap(
            pnls[("black76", regime)], pnls[(GATED, regime)], settings.bootstrap, seed
        )
        rows.append(
            {
                "check": "in_regime",
                "regime": regime,
                "versus": "black76",
                "gap_bp": gap,
                "gap_lo": lo,
                "gap_hi": hi,
                "passed": bool(lo > 0) if np.isfinite(lo) else gap > 0,
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class PolicyHedgingResult:
    """The scorecard rows, the checks and what was trained."""

    scorecard: pd.DataFrame
    verdict: pd.DataFrame
    hedgers: TrainedHedgers
    settings: PolicyHedgingSettings


def run_policy_hedging(
    settings: Mapping[str, Any] | PolicyHedgingSettings, seed: int = 0
) -> PolicyHedgingResult:
    """The whole protocol (module docstring); the same seed gives the same result."""
    s = (
        settings
        if isinstance(settings, PolicyHedgingSettings)
        else PolicyHedgingSettings.from_mapping(settings)
    )
    tables: dict[str, BatesTable] = {}
    train_seed, val_seed, test_seed = (
        int(x) for x in np.random.SeedSequence(seed).generate_state(3)
    )
    train = regime_paths(s, s.train_regimes, s.n_train, train_seed, tables)
    validation = regime_paths(s, s.validation_regimes, s.n_validation, val_seed, tables)
    hedgers = train_hedgers(train, validation, s, seed)
    strategies: dict[str, Strategy] = dict(hedgers.baselines)
    strategies["ensemble_mean"] = GatedEnsemble(hedgers.members, np.inf, s.blend_rule)  # type: ignore[arg-type]
    strategies[GATED] = hedgers.gated
    test = regime_paths(s, s.test_regimes, s.n_test, test_seed, tables)
    card, pnls = scorecard(
        strategies,
        test,
        cost_rate=s.cost_rate,
        entropic_lambda=s.entropic_lambda,
        bootstrap=s.bootstrap,
        seed=seed,
        source="simulated",
    )
    cards = [card]
    if s.binance is not None:
        market = binance_paths(
            load_binance_hourly(s.binance),
            days=s.days,
            hedge_hours=s.hedge_hours,
            strikes=s.strikes,
        )
        cards.append(
            scorecard(
                strategies,
                market,
                cost_rate=s.cost_rate,
                entropic_lambda=s.entropic_lambda,
                bootstrap=s.bootstrap,
                seed=seed,
                source="binance",
            )[0]
        )
    if s.deribit is not None and s.deribit_perpetual is not None:
        cards.append(deribit_rows(hedgers, s))
    return PolicyHedgingResult(
        pd.concat(cards, ignore_index=True), verdict(pnls, s, seed), hedgers, s
    )


DERIBIT_NAMES = {"bs": "black76", "mv": "min_variance"}


def deribit_rows(hedgers: TrainedHedgers, s: PolicyHedgingSettings) -> pd.DataFrame:
    """Scorecard rows of the one-step hedges of real Deribit options (``source = deribit``):
    hedging-error std and CVaR 95 in bp of the forward per option-step, mean cost (USD) and
    turnover, per calibration window.

    Raises
    ------
    ValueError
        If the settings name no ``deribit`` snapshots or no ``deribit_perpetual`` prices.
    """
    if s.deribit is None or s.deribit_perpetual is None:
        raise ValueError(
            "deribit rows need both settings deribit (snapshots folder) and deribit_perpetual "
            f"(hourly prices); got {s.deribit!r} and {s.deribit_perpetual!r}"
        )
    snapshots = load_snapshots(s.deribit, s.deribit_underlying)
    closes = load_perpetual_hourly(s.deribit_perpetual, s.deribit_underlying)
    mean = GatedEnsemble(hedgers.members, np.inf, s.blend_rule)  # type: ignore[arg-type]
    steps = policy_steps(snapshots, {GATED: hedgers.gated, "ensemble_mean": mean}, closes)
    table = deribit_scorecard(steps, [GATED, "ensemble_mean"], s.cost_rate)
    return pd.DataFrame(
        {
            "source": "deribit",
            "strategy": table["delta"].map(lambda d: DERIBIT_NAMES.get(d, d)),
            "regime": table["regime"],
            "n": table["n"],
            "hedge_err_std_bp": table["hedge_err_std_bp"],
            "cvar95_bp": table["hedge_err_cvar95_bp"],
            "mean_cost_usd": table["mean_cost"],
            "turnover": table["turnover"],
        }
    )


def policy_hedging_protocol(settings: Mapping[str, Any], seed: int = 0) -> pd.DataFrame:
    """Scorecard rows of the hedging study for the study runner.

    Parameters
    ----------
    settings : mapping
        The ``[protocols] policy_hedging`` table (fields of :class:`PolicyHedgingSettings`).
    seed : int
        Seeds paths, training and bootstrap.

    Returns
    -------
    DataFrame
        ``protocol`` (``policy_hedging``), ``engine`` (the strategy), ``regime``, ``source``
        (``simulated``, ``binance``) and the columns of :func:`scorecard`, plus one row per
        check of :func:`verdict` (``engine = 'check:<name>'``, ``gap_bp``, its interval and
        ``passed``).
    """
    result = run_policy_hedging(settings, seed)
    card = result.scorecard.rename(columns={"strategy": "engine"})
    checks = result.verdict.assign(engine="check:" + result.verdict["check"], source="simulated")
    rows = pd.concat([card, checks.drop(columns="check")], ignore_index=True)
    return rows.assign(protocol="policy_hedging")
