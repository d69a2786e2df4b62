"""The engine protocol: scikit-learn estimators that price any contract given a snapshot.

An engine is fitted to the visible quotes of one :class:`MarketSnapshot` (``fit``), then gives
the implied vol, price and greeks of any contracts in the context of a snapshot: forwards per
expiry and the time. Surface engines describe total implied variance ``w(k, t)`` in forward
log-moneyness ``k = ln(K/F)`` and ACT/365 years ``t``; prices are Black-76 on that vol, so they
are consistent with the venue's convention (r = 0, premiums per unit of underlying).

Greeks are the engine's own: ``delta="sticky-strike"`` keeps each strike's vol as the forward
moves (the Black delta at the model vol); ``"sticky-moneyness"`` keeps the vol of each ``k``,
adding ``vega * dsigma/dF = -vega * sigma_k / F``.
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from abc import abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import BaseEstimator

from volguard._typing import FloatArray
from volguard.arbitrage.static import check_static_arbitrage
from volguard.kernels.api import black76_greeks, black76_price
from volguard.kernels.residuals import vol_residuals
from volguard.market.deribit import (
    DERIBIT_EXPIRY_HOUR_UTC,
    DeribitInstrument,
    parse_deribit_instrument,
)
from volguard.market.snapshot import MarketSnapshot
from volguard.models.quotes import FitQuotes, fit_quotes
from volguard.models.result import CalibrationResult

DeltaConvention = Literal["sticky-strike", "sticky-moneyness"]
Contracts = pd.DataFrame | str | DeribitInstrument | Iterable[str | DeribitInstrument]
"""What the engines take as contracts (see :func:`as_contracts`)."""
MIN_VARIANCE = 1e-12
FIT_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError)
"""What a failed fit raises (engines validate their input and report numerics): callers that
fit many snapshots or members catch these and record the failure. A
:class:`~volguard.errors.ConfigError` is none of them (it is not a ``ValueError``), so a
misspelt setting always surfaces instead of being counted as a failed fit."""


class SurfaceEngine(BaseEstimator):  # type: ignore[misc]
    """Base class of the implied-volatility surface engines.

    Subclasses set ``name`` and implement ``_calibrate`` (fit to :class:`FitQuotes`, store the
    trailing-underscore state, return ``(params, converged, fallback, warnings)``) and
    ``total_variance``. Settings are constructor arguments stored unchanged (scikit-learn rule),
    so ``clone``, ``get_params`` and ``set_params`` work.
    """

    name: ClassVar[str]

    def fit(self, snapshot: MarketSnapshot, y: None = None) -> Self:
        """Calibrate to the out-of-the-money two-sided quotes of ``snapshot``.

        Raises
        ------
        ValueError
            If the snapshot has no quote to fit.
        """
        quotes = fit_quotes(snapshot, getattr(self, "weighting", "vega"))
        if len(quotes) == 0:
            raise ValueError(f"{snapshot!r} has no two-sided out-of-the-money quote to fit")
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            params, converged, fallback, notes = self._calibrate(quotes)
        fit_ms = (time.perf_counter() - start) * 1e3
        self.ts_ = snapshot.ts
        self.forwards_ = snapshot.forwards
        self.expiries_ = quotes.expiries
        self.expiry_t_ = np.array(
            [np.median(quotes.slice(i).t) for i in range(len(quotes.expiries))]
        )
        residuals, in_spreads = vol_residuals(
            self.implied_vol(quotes.k, quotes.t), quotes.mid_iv, quotes.half_spread
        )
        t_grid = np.unique(quotes.t)
        self.result_ = CalibrationResult(
            engine=self.name,
            params=params,
            converged=bool(converged),
            fallback=fallback,
            residuals_vol=residuals,
            residuals_half_spread=in_spreads,
            arbitrage=check_static_arbitrage(
                self.total_variance, t_grid, quoted=(quotes.k, quotes.t)
            ),
            fit_ms=fit_ms,
            warnings=(*notes, *(str(w.message) for w in caught)),
        )
        return self

    @abstractmethod
    def _calibrate(
        self, quotes: FitQuotes
    ) -> tuple[dict[str, Any], bool, str | None, tuple[str, ...]]: ...

    @abstractmethod
    def total_variance(self, k: FloatArray, t: FloatArray) -> FloatArray:
        """Total implied variance ``sigma^2 t`` at log-moneyness ``k`` and years ``t``."""

    def implied_vol(self, k: FloatArray, t: FloatArray) -> FloatArray:
        """Implied vol (decimal) at forward log-moneyness ``k`` and years ``t`` (> 0)."""
        k_arr, t_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
        w = np.maximum(self.total_variance(k_arr, t_arr), MIN_VARIANCE)
        vol: FloatArray = np.sqrt(w / t_arr)
        return vol

    def surface(self, k: FloatArray) -> pd.DataFrame:
        """Implied vols on log-moneyness ``k`` at every fitted expiry: ``expiry, t, k, iv``."""
        kk, tt = np.meshgrid(np.asarray(k, dtype=float), self.expiry_t_, indexing="xy")
        return pd.DataFrame(
            {
                "expiry": np.repeat(self.expiries_, kk.shape[1]),
                "t": tt.ravel(),
                "k": kk.ravel(),
                "iv": self.implied_vol(kk, tt).ravel(),
            }
        )

    # ---------------------------------------------------------------- contracts in a context
    def contract_inputs(
        self, contracts: Contracts, context: MarketSnapshot
    ) -> tuple[FloatArray, FloatArray, FloatArray, np.ndarray]:
        """Forward, strike, years and call flags of ``contracts`` (anything
        :func:`as_contracts` takes) in ``context``: its time and forwards per expiry.

        Raises
        ------
        ValueError
            If a contract's expiry has no forward in ``context`` or is not after its time.
        """
        contracts = as_contracts(contracts)
        expiry = pd.DatetimeIndex(contracts["expiry"])
        forward = context.forward_at(expiry)
        t = context.years_to(expiry)
        if (t <= 0).any():
            raise ValueError("contracts must expire after the context snapshot's time")
        strike = contracts["strike"].to_numpy(dtype=float)
        is_call = contracts["is_call"].to_numpy(dtype=bool)
        return forward, strike, t, is_call

    def price(self, contracts: Contracts, context: MarketSnapshot) -> FloatArray:
        """Black-76 prices (USD per unit of underlying) at the engine's vols."""
        f, strike, t, is_call = self.contract_inputs(contracts, context)
        return black76_price(f, strike, t, self.implied_vol(np.log(strike / f), t), is_call)

    def greeks(
        self,
        contracts: pd.DataFrame,  # any Contracts at run time (Heston narrows the annotation)
        context: MarketSnapshot,
        delta: DeltaConvention = "sticky-strike",
    ) -> dict[str, FloatArray]:
        """Price, delta, gamma, vega (per 1.00 of vol), theta (per year) at the engine's vols.

        ``delta``/``gamma`` follow ``delta`` (see the module docstring); ``vega`` is per unit
        of the contract's own implied vol.
        """
        f, strike, t, is_call = self.contract_inputs(contracts, context)
        k = np.log(strike / f)
        vol = self.implied_vol(k, t)
        out = dict(black76_greeks(f, strike, t, vol, is_call))
        if delta == "sticky-moneyness":
            h = 1e-4
            dvol_dk = (self.implied_vol(k + h, t) - self.implied_vol(k - h, t)) / (2 * h)
            out["delta"] = out["delta"] - out["vega"] * dvol_dk / f
        elif delta != "sticky-strike":
            raise ValueError(
                f"delta {delta!r} is unknown; expected sticky-strike or sticky-moneyness"
            )
        out["iv"] = vol
        return out

    def _gaussian_interval(
        self,
        contracts: pd.DataFrame,
        context: MarketSnapshot,
        level: float,
        sd: Callable[[FloatArray, FloatArray], FloatArray],
    ) -> tuple[FloatArray, FloatArray]:
        """``sigma -/+ z sd(k, t)`` per contract, ``z = Phi^{-1}((1 + level) / 2)``, the lower
        end floored at 0 (decimal vols): the interval of engines whose uncertainty is an sd.

        Raises
        ------
        ValueError
            If ``level`` is not in ``(0, 1)``, or as :meth:`contract_inputs`.
        """
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1); received {level}")
        f, strike, t, _ = self.contract_inputs(contracts, context)
        k = np.log(strike / f)
        centre = self.implied_vol(k, t)
        half = float(norm.ppf(0.5 + level / 2)) * sd(k, t)
        lower: FloatArray = np.maximum(centre - half, 0.0)
        upper: FloatArray = centre + half
        return lower, upper


def as_contracts(contracts: Contracts) -> pd.DataFrame:
    """Contracts as the engines read them: ``expiry`` (UTC), ``strike`` (USD), ``is_call``.

    Takes a DataFrame with those columns, or with an ``instrument`` column of Deribit names
    instead; a Deribit name or :class:`~volguard.market.deribit.DeribitInstrument`, or a
    sequence of them. An expiry given as a date alone (``2026-02-27``, a ``datetime.date``) is
    the venue's expiry time that day (08:00 UTC); a naive time is UTC.

    Raises
    ------
    ValueError
        If a name is not a Deribit option name, or a table has neither the three columns nor
        ``instrument``.
    TypeError
        If ``contracts`` is none of the above.

    Examples
    --------
    >>> as_contracts(["BTC-27FEB26-90000-C"]).to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'instrument': 'BTC-27FEB26-90000-C', 'expiry': Timestamp('2026-02-27 08:00:00+0000',
      tz='UTC'), 'strike': 90000.0, 'is_call': True}]
    >>> as_contracts(pd.DataFrame({"expiry": ["2026-02-27"], "strike": [9e4],
    ...                            "is_call": [False]}))["expiry"].iloc[0]
    Timestamp('2026-02-27 08:00:00+0000', tz='UTC')
    """
    if isinstance(contracts, str | DeribitInstrument):
        contracts = [contracts]
    if not isinstance(contracts, pd.DataFrame):
        if not isinstance(contracts, Iterable):
            raise TypeError(
                "contracts must be a DataFrame (expiry, strike, is_call, or instrument), "
                f"Deribit names or DeribitInstruments; got {type(contracts).__name__}"
            )
        contracts = pd.DataFrame({"instrument": list(contracts)})
    columns = {"expiry", "strike", "is_call"}
    if columns <= set(contracts.columns):
        if isinstance(contracts["expiry"].dtype, pd.DatetimeTZDtype):
            return contracts  # the engines' own form: nothing to resolve
        frame = contracts.assign(expiry=[_expiry(e) for e in contracts["expiry"]])
    elif "instrument" in contracts.columns:
        parsed = [
            c if isinstance(c, DeribitInstrument) else parse_deribit_instrument(c)
            for c in contracts["instrument"]
        ]
        frame = contracts.assign(
            instrument=[c.name for c in parsed],
            expiry=[c.expiry for c in parsed],
            strike=[c.strike for c in parsed],
            is_call=[c.is_call for c in parsed],
        )
    else:
        raise ValueError(
            f"contracts need columns {sorted(columns)} or 'instrument'; got {list(contracts)}"
        )
    frame["expiry"] = pd.to_datetime(frame["expiry"], utc=True)
    return frame


def _expiry(value: object) -> pd.Timestamp:
    """An expiry in UTC; a date alone is the venue's expiry time (08:00 UTC) that day."""
    alone = isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    alone |= isinstance(value, str) and len(value.strip()) == len("YYYY-MM-DD")
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    if alone:
        ts = ts.tz_localize(None).normalize() + pd.Timedelta(hours=DERIBIT_EXPIRY_HOUR_UTC)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class CompositeEngine(SurfaceEngine):
    """An engine made of other engines that it refits on parts of the snapshot (``ensemble``,
    ``conformal``): its ``_calibrate`` reads the whole snapshot as ``self._snapshot``, not only
    the fit quotes, and ``_check_settings`` validates the settings before any work."""

    @abstractmethod
    def _check_settings(self) -> object: ...

    def fit(self, snapshot: MarketSnapshot, y: None = None) -> Self:
        """Validate the settings, then calibrate with the snapshot at hand.

        Raises
        ------
        ValueError
            If a setting is invalid, the snapshot has no quote to fit, or the calibration
            fails.
        """
        self._check_settings()
        self._snapshot = snapshot
        try:
            return super().fit(snapshot, y)
        finally:
            del self._snapshot


class SliceEngine(SurfaceEngine):
    """A surface made of one fitted smile per expiry, joined in total variance.

    Between fitted expiries ``w(k, t)`` is linear in ``t`` at fixed ``k`` (which keeps calendar
    order when the slices have it); before the first and after the last fitted expiry the
    implied vol of the nearest slice is held (``w`` scales with ``t``).
    """

    @abstractmethod
    def slice_variance(self, i: int, k: FloatArray) -> FloatArray:
        """Total variance of fitted slice ``i`` at log-moneyness ``k``."""

    def total_variance(self, k: FloatArray, t: FloatArray) -> FloatArray:
        k_arr, t_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
        times = np.asarray(self.slice_t_, dtype=float)
        slices = np.stack([self.slice_variance(i, k_arr) for i in range(times.size)])
        if times.size == 1:
            w: FloatArray = slices[0] * t_arr / times[0]
            return w
        j = np.clip(np.searchsorted(times, t_arr) - 1, 0, times.size - 2)
        lo = np.take_along_axis(slices, j[None, ...], 0)[0]
        hi = np.take_along_axis(slices, (j + 1)[None, ...], 0)[0]
        t_lo, t_hi = times[j], times[j + 1]
        weight = (t_arr - t_lo) / (t_hi - t_lo)
        inside = lo + weight * (hi - lo)
        out: FloatArray = np.where(
            t_arr < times[0],
            slices[0] * t_arr / times[0],
            np.where(t_arr > times[-1], slices[-1] * t_arr / times[-1], inside),
        )
        return out
