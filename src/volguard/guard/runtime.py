"""The guard runtime: one underlying's engine watched snapshot by snapshot.

Per snapshot, in order (nothing here looks ahead):

0. swap in the refits that finished since the last update (:mod:`volguard.guard.refit`): in the
   default ``deferred`` mode, exactly the refits started at the previous snapshot; a primary
   refit becomes the scored model, and the served one when it validates (converged, median
   in-sample error within ``max_fit_vol_pts`` and ``max_fit_half_spreads``);
1. score the primary engine (fitted on earlier snapshots) against the new mids, on arrays
   (:mod:`volguard.guard.scoring`): per-quote errors into the
   :class:`~volguard.guard.monitors.ErrorMonitor`, the snapshot's
   :func:`~volguard.guard.monitors.error_rate`, standardized by its calm reference (mean and
   sd over the first ``warmup`` snapshots and, with ``grow_reference``, every one scored in
   NORMAL since) into ``z``;
2. feed ``z`` to the drift detectors, the 30-day ATM vol change to the
   :class:`~volguard.models.regime.AtmRegime`, the errors to the
   :class:`~volguard.guard.conformal.AdaptiveConformal` intervals, and summarise the trades
   since the last snapshot (their error against the served engine, in half-spreads);
3. let the :class:`~volguard.guard.policy.Policy` decide;
4. publish guarded quotes: the served engine's vol (the fallback's last fit in FALLBACK and
   worse), its conformal interval, and bid/ask vols widened by the policy's multiplier times the
   interval half-width, plus, when the served engine is an ensemble, a premium proportional to
   its members' disagreement;
5. start the refits that are due, in the background: the primary when ``refit_every`` has
   passed or the state is RECALIBRATE or worse, the fallback (on the liquid quotes) in FALLBACK
   and worse.

No fit runs inside ``update``: a snapshot is scored and decided on in about a millisecond, and
the refit it starts is swapped in at the next update (``deferred``: awaited there, so decisions
are reproducible) or at the first update after it finished (``async``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from volguard.data.events import Trade
from volguard.guard.conformal import AdaptiveConformal
from volguard.guard.drift import ADWIN, CUSUM, Detector, PageHinkley
from volguard.guard.monitors import ErrorMonitor, error_rate
from volguard.guard.policy import Decision, Observation, Policy, PolicySettings, State
from volguard.guard.refit import FitOutcome, RefitMode, Refitter
from volguard.guard.scoring import score
from volguard.kernels.api import black76_price
from volguard.market.clock import DAYS_PER_YEAR, SECONDS_PER_YEAR
from volguard.market.deribit import parse_deribit_instrument
from volguard.market.quotes import QuoteVols
from volguard.market.smile import atm_vol
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import SurfaceEngine
from volguard.models.regime import DVOL_MODEL, AtmRegime, RegimeModel

MIN_VOL = 0.01
"""Floor of a guarded bid vol (decimal), so that a widened bid stays a price."""

Metrics = dict[str, float | str | bool | None]


def default_detectors() -> dict[str, Detector]:
    """CUSUM, Page-Hinkley and ADWIN at their tuned defaults (:mod:`volguard.guard.drift`)."""
    return {"cusum": CUSUM(), "page_hinkley": PageHinkley(), "adwin": ADWIN()}


@dataclass(frozen=True)
class GuardSettings:
    """Settings of :class:`Guard` besides the engines (defaults documented in docs/guard.md).

    ``warmup``: snapshots whose error rates set the calm reference (no decisions before);
    ``min_scale``: floor of the reference sd (error-rate units: vol points per sqrt(day));
    ``grow_reference``: after the warm-up, the error rate of every update scored in NORMAL joins
    the reference, whose mean and sd are re-estimated from all of them (ten snapshots estimate
    an sd to within about +-45 % at 95 %: a reference frozen after them makes some runs alarm
    constantly and others never);
    ``refit_every``: routine refit period in NORMAL and WATCH; ``refit_mode``: when a
    background refit is swapped in (``deferred``: at the next update, awaited, deterministic;
    ``async``: at the first update after it finished); ``max_fit_vol_pts`` and
    ``max_fit_half_spreads``: validation limits on a refit's median in-sample |error|;
    ``max_half_spread_vol_pts``, ``min_quotes``: only quotes at most this wide (half-spread,
    vol points) are scored, and a snapshot with fewer such quotes is skipped as illiquid
    (a broken book says nothing about the engine);
    ``liquid_spread``: the fallback is fitted on quotes whose price spread is at most this share
    of their mid; ``alpha``, ``gamma``, ``aci_window``: the conformal intervals;
    ``disagreement_premium``: when the served engine is an ensemble, each quoted side moves out
    by this many times its members' vol disagreement at the quote (a premium for model
    uncertainty, on top of the state's widening);
    ``min_trades``, ``trade_alarm_half_spreads``: at least this many trades since the last
    snapshot whose median |served vol - trade vol| is at least this many of the last snapshot's
    median half-spreads raise an alarm (trades far outside the quoted spread: the market
    executes where the engine does not price).
    """

    policy: PolicySettings = field(default_factory=PolicySettings)
    warmup: int = 10
    min_scale: float = 0.25
    grow_reference: bool = True
    refit_every: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(days=1))
    refit_mode: RefitMode = "deferred"
    max_fit_vol_pts: float = 2.0
    max_fit_half_spreads: float = 2.0
    max_half_spread_vol_pts: float = 5.0
    min_quotes: int = 30
    liquid_spread: float = 0.25
    alpha: float = 0.1
    gamma: float = 0.05
    aci_window: int = 5
    disagreement_premium: float = 1.0
    min_trades: int = 3
    trade_alarm_half_spreads: float = 3.0

    def __post_init__(self) -> None:
        if self.min_trades < 1 or self.trade_alarm_half_spreads <= 0:
            raise ValueError(
                "min_trades must be >= 1 and trade_alarm_half_spreads > 0; got "
                f"{self.min_trades!r}, {self.trade_alarm_half_spreads!r}"
            )


@dataclass
class _Moments:
    """Running mean and sample sd (Welford 1962, doi:10.1080/00401706.1962.10490022)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    @property
    def sd(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else math.nan


@dataclass
class _Published:
    """The arrays behind :attr:`Guard.guarded`; the table is built when first read."""

    snapshot: MarketSnapshot
    rows: np.ndarray
    columns: dict[str, np.ndarray]
    state: str
    frame: pd.DataFrame | None = None

    def table(self) -> pd.DataFrame:
        if self.frame is None:
            names = self.snapshot.quotes["instrument"].to_numpy(dtype=object)[self.rows]
            c = self.columns
            self.frame = pd.DataFrame(
                {
                    "ts": self.snapshot.ts,
                    "underlying": self.snapshot.underlying,
                    "instrument": names,
                    **{n: c[n] for n in ("mid_iv", "model_iv", "lower_iv", "upper_iv")},
                    **{n: c[n] for n in ("disagreement_iv", "bid_iv", "ask_iv")},
                    **{n: c[n] for n in ("bid_usd", "ask_usd")},
                    "state": self.state,
                }
            )
        return self.frame


class Guard:
    """The guard of one underlying (see the module docstring).

    Parameters
    ----------
    engine : SurfaceEngine
        The primary engine (unfitted or fitted; it is cloned before each refit).
    fallback : SurfaceEngine
        The conservative engine served in FALLBACK and RISK_REDUCE.
    settings : GuardSettings, optional
    regime_model : RegimeModel, optional
        Defaults to :data:`~volguard.models.regime.DVOL_MODEL`.
    detectors : callable, optional
        Factory of the named drift detectors (default :func:`default_detectors`).
    executor : Executor, optional
        Where refits run (default: one worker thread per guard); not pickled with the guard.
    """

    def __init__(
        self,
        engine: SurfaceEngine,
        fallback: SurfaceEngine,
        settings: GuardSettings | None = None,
        regime_model: RegimeModel = DVOL_MODEL,
        detectors: Callable[[], dict[str, Detector]] = default_detectors,
        executor: Executor | None = None,
    ) -> None:
        self.engine = engine
        self.fallback = fallback
        self.settings = settings or GuardSettings()
        self.regime_model = regime_model
        self.detectors = detectors
        self.executor = executor
        self.reset()

    def reset(self) -> None:
        """Forget everything: no fitted engine, no reference, NORMAL, no refit in flight."""
        s = self.settings
        previous: Refitter | None = getattr(self, "_refitter", None)
        if previous is not None:
            previous.close()
        self._refitter = Refitter(s.refit_mode, self.executor)
        self._primary: SurfaceEngine | None = None  # the last validated fit: served
        self._tracker: SurfaceEngine | None = None  # the last fit, valid or not: scored
        self._fallback_fit: SurfaceEngine | None = None
        self._floor = 0.0
        self._served: SurfaceEngine | None = None
        self._monitor = ErrorMonitor()
        self._trade_monitor = ErrorMonitor()
        self._trades: list[tuple[float, float, float]] = []  # (t, k, model - trade vol)
        self._trades_skipped = 0
        self._detectors = self.detectors()
        self._regime = AtmRegime(self.regime_model)
        self._aci = AdaptiveConformal(s.alpha, s.gamma, s.aci_window)
        self._policy = Policy(s.policy)
        self._reference = _Moments()
        self._center = math.nan
        self._scale = math.nan
        self._seq = 0
        self._decision: Decision | None = None
        self._published: _Published | None = None
        self._context: MarketSnapshot | None = None
        self._half_spread = math.nan
        # what an illiquid snapshot could not tell the policy, kept for the next liquid one
        self._held: tuple[bool | None, bool] = (None, False)

    def close(self) -> None:
        """Stop the refit worker (a later update starts a new one)."""
        self._refitter.close()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle (the replay's checkpoint) without the executor; a refit in flight keeps its
        result (it is waited for: a fit may still be filling the snapshot's cached tables)."""
        self._refitter.settle()
        state = dict(self.__dict__)
        state["executor"] = None
        return state

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> State:
        return self._policy.state

    @property
    def decision(self) -> Decision | None:
        """The decision of the last update."""
        return self._decision

    @property
    def guarded(self) -> pd.DataFrame:
        """Guarded quotes of the last snapshot (empty before the first fit)."""
        return pd.DataFrame() if self._published is None else self._published.table()

    @property
    def served(self) -> SurfaceEngine | None:
        """The engine the guard serves now (the primary, or the fallback in FALLBACK and worse)."""
        return self._served

    @property
    def context(self) -> MarketSnapshot | None:
        """The last snapshot: the time and forwards that prices are quoted in."""
        return self._context

    @property
    def typical_half_spread(self) -> float:
        """Median half-spread (decimal vol) of the last snapshot's scored quotes: the unit of
        the conformal half-width for contracts without a quote of their own."""
        return self._half_spread

    @property
    def trade_monitor(self) -> ErrorMonitor:
        """Error summaries of the served engine against trades (vol points; no half-spreads)."""
        return self._trade_monitor

    @property
    def monitor(self) -> ErrorMonitor:
        return self._monitor

    @property
    def conformal(self) -> AdaptiveConformal:
        return self._aci

    @property
    def refitter(self) -> Refitter:
        """The background refits: ``fits``, ``fit_seconds`` (their own cost) and
        ``wait_seconds`` (time updates spent waiting for them)."""
        return self._refitter

    # ------------------------------------------------------------------ update
    def update(self, x: MarketSnapshot | Trade) -> None:
        """Process one snapshot (steps 0-5 of the module docstring) or one trade.

        A trade is scored at once against the served engine (its vol vs the trade's implied
        vol, at the last snapshot's forward for its expiry); the trades since the last snapshot
        are summarised in the next snapshot's decision (``trades``, ``trade_mae_vol_pts``,
        ``trade_bias_vol_pts``, ``trade_mae_half_spreads``, ``trade_alarm``) and in
        :attr:`trade_monitor`, and raise an alarm in the policy when at least ``min_trades`` of
        them have a median error of ``trade_alarm_half_spreads`` or more. Trades without an
        implied vol, with a name that is not an option, or with an expiry the last snapshot does
        not list are counted in ``trades_skipped``.
        """
        if isinstance(x, Trade):
            self._score_trade(x)
            return
        snapshot = x
        s = self.settings
        metrics: Metrics = {}
        refit_valid = self._swap_in(metrics)
        trade_alarm = self._summarise_trades(metrics)
        held_refit, held_alarm = self._held
        refit_valid = held_refit if refit_valid is None else refit_valid
        trade_alarm = trade_alarm or held_alarm
        self._held = (None, False)
        observed = QuoteVols.from_snapshot(snapshot)
        liquid = observed.subset(observed.half_spread_iv * 100 <= s.max_half_spread_vol_pts)
        metrics.update(
            n_quotes=len(observed),
            n_liquid=len(liquid),
            forward_30d_usd=_forward_near(observed, 30.0),
        )
        if len(liquid) < s.min_quotes:
            state = self._policy.state
            self._held = (refit_valid, trade_alarm)
            self._publish(snapshot, observed, metrics, state, state, "hold", "illiquid")
            return
        self._half_spread = float(np.median(liquid.half_spread_iv))
        z = rate = math.nan
        alarms: tuple[str, ...] = ()
        if self._tracker is not None:
            scores = score(self._tracker, liquid)
            self._monitor.update_arrays(liquid.t, liquid.k, scores.err_vol, scores.err_hs)
            abs_err = np.abs(scores.err_vol) * 100
            age = (snapshot.ts - self._tracker.ts_).total_seconds() / 86_400
            mae = float(np.median(abs_err))
            rate = error_rate(mae, self._floor, age)
            self._aci.update(
                scores.model_iv, liquid.mid_iv, np.maximum(liquid.half_spread_iv, 1e-4)
            )
            metrics.update(
                mae_vol_pts=mae,
                bias_vol_pts=float(np.median(scores.err_vol) * 100),
                mae_half_spreads=float(np.nanmedian(np.abs(scores.err_hs))),
                floor_vol_pts=self._floor,
                age_days=age,
                error_rate=rate,
                aci_miss=self._aci.last_miss_rate,
            )
            if self._reference.n < s.warmup:
                self._learn(rate)
            else:
                z = (rate - self._center) / self._scale
                fired = []
                for name, det in self._detectors.items():
                    det.update(z)
                    if det.drift_detected:
                        fired.append(name)
                alarms = tuple(fired)
        p_stress = self._update_regime(snapshot.ts, liquid, metrics)
        previous = self._policy.state
        if math.isnan(z):  # no reference yet
            state, reason = previous, "warmup"
            action = "fit" if refit_valid else "hold"
        else:
            self._policy.update(
                Observation(snapshot.ts, z, alarms, p_stress, refit_valid, trade_alarm)
            )
            state, action, reason = self._policy.state, self._policy.action, self._policy.reason
            if s.grow_reference and previous == State.NORMAL:
                # alarms too, winsorized at z_watch: leaving the high ones out would shrink the
                # sd, taking one shock in whole would inflate it for good
                self._learn(min(rate, self._center + s.policy.z_watch * self._scale))
        metrics.update(z=z, detectors=",".join(alarms), p_stress=p_stress)
        self._publish(snapshot, observed, metrics, previous, state, action, reason)
        # last: a worker thread fitting meanwhile would contend for the interpreter lock
        self._start_refits(snapshot, state)

    def _learn(self, rate: float) -> None:
        """Add a calm error rate to the reference (the mean and sd that standardize ``z``);
        an undefined rate (no liquid residual) teaches nothing."""
        if not math.isfinite(rate):
            return
        self._reference.add(rate)
        if self._reference.n >= self.settings.warmup:
            self._center = self._reference.mean
            self._scale = max(self._reference.sd, self.settings.min_scale)

    def _swap_in(self, metrics: Metrics) -> bool | None:
        """Take the finished refits; returns whether the primary's validated (None: none)."""
        s = self.settings
        fallback = self._refitter.take("fallback")
        if fallback is not None:
            self._fallback_fit = fallback.engine
        outcome: FitOutcome | None = self._refitter.take("primary")
        if outcome is None:
            return None
        metrics["refit_ts"] = outcome.snapshot_ts.isoformat()
        if outcome.engine is None:
            metrics["refit_error"] = outcome.error
            return False
        valid = (
            outcome.converged
            and outcome.fit_vol_pts <= s.max_fit_vol_pts
            and outcome.fit_half_spreads <= s.max_fit_half_spreads
        )
        metrics.update(
            fit_vol_pts=outcome.fit_vol_pts,
            fit_half_spreads=outcome.fit_half_spreads,
            refit_valid=valid,
        )
        self._tracker, self._floor = outcome.engine, outcome.fit_vol_pts
        if self._primary is None:  # the first fit is served whatever its quality
            self._primary = outcome.engine
            return True
        if valid:
            self._primary = outcome.engine
        return valid

    def _start_refits(self, snapshot: MarketSnapshot, state: State) -> None:
        s = self.settings
        due = (
            self._tracker is None
            or state >= State.RECALIBRATE
            # 3 h of slack: "daily" snapshots arrive up to an hour or two early or late
            or snapshot.ts - self._tracker.ts_ >= s.refit_every - pd.Timedelta(hours=3)
        )
        if due:
            self._refitter.submit("primary", self.engine, snapshot)
        if state >= State.FALLBACK:
            self._refitter.submit("fallback", self.fallback, snapshot, s.liquid_spread)

    def _publish(
        self,
        snapshot: MarketSnapshot,
        observed: QuoteVols,
        metrics: Metrics,
        previous: State,
        state: State,
        action: str,
        reason: str,
    ) -> None:
        self._context = snapshot
        self._served, served = self._primary, self.engine.name
        if state < State.FALLBACK:
            self._fallback_fit = None  # a later FALLBACK starts from a fresh fit
        elif self._fallback_fit is not None:  # until its first fit lands, the primary serves
            self._served, served = self._fallback_fit, self.fallback.name
        metrics.update(
            served=served,
            aci_half_width=self._aci.half_width,
            aci_alpha_t=self._aci.alpha_t,
        )
        self._decision = Decision(
            self._seq,
            snapshot.ts,
            snapshot.underlying,
            state.name,
            previous.name,
            action,
            reason,
            metrics,
        )
        self._seq += 1
        self._published = self._guard_quotes(snapshot, observed, state)

    # ------------------------------------------------------------------ helpers
    def _score_trade(self, trade: Trade) -> None:
        engine, context = self._served, self._context
        try:
            option = parse_deribit_instrument(trade.instrument)
        except ValueError:
            option = None
        forward = math.nan
        if option is not None and context is not None:
            forwards = context.forwards
            if option.expiry in forwards.index:
                forward = float(forwards[option.expiry])
        t = (option.expiry - trade.ts).total_seconds() / SECONDS_PER_YEAR if option else math.nan
        if (
            engine is None
            or option is None
            or not (math.isfinite(trade.iv) and math.isfinite(forward) and t > 0)
        ):
            self._trades_skipped += 1
            return
        k = math.log(option.strike / forward)
        model = float(engine.implied_vol(np.array([k]), np.array([t]))[0])
        self._trades.append((t, k, model - trade.iv))

    def _summarise_trades(self, metrics: Metrics) -> bool:
        """Trade metrics since the last snapshot; returns whether they raise an alarm."""
        s = self.settings
        metrics.update(trades=len(self._trades), trades_skipped=self._trades_skipped)
        alarm = False
        if self._trades:
            t, k, err = (np.array(col) for col in zip(*self._trades, strict=True))
            mae_hs = float(np.median(np.abs(err)) / self._half_spread)  # NaN before a snapshot
            alarm = len(err) >= s.min_trades and mae_hs >= s.trade_alarm_half_spreads
            metrics.update(
                trade_mae_vol_pts=float(np.median(np.abs(err)) * 100),
                trade_bias_vol_pts=float(np.median(err) * 100),
                trade_mae_half_spreads=mae_hs,
                trade_alarm=alarm,
            )
            self._trade_monitor.update_arrays(t, k, err, np.full(err.size, np.nan))
        self._trades.clear()
        self._trades_skipped = 0
        return alarm

    def _update_regime(self, ts: pd.Timestamp, liquid: QuoteVols, metrics: Metrics) -> float:
        atm = atm_vol(liquid.t, liquid.k, liquid.mid_iv) * 100 if len(liquid) else math.nan
        change = self._regime.update(ts, atm)
        metrics.update(atm_vol_30d=atm, atm_change_per_sqrt_day=change)
        return self._regime.stress_probability

    def _guard_quotes(
        self, snapshot: MarketSnapshot, observed: QuoteVols, state: State
    ) -> _Published | None:
        if self._served is None or len(observed) == 0:
            return None
        model = score(self._served, observed).model_iv
        half = np.maximum(observed.half_spread_iv, 1e-4)
        width = self._aci.half_width
        if not math.isfinite(width):
            width = 1.0  # no score yet: one half-spread
        members = getattr(self._served, "disagreement", None)  # an ensemble's member spread
        spread = (
            np.asarray(members(observed.k, observed.t), dtype=float)
            if callable(members)
            else np.zeros(len(observed))
        )
        quote_half = half * (1.0 + self._policy.settings.widen[state] * width)
        quote_half = quote_half + self.settings.disagreement_premium * spread
        bid_iv = np.maximum(model - quote_half, MIN_VOL)
        ask_iv = model + quote_half
        f, strike, t, is_call = observed.forward, observed.strike, observed.t, observed.is_call
        columns = {
            "mid_iv": observed.mid_iv,
            "model_iv": model,
            "lower_iv": model - width * half,
            "upper_iv": model + width * half,
            "disagreement_iv": spread,
            "bid_iv": bid_iv,
            "ask_iv": ask_iv,
            "bid_usd": black76_price(f, strike, t, bid_iv, is_call),
            "ask_usd": black76_price(f, strike, t, ask_iv, is_call),
        }
        return _Published(snapshot, observed.rows, columns, state.name)


def _forward_near(observed: QuoteVols, days: float) -> float:
    """The forward (USD) of the expiry nearest ``days`` (NaN without quotes): the price line
    of the report."""
    if len(observed) == 0:
        return math.nan
    return float(observed.forward[int(np.argmin(np.abs(observed.t - days / DAYS_PER_YEAR)))])
