"""The guard runtime: one underlying's engine watched snapshot by snapshot.

Per snapshot, in order (nothing here looks ahead):

1. score the primary engine (fitted on earlier snapshots) against the new mids: per-quote
   errors into the :class:`~volguard.guard.monitors.ErrorMonitor`, the snapshot's
   :func:`~volguard.guard.monitors.error_rate`, standardized by its calm reference (mean and sd
   over the first ``warmup`` snapshots) into ``z``;
2. feed ``z`` to the drift detectors, the 30-day ATM vol change to the
   :class:`~volguard.guard.regime.RegimeFilter`, the errors to the
   :class:`~volguard.guard.conformal.AdaptiveConformal` intervals;
3. refit the primary on this snapshot when it is due (``refit_every``) or the state is
   RECALIBRATE or worse, and validate the refit (converged, median in-sample error within
   ``max_fit_vol_pts`` and ``max_fit_half_spreads``);
4. let the :class:`~volguard.guard.policy.Policy` decide, swap in a validated refit, fit the
   fallback engine on the liquid quotes when the state is FALLBACK or worse;
5. publish guarded quotes: the served engine's vol, its conformal interval, and bid/ask vols
   widened by the policy's multiplier times the interval half-width, plus, when the served
   engine is an ensemble, a premium proportional to its members' disagreement.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone

from volguard.guard.conformal import AdaptiveConformal
from volguard.guard.deribit_ws import MessageError, parse_instrument
from volguard.guard.drift import ADWIN, CUSUM, Detector, PageHinkley
from volguard.guard.events import Trade
from volguard.guard.monitors import ErrorMonitor, error_rate
from volguard.guard.policy import Decision, Observation, Policy, PolicySettings, State
from volguard.guard.regime import DVOL_MODEL, RegimeFilter, RegimeModel, atm_vol_30d
from volguard.guard.residuals import residuals
from volguard.kernels.api import black76_price
from volguard.market.contracts import SECONDS_PER_YEAR
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import SurfaceEngine
from volguard.models.quotes import observed_vols

MIN_VOL = 0.01
"""Floor of a guarded bid vol (decimal), so that a widened bid stays a price."""


def default_detectors() -> dict[str, Detector]:
    """CUSUM, Page-Hinkley and ADWIN at their tuned defaults (:mod:`volguard.guard.drift`)."""
    return {"cusum": CUSUM(), "page_hinkley": PageHinkley(), "adwin": ADWIN()}


@dataclass(frozen=True)
class GuardSettings:
    """Settings of :class:`Guard` besides the engines (defaults documented in docs/guard.md).

    ``warmup``: snapshots whose error rates set the calm reference (no decisions before);
    ``min_scale``: floor of the reference sd (error-rate units: vol points per sqrt(day));
    ``refit_every``: routine refit period in NORMAL and WATCH; ``max_fit_vol_pts`` and
    ``max_fit_half_spreads``: validation limits on a refit's median in-sample |error|;
    ``max_half_spread_vol_pts``, ``min_quotes``: only quotes at most this wide (half-spread,
    vol points) are scored, and a snapshot with fewer such quotes is skipped as illiquid
    (a broken book says nothing about the engine);
    ``liquid_spread``: the fallback is fitted on quotes whose price spread is at most this share
    of their mid; ``alpha``, ``gamma``, ``aci_window``: the conformal intervals;
    ``disagreement_premium``: when the served engine is an ensemble, each quoted side moves out
    by this many times its members' vol disagreement at the quote (a premium for model
    uncertainty, on top of the state's widening).
    """

    policy: PolicySettings = field(default_factory=PolicySettings)
    warmup: int = 10
    min_scale: float = 0.25
    refit_every: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(days=1))
    max_fit_vol_pts: float = 2.0
    max_fit_half_spreads: float = 2.0
    max_half_spread_vol_pts: float = 5.0
    min_quotes: int = 30
    liquid_spread: float = 0.25
    alpha: float = 0.1
    gamma: float = 0.05
    aci_window: int = 5
    disagreement_premium: float = 1.0


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
        Defaults to :data:`~volguard.guard.regime.DVOL_MODEL`.
    detectors : callable, optional
        Factory of the named drift detectors (default :func:`default_detectors`).
    """

    def __init__(
        self,
        engine: SurfaceEngine,
        fallback: SurfaceEngine,
        settings: GuardSettings | None = None,
        regime_model: RegimeModel = DVOL_MODEL,
        detectors: Callable[[], dict[str, Detector]] = default_detectors,
    ) -> None:
        self.engine = engine
        self.fallback = fallback
        self.settings = settings or GuardSettings()
        self.regime_model = regime_model
        self.detectors = detectors
        self.reset()

    def reset(self) -> None:
        """Forget everything: no fitted engine, no reference, NORMAL."""
        s = self.settings
        self._primary: SurfaceEngine | None = None  # the last validated fit: served
        self._tracker: SurfaceEngine | None = None  # the last fit, valid or not: scored
        self._floor = 0.0
        self._served: SurfaceEngine | None = None
        self._monitor = ErrorMonitor()
        self._trade_monitor = ErrorMonitor()
        self._trades: list[tuple[float, float, float]] = []  # (t, k, model - trade vol)
        self._trades_skipped = 0
        self._forwards: pd.Series | None = None
        self._detectors = self.detectors()
        self._regime = RegimeFilter(self.regime_model)
        self._aci = AdaptiveConformal(s.alpha, s.gamma, s.aci_window)
        self._policy = Policy(s.policy)
        self._warm: list[float] = []
        self._center = math.nan
        self._scale = math.nan
        self._last_atm: tuple[pd.Timestamp, float] | None = None
        self._seq = 0
        self._decision: Decision | None = None
        self._guarded = pd.DataFrame()
        self._context: MarketSnapshot | None = None
        self._half_spread = math.nan

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
        return self._guarded

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

    # ------------------------------------------------------------------ update
    def update(self, x: MarketSnapshot | Trade) -> None:
        """Process one snapshot (steps 1-5 of the module docstring) or one trade.

        A trade is scored at once against the served engine (its vol vs the trade's implied
        vol, at the last snapshot's forward for its expiry); the trades since the last snapshot
        are summarised in that snapshot's decision (``trades``, ``trade_mae_vol_pts``,
        ``trade_bias_vol_pts``) and in :attr:`trade_monitor`. They inform, they do not move the
        policy (snapshots do). Trades without an implied vol, with a name that is not an option,
        or with an expiry the last snapshot does not list are counted in ``trades_skipped``.
        """
        if isinstance(x, Trade):
            self._score_trade(x)
            return
        snapshot = x
        s = self.settings
        observed = observed_vols(snapshot)
        liquid = observed[observed["half_spread_iv"] * 100 <= s.max_half_spread_vol_pts]
        metrics: dict[str, float | str | bool | None] = {
            "n_quotes": len(observed),
            "n_liquid": len(liquid),
            "forward_30d_usd": _forward_near(observed, 30.0),
        }
        if len(liquid) < s.min_quotes:
            self._skip(snapshot, observed, metrics)
            return
        self._half_spread = float(np.median(liquid["half_spread_iv"]))
        z = math.nan
        alarms: tuple[str, ...] = ()
        if self._tracker is not None:
            res = residuals(self._tracker, liquid)
            self._monitor.update(res)
            abs_err = np.abs(res["err_vol"].to_numpy(dtype=float)) * 100
            age = (snapshot.ts - self._tracker.ts_).total_seconds() / 86_400
            rate = error_rate(float(np.median(abs_err)), self._floor, age)
            half = res["half_spread_iv"].to_numpy(dtype=float)
            self._aci.update(
                res["model_iv"].to_numpy(dtype=float),
                res["mid_iv"].to_numpy(dtype=float),
                np.maximum(half, 1e-4),
            )
            metrics.update(
                mae_vol_pts=float(np.median(abs_err)),
                bias_vol_pts=float(np.median(res["err_vol"]) * 100),
                mae_half_spreads=float(np.nanmedian(np.abs(res["err_hs"]))),
                floor_vol_pts=self._floor,
                age_days=age,
                error_rate=rate,
                aci_miss=self._aci.last_miss_rate,
            )
            if len(self._warm) < s.warmup:
                self._warm.append(rate)
                if len(self._warm) == s.warmup:
                    self._center = float(np.mean(self._warm))
                    self._scale = max(float(np.std(self._warm, ddof=1)), s.min_scale)
            else:
                z = (rate - self._center) / self._scale
                fired = []
                for name, det in self._detectors.items():
                    det.update(z)
                    if det.drift_detected:
                        fired.append(name)
                alarms = tuple(fired)
        p_stress = self._update_regime(snapshot.ts, liquid, metrics)
        candidate, valid = self._maybe_refit(snapshot, metrics)
        previous = self._policy.state
        if math.isnan(z):  # no reference yet
            state, reason = previous, "warmup"
            action = "fit" if candidate is not None and valid else "hold"
        else:
            self._policy.update(Observation(snapshot.ts, z, alarms, p_stress, valid))
            state, action, reason = self._policy.state, self._policy.action, self._policy.reason
        if candidate is not None:
            self._tracker, self._floor = candidate, float(metrics["fit_vol_pts"] or 0.0)
            if valid:
                self._primary = candidate
        metrics.update(z=z, detectors=",".join(alarms), p_stress=p_stress)
        self._summarise_trades(metrics)
        self._publish(snapshot, observed, metrics, previous, state, action, reason)

    def _skip(
        self,
        snapshot: MarketSnapshot,
        observed: pd.DataFrame,
        metrics: dict[str, float | str | bool | None],
    ) -> None:
        state = self._policy.state
        self._publish(snapshot, observed, metrics, state, state, "hold", "illiquid")

    def _publish(
        self,
        snapshot: MarketSnapshot,
        observed: pd.DataFrame,
        metrics: dict[str, float | str | bool | None],
        previous: State,
        state: State,
        action: str,
        reason: str,
    ) -> None:
        self._context = snapshot
        self._forwards = snapshot.forwards
        self._served = self._primary
        if state >= State.FALLBACK:
            self._served = self._fit_fallback(snapshot)
        metrics.update(
            served=self.fallback.name if state >= State.FALLBACK else self.engine.name,
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
        self._guarded = self._guard_quotes(snapshot, observed, state)

    # ------------------------------------------------------------------ helpers
    def _score_trade(self, trade: Trade) -> None:
        engine, forwards = self._served, self._forwards
        try:
            option = parse_instrument(trade.instrument)
        except MessageError:
            option = None
        forward = math.nan
        if option is not None and forwards is not None and option.expiry in forwards.index:
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

    def _summarise_trades(self, metrics: dict[str, float | str | bool | None]) -> None:
        metrics.update(trades=len(self._trades), trades_skipped=self._trades_skipped)
        if self._trades:
            t, k, err = (np.array(col) for col in zip(*self._trades, strict=True))
            metrics.update(
                trade_mae_vol_pts=float(np.median(np.abs(err)) * 100),
                trade_bias_vol_pts=float(np.median(err) * 100),
            )
            self._trade_monitor.update(
                pd.DataFrame({"t": t, "k": k, "err_vol": err, "err_hs": np.nan})
            )
        self._trades.clear()
        self._trades_skipped = 0

    def _update_regime(
        self,
        ts: pd.Timestamp,
        observed: pd.DataFrame,
        metrics: dict[str, float | str | bool | None],
    ) -> float:
        atm = atm_vol_30d(observed) * 100 if not observed.empty else math.nan
        change = math.nan
        if self._last_atm is not None and math.isfinite(atm):
            days = (ts - self._last_atm[0]).total_seconds() / 86_400
            change = (atm - self._last_atm[1]) / math.sqrt(max(days, 1.0 / 24.0))
        if math.isfinite(atm):
            self._last_atm = (ts, atm)
        self._regime.update(np.array([change]))
        metrics.update(atm_vol_30d=atm, atm_change_per_sqrt_day=change)
        return self._regime.stress_probability

    def _maybe_refit(
        self, snapshot: MarketSnapshot, metrics: dict[str, float | str | bool | None]
    ) -> tuple[SurfaceEngine | None, bool | None]:
        s = self.settings
        due = (
            self._tracker is None
            or self._policy.state >= State.RECALIBRATE
            # 3 h of slack: "daily" snapshots arrive up to an hour or two early or late
            or snapshot.ts - self._tracker.ts_ >= s.refit_every - pd.Timedelta(hours=3)
        )
        if not due:
            return None, None
        try:
            candidate = clone(self.engine).fit(snapshot)
        except ValueError as exc:  # nothing to fit in this snapshot
            metrics["refit_error"] = str(exc)
            return None, False
        fit_vol = float(np.median(np.abs(candidate.result_.residuals_vol)) * 100)
        fit_hs = float(np.nanmedian(np.abs(candidate.result_.residuals_half_spread)))
        valid = (
            bool(candidate.result_.converged)
            and fit_vol <= s.max_fit_vol_pts
            and fit_hs <= s.max_fit_half_spreads
        )
        metrics.update(fit_vol_pts=fit_vol, fit_half_spreads=fit_hs, refit_valid=valid)
        if self._primary is None:  # the first fit is served whatever its quality
            return candidate, True
        return candidate, valid

    def _fit_fallback(self, snapshot: MarketSnapshot) -> SurfaceEngine | None:
        q = snapshot.quotes
        mid = (q["bid"] + q["ask"]) / 2
        liquid = ((q["ask"] - q["bid"]) <= self.settings.liquid_spread * mid).fillna(False)
        try:
            fitted: SurfaceEngine = clone(self.fallback).fit(
                MarketSnapshot.from_quotes(q[liquid.to_numpy(dtype=bool)])
            )
            return fitted
        except ValueError:  # no liquid quote: keep the primary rather than nothing
            return self._primary

    def _guard_quotes(
        self, snapshot: MarketSnapshot, observed: pd.DataFrame, state: State
    ) -> pd.DataFrame:
        if self._served is None or observed.empty:
            return pd.DataFrame()
        out = residuals(self._served, observed)
        model = out["model_iv"].to_numpy(dtype=float)
        half = np.maximum(out["half_spread_iv"].to_numpy(dtype=float), 1e-4)
        width = self._aci.half_width
        if not math.isfinite(width):
            width = 1.0  # no score yet: one half-spread
        lower, upper = model - width * half, model + width * half
        members = getattr(self._served, "disagreement", None)  # an ensemble's member spread
        spread = (
            members(out["k"].to_numpy(dtype=float), out["t"].to_numpy(dtype=float))
            if callable(members)
            else np.zeros(len(out))
        )
        quote_half = half * (1.0 + self._policy.settings.widen[state] * width)
        quote_half = quote_half + self.settings.disagreement_premium * spread
        bid_iv = np.maximum(model - quote_half, MIN_VOL)
        ask_iv = model + quote_half
        f, strike, t = (out[c].to_numpy(dtype=float) for c in ("forward", "strike", "t"))
        is_call = out["is_call"].to_numpy(dtype=bool)
        return pd.DataFrame(
            {
                "ts": snapshot.ts,
                "underlying": snapshot.underlying,
                "instrument": out["instrument"].to_numpy(),
                "mid_iv": out["mid_iv"].to_numpy(dtype=float),
                "model_iv": model,
                "lower_iv": lower,
                "upper_iv": upper,
                "disagreement_iv": spread,
                "bid_iv": bid_iv,
                "ask_iv": ask_iv,
                "bid_usd": black76_price(f, strike, t, bid_iv, is_call),
                "ask_usd": black76_price(f, strike, t, ask_iv, is_call),
                "state": state.name,
            }
        )


def _forward_near(observed: pd.DataFrame, days: float) -> float:
    """The forward (USD) of the expiry nearest ``days`` (NaN without quotes): the price line
    of the report."""
    if observed.empty:
        return math.nan
    gap = np.abs(observed["t"].to_numpy(dtype=float) - days / 365.0)
    return float(observed["forward"].to_numpy(dtype=float)[int(np.argmin(gap))])
