"""Adversarial stress search: the scenario, within bounds, that an engine prices worst.

For each candidate parameter vector the base snapshot is stressed (:func:`volguard.sim.stress.
stress` on a :class:`~volguard.sim.stress.Reference` fitted once), a fresh clone of the engine is
fitted to the stressed quotes, and its error against the stressed truth is measured on every
base instrument (also those the stress hid: extrapolation counts). Scipy's differential
evolution maximises that error over the box; it is seeded, so a search is reproducible.

Objectives:

- ``iv_rmse``: root-mean-square of engine minus true implied vol, vol points (1 = 0.01), the
  engine's vol read at the moneyness it sees (``ln(K/F)`` at the quoted forward);
- ``price_rmse``: root-mean-square of engine minus true price, USD per unit of underlying, the
  engine pricing with the stressed snapshot's forwards (:meth:`SurfaceEngine.price`);
- ``hedge_rmse``: the hedging loss. The engine is fitted to the *base* snapshot; each base
  instrument, held long and delta-hedged with the engine's sticky-strike delta, is carried from
  the base market to the stressed one: P&L ``V1 - V0 - delta (F1 - F0)`` with true prices and
  forwards; root-mean-square over the instruments, USD per unit. Only surface transforms move
  it (the quotes of the stressed market are not used).

References
----------
Storn, R. and Price, K. (1997), Differential evolution - a simple and efficient heuristic for
global optimization over continuous spaces, J. Global Optimization 11, 341-359,
doi:10.1023/A:1008202821328.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy.optimize import differential_evolution
from sklearn.base import clone

from volguard._typing import FloatArray
from volguard.errors import ConfigError
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import SurfaceEngine
from volguard.sim.stress import TRANSFORMS, Reference, StressResult, StressScenario, compose, stress

Objective = Literal["iv_rmse", "price_rmse", "hedge_rmse"]
OBJECTIVES: tuple[str, ...] = ("iv_rmse", "price_rmse", "hedge_rmse")

DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {
    "jump.size": (-0.3, 0.3),
    "jump.beta": (0.0, 1.0),
    "vol_shock.level": (-0.5, 1.0),
    "vol_shock.term_decay": (0.0, 1.0),
    "skew_twist.amount": (-0.8, 0.8),
    "corr_flip.strength": (0.0, 1.0),
    "basis.shift": (-0.05, 0.05),
    "basis.lag": (0.0, 1.0),
    "crunch.spread_mult": (1.0, 5.0),
    "crunch.wing_cut": (0.5, 3.0),
    "crunch.bid_drop": (0.0, 0.6),
    "stale.fraction": (0.0, 0.3),
}
"""The search box: every parameter of every named scenario lies inside it (a test checks), so
the search is over scenarios of the library's kind and size, combined."""


def scenario_error(
    engine: SurfaceEngine,
    result: StressResult,
    objective: Objective = "iv_rmse",
    reference: Reference | None = None,
) -> float:
    """Error of a fresh clone of ``engine`` fitted to ``result.snapshot``, against its truth.

    For ``hedge_rmse`` the clone is fitted to ``reference.snapshot`` instead (the base market,
    required). Returns NaN where the clone cannot be fitted (no two-sided quote left).

    Raises
    ------
    ValueError
        If ``objective`` is unknown, or is ``hedge_rmse`` without ``reference``.

    Examples
    --------
    >>> from volguard.models.registry import make_engine
    >>> from volguard.sim.stress import VolShock, stress, synthetic_snapshot
    >>> res = stress(synthetic_snapshot(), [VolShock(level=0.3)])
    >>> round(scenario_error(make_engine("svi"), res), 2)
    0.05
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r} is unknown; expected one of {OBJECTIVES}")
    if objective == "hedge_rmse":
        if reference is None:
            raise ValueError("objective 'hedge_rmse' needs the base market: pass reference")
        return _HedgeBase.fit(engine, reference).loss(result)
    fitted = clone(engine)
    try:
        fitted.fit(result.snapshot)
    except ValueError:
        return float("nan")
    truth = result.truth
    if objective == "iv_rmse":
        forward_seen = result.snapshot.forwards.reindex(pd.DatetimeIndex(truth["expiry"]))
        k_seen = np.log(truth["strike"].to_numpy() / forward_seen.to_numpy(dtype=float))
        diff = fitted.implied_vol(k_seen, truth["t"].to_numpy()) - truth["iv"].to_numpy()
        return float(np.sqrt(np.mean(diff**2)) * 100)
    diff = fitted.price(truth, result.snapshot) - truth["price"].to_numpy()
    return float(np.sqrt(np.mean(diff**2)))


@dataclass(frozen=True, eq=False)
class _HedgeBase:
    """Base prices, forwards and the engine's deltas of every base instrument (fitted once)."""

    price: FloatArray
    forward: FloatArray
    delta: FloatArray

    @classmethod
    def fit(cls, engine: SurfaceEngine, reference: Reference) -> _HedgeBase:
        fitted = clone(engine).fit(reference.snapshot)
        base = stress(reference, []).truth
        return cls(
            base["price"].to_numpy(),
            base["forward"].to_numpy(),
            fitted.greeks(base, reference.snapshot)["delta"],
        )

    def loss(self, result: StressResult) -> float:
        after = result.truth
        pnl = (
            after["price"].to_numpy()
            - self.price
            - self.delta * (after["forward"].to_numpy() - self.forward)
        )
        return float(np.sqrt(np.mean(pnl**2)))


@dataclass(frozen=True, eq=False)
class AdversarialResult:
    """The outcome of :func:`adversarial_search`.

    Attributes
    ----------
    engine : str
    objective : str
    worst : StressScenario
        The worst scenario found (name ``adversarial``).
    worst_error : float
        Its error, in the objective's unit.
    path : DataFrame
        One row per evaluation, in order: ``evaluation``, ``generation`` (0 = initial
        population), each searched parameter, ``error`` (NaN where the engine could not be
        fitted), ``arbitrage`` (static-arbitrage violations of the stressed surface).
    baselines : dict of str to float
        Error of each named scenario given, same engine, snapshot, objective and seed.
    elapsed_s : float
        Wall time of the search, seconds (baselines included).
    """

    engine: str
    objective: str
    worst: StressScenario
    worst_error: float
    path: pd.DataFrame
    baselines: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def worst_params(self) -> dict[str, float]:
        """The searched parameters of the worst case."""
        return self.worst.params

    @property
    def worst_baseline(self) -> tuple[str, float] | None:
        """The named scenario with the largest error, or None without baselines."""
        finite = {k: v for k, v in self.baselines.items() if np.isfinite(v)}
        if not finite:
            return None
        name = max(finite, key=finite.__getitem__)
        return name, finite[name]


def adversarial_search(
    engine: SurfaceEngine,
    snapshot: MarketSnapshot | Reference,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    *,
    objective: Objective = "iv_rmse",
    baselines: Mapping[str, StressScenario] | None = None,
    seed: int = 0,
    maxiter: int = 8,
    popsize: int = 3,
) -> AdversarialResult:
    """Search the scenario box for the stress that maximises ``engine``'s error.

    Parameters
    ----------
    engine : SurfaceEngine
        The engine under test (unfitted is fine; each candidate fits a clone).
    snapshot : MarketSnapshot or Reference
        The base market (fitted once to its eSSVI reference).
    bounds : mapping of str to (float, float), optional
        ``{"kind.param": (lo, hi)}`` of the searched parameters (units as in
        :mod:`volguard.sim.stress`), each inside the transform's own bounds; default
        :data:`DEFAULT_BOUNDS`. Parameters not named keep their defaults.
    objective : {'iv_rmse', 'price_rmse', 'hedge_rmse'}
        What is maximised (see the module docstring).
    baselines : mapping of str to StressScenario, optional
        Named scenarios to score alongside, e.g. :data:`volguard.sim.stress_library.LIBRARY`.
    seed : int
        Seeds differential evolution and the quote transforms' draws (the same draws for every
        candidate, so the error is a deterministic function of the parameters).
    maxiter, popsize : int
        Differential-evolution generations and population multiplier (population
        ``max(5, popsize * len(bounds))``); evaluations ``(maxiter + 1)`` times the population.

    Returns
    -------
    AdversarialResult

    Raises
    ------
    ConfigError
        If a bound names an unknown parameter or lies outside the transform's bounds.
    ValueError
        If ``objective`` is unknown.

    Examples
    --------
    >>> from volguard.models.registry import make_engine
    >>> from volguard.sim.stress import synthetic_snapshot
    >>> res = adversarial_search(make_engine("black76-flat"), synthetic_snapshot(),
    ...                          {"skew_twist.amount": (-0.8, 0.8)}, maxiter=3)
    >>> worst = res.worst_params["skew_twist.amount"]
    >>> round(worst, 1), len(res.path), int(res.path["generation"].max())
    (0.8, 20, 3)
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r} is unknown; expected one of {OBJECTIVES}")
    box = dict(DEFAULT_BOUNDS if bounds is None else bounds)
    if not box:
        raise ConfigError("bounds is empty; name at least one parameter to search")
    for key, (lo, hi) in box.items():
        kind, _, name = key.partition(".")
        cls = TRANSFORMS.get(kind)
        if cls is None or name not in cls.bounds:
            compose({key: lo})  # raises the unknown-parameter error
            continue
        low, high = cls.bounds[name]
        if not low <= lo < hi <= high:
            raise ConfigError(
                f"bounds[{key!r}] = ({lo}, {hi}) must satisfy {low} <= lo < hi <= {high}"
            )
    start = time.perf_counter()
    ref = snapshot if isinstance(snapshot, Reference) else Reference.fit(snapshot)
    names = list(box)
    rows: list[dict[str, float]] = []

    hedge = _HedgeBase.fit(engine, ref) if objective == "hedge_rmse" else None

    def error(res: StressResult) -> float:
        return hedge.loss(res) if hedge is not None else scenario_error(engine, res, objective)

    def evaluate(x: FloatArray) -> float:
        scen = compose(dict(zip(names, (float(v) for v in x), strict=True)), "adversarial")
        res = stress(ref, scen, seed=seed)
        err = error(res)
        rows.append({**scen.params, "error": err, "arbitrage": res.arbitrage.total})
        return -err if np.isfinite(err) else 0.0  # an unfittable case is not a pricing error

    population = max(5, popsize * len(names))  # scipy's floor on the population
    differential_evolution(
        evaluate,
        [box[n] for n in names],
        seed=seed,
        maxiter=maxiter,
        popsize=popsize,
        polish=False,
        tol=0.0,
    )
    path = pd.DataFrame(rows)
    path.insert(0, "generation", np.arange(len(path)) // population)
    path.insert(0, "evaluation", np.arange(len(path)))
    keep = ["evaluation", "generation", *names, "error", "arbitrage"]
    path = path[keep]
    best = int(path["error"].fillna(-np.inf).to_numpy().argmax())
    worst = compose({n: float(path[n].iloc[best]) for n in names}, "adversarial")
    scores = {name: error(stress(ref, scen, seed=seed)) for name, scen in (baselines or {}).items()}
    return AdversarialResult(
        engine=engine.name,
        objective=objective,
        worst=worst,
        worst_error=float(path["error"].iloc[best]),
        path=path,
        baselines=scores,
        elapsed_s=time.perf_counter() - start,
    )
