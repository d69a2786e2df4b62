"""Liquidity model: true option prices in, Deribit-like quotes out.

The simulator prices every listed option at its true model price; this module turns those
prices into what a venue shows: a bid and an ask on Deribit's coin tick grid, one-sided and
empty books, quotes left stale from the previous snapshot, sizes, and a venue mark. Each regime
has its own :class:`LiquidityParams`, fitted to real Deribit quotes by :func:`fit_liquidity`.

Model, per option row (all premiums in coin per coin, ``coin = usd / F``):

* raw spread ``s = exp(x . beta + e)``, where ``x`` are the :data:`FEATURES` (log vega per vol
  point, standardised moneyness ``|k|/sqrt(t)`` and its in-the-money part, log time, log
  price) and ``e`` is drawn from the residual quantiles of the option's bucket of
  :data:`BUCKETS` (near-the-money books are tight and regular, wings wide and dispersed);
* the true price sits at a fitted position ``w`` in the spread: ``bid = P - w s``,
  ``ask = P + (1 - w) s``; the bid is rounded down and the ask up to Deribit's tick (0.0001 coin
  below 0.005 coin, 0.0005 coin from there), so a cheap far out-of-the-money option whose bid
  rounds to zero has no bid, as on the venue;
* beyond that, the bid (ask) is removed with a logistic probability in the same features:
  thin strikes, one-sided books and the bid-less books of a crash;
* with the regime's stale probability the quote is the instrument's quote of its previous
  snapshot (the same coin prices, as a resting order keeps them), unless that quote now breaks
  a bound (an ask below intrinsic would be lifted at once);
* sizes are drawn from the fitted size quantiles; the mark is the true price plus
  ``vega * N(0, mark_noise_vol)``, clipped to the no-arbitrage bounds.

No row is removed: Deribit's book summary lists every instrument, quoted or not, and a row
without bid and ask still has its mark.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from volguard._typing import BoolArray, FloatArray
from volguard.errors import ConfigError
from volguard.kernels.api import black76_greeks
from volguard.market.clock import DAYS_PER_YEAR

TICK_SMALL_COIN = 1e-4
"""Deribit BTC/ETH option tick below :data:`TICK_STEP_COIN`, coin per coin."""
TICK_LARGE_COIN = 5e-4
"""Deribit BTC/ETH option tick from :data:`TICK_STEP_COIN` up, coin per coin."""
TICK_STEP_COIN = 5e-3
"""Premium (coin) at which the tick grows from 0.0001 to 0.0005."""

FEATURES: tuple[str, ...] = ("const", "log_vega_coin", "z", "z_itm", "log_t", "log_price_coin")
"""Regressors of the spread and quote-removal fits, in coefficient order: 1, ln(vega per vol
point, coin), ``z = |k| / sqrt(t)`` (capped at :data:`Z_CAP`), ``z`` where in the money (0
out of the money: deep in-the-money books are wide in price), ln(t in years), ln(price, coin)."""
Z_CAP = 8.0
"""Standardised moneyness beyond which wings are treated alike (a handful of quotes there)."""

QUANTILE_LEVELS: tuple[float, ...] = (
    0.01,
    0.05,
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    0.95,
    0.99,
)
"""Levels at which residual, position and size distributions are stored (linear in between)."""

MIN_BUCKET_ROWS = 50
"""Fewest two-sided quotes of a bucket for its own spread residuals (else the pooled ones)."""

SIZE_STEP = 0.1
"""Deribit's minimum BTC/ETH option amount, contracts; sizes are multiples of it."""

_EPS = 1e-9  # float slack for tick grid rounding (0.0003 / 0.0001 = 2.9999999999999996)


@dataclass(frozen=True)
class LiquidityParams:
    """One regime's fitted liquidity coefficients (see the module docstring for the model).

    Parameters
    ----------
    spread_coef : tuple of float
        Median-regression coefficients of ln(raw spread, coin) on :data:`FEATURES`.
    spread_resid_q : tuple of tuple of float
        Per bucket of :data:`BUCKETS`, residual quantiles of that regression at
        :data:`QUANTILE_LEVELS` (log units), shifted and scaled so that tick-rounded spreads
        match the real ones (see :func:`fit_liquidity`).
    position_q : tuple of float
        Quantiles of the true price's position in the spread, ``(P - bid) / (ask - bid)``.
    no_bid_coef, no_ask_coef : tuple of float
        Logistic coefficients on :data:`FEATURES` of removing the bid (ask) of a quote.
    stale_prob : float
        Probability that an instrument's quote is its previous snapshot's, per snapshot.
    mark_noise_vol : float
        Standard deviation of the venue mark's noise, in vol (decimal, 0.001 = 0.1 vol point).
    bid_size_q, ask_size_q : tuple of float
        Quantiles of ln(size, contracts) at :data:`QUANTILE_LEVELS`.
    n_snapshots, n_rows : int
        Snapshots (underlying x time) and quote rows the fit used.
    """

    spread_coef: tuple[float, ...]
    spread_resid_q: tuple[tuple[float, ...], ...]
    position_q: tuple[float, ...]
    no_bid_coef: tuple[float, ...]
    no_ask_coef: tuple[float, ...]
    stale_prob: float
    mark_noise_vol: float
    bid_size_q: tuple[float, ...]
    ask_size_q: tuple[float, ...]
    n_snapshots: int = 0
    n_rows: int = 0

    def __post_init__(self) -> None:
        for name in ("spread_coef", "no_bid_coef", "no_ask_coef"):
            if len(getattr(self, name)) != len(FEATURES):
                raise ValueError(f"{name} must have {len(FEATURES)} coefficients ({FEATURES})")
        if len(self.spread_resid_q) != len(BUCKETS):
            raise ValueError(f"spread_resid_q must hold one quantile set per bucket {BUCKETS}")
        quantile_sets = {
            **{
                f"spread_resid_q[{b}]": q for b, q in zip(BUCKETS, self.spread_resid_q, strict=True)
            },
            **{n: getattr(self, n) for n in ("position_q", "bid_size_q", "ask_size_q")},
        }
        for name, values in quantile_sets.items():
            q = np.asarray(values, dtype=float)
            if len(q) != len(QUANTILE_LEVELS) or np.any(np.diff(q) < 0):
                raise ValueError(
                    f"{name} must hold {len(QUANTILE_LEVELS)} non-decreasing quantiles"
                )
        if not 0.0 <= self.stale_prob < 1.0:
            raise ValueError(f"stale_prob must be in [0, 1); got {self.stale_prob!r}")
        if not self.mark_noise_vol >= 0.0:
            raise ValueError(f"mark_noise_vol must be >= 0; got {self.mark_noise_vol!r}")


@dataclass(frozen=True)
class LiquidityModel:
    """Liquidity parameters per simulator regime, and the quoting that uses them.

    Parameters
    ----------
    regimes : mapping of str to LiquidityParams
        Regime name (the chain's ``regime`` column) -> its parameters.
    sources : mapping of str to str
        Regime name -> where its parameters came from (real window, snapshot and row counts).
    """

    regimes: Mapping[str, LiquidityParams]
    sources: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: parameters per regime plus the feature and quantile conventions."""
        return {
            "features": list(FEATURES),
            "quantile_levels": list(QUANTILE_LEVELS),
            "sources": dict(self.sources),
            "regimes": {
                name: {k: _lists(v) for k, v in asdict(p).items()}
                for name, p in self.regimes.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LiquidityModel:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        volguard.errors.ConfigError
            If the stored features or quantile levels are not this module's.
        """
        if tuple(data["features"]) != FEATURES:
            raise ConfigError(f"features {data['features']} differ from this code's {FEATURES}")
        if tuple(data["quantile_levels"]) != QUANTILE_LEVELS:
            raise ConfigError(f"quantile_levels {data['quantile_levels']} differ from the code's")
        regimes = {}
        for name, params in data["regimes"].items():
            fields: dict[str, Any] = {k: _tuples(v) for k, v in params.items()}
            regimes[name] = LiquidityParams(**fields)
        return cls(regimes=regimes, sources=dict(data.get("sources", {})))

    def quote(self, chain: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """Venue quotes for a simulated chain.

        Parameters
        ----------
        chain : DataFrame
            One row per listed option per snapshot, sorted by (ts, expiry, strike, is_call), with
            ``ts``, ``instrument``, ``t`` (years), ``strike``, ``is_call``, ``forward`` (USD),
            ``k`` (ln K/F), ``true_price`` (USD per 1 underlying), ``true_vega`` (USD per 1.00
            of vol) and ``regime``; other columns pass through.
        rng : numpy.random.Generator
            Source of every draw (same generator state, same quotes, bit for bit).

        Returns
        -------
        DataFrame
            ``chain`` (same rows, same order) plus ``bid``, ``ask``, ``mark`` (USD per 1
            underlying; NaN bid/ask = no quote), ``bid_size``, ``ask_size`` (contracts, NaN
            where no quote) and ``stale`` (bool: the quote is carried from the instrument's
            previous snapshot).

        Raises
        ------
        volguard.errors.ConfigError
            If a regime of the chain has no parameters in this model.
        """
        regime_codes, regime_names = pd.factorize(chain["regime"], sort=True)
        unknown = [str(r) for r in regime_names if r not in self.regimes]
        if unknown:
            raise ConfigError(
                f"regime(s) {unknown} have no liquidity parameters; known: {sorted(self.regimes)}"
            )
        params = [self.regimes[str(r)] for r in regime_names]
        n = len(chain)
        forward = chain["forward"].to_numpy(dtype=float)
        strike = chain["strike"].to_numpy(dtype=float)
        is_call = chain["is_call"].to_numpy(dtype=bool)
        price = chain["true_price"].to_numpy(dtype=float)
        vega = chain["true_vega"].to_numpy(dtype=float)
        price_coin = price / forward
        x = _features(
            price_coin,
            vega / 100.0 / forward,
            chain["k"].to_numpy(dtype=float),
            chain["t"].to_numpy(dtype=float),
            is_call,
        )

        # every draw has length n and a fixed order, so the output depends on the seed only
        u_spread, u_pos, u_no_bid, u_no_ask, u_stale, u_bid_size, u_ask_size = rng.random((7, n))
        z_mark = rng.standard_normal(n)

        def per_regime(values: FloatArray, pick: str) -> FloatArray:
            return _quantile_draw(
                values, np.array([getattr(p, pick) for p in params]), regime_codes
            )

        def linear(pick: str) -> FloatArray:
            table = np.array([getattr(p, pick) for p in params])
            out = np.zeros(n)
            for j, xj in enumerate(x):
                out += table[regime_codes, j] * xj
            return out

        bucket = _bucket(chain["k"].to_numpy(dtype=float), chain["t"].to_numpy(dtype=float))
        resid_tables = np.concatenate([np.array(p.spread_resid_q) for p in params])
        resid = _quantile_draw(u_spread, resid_tables, regime_codes * len(BUCKETS) + bucket)
        spread = np.exp(linear("spread_coef") + resid)
        pos = np.clip(per_regime(u_pos, "position_q"), 0.0, 1.0)
        upper_coin = np.where(is_call, 1.0, strike / forward)
        bid_coin, ask_coin = _round_to_ticks(
            price_coin - pos * spread, price_coin + (1.0 - pos) * spread, upper_coin
        )
        bid_coin[u_no_bid < _sigmoid(linear("no_bid_coef"))] = np.nan
        ask_coin[u_no_ask < _sigmoid(linear("no_ask_coef"))] = np.nan
        bid_size = _size(per_regime(u_bid_size, "bid_size_q"), bid_coin)
        ask_size = _size(per_regime(u_ask_size, "ask_size_q"), ask_coin)

        stale_prob = np.array([p.stale_prob for p in params])[regime_codes]
        intrinsic = np.where(
            is_call, np.maximum(forward - strike, 0.0), np.maximum(strike - forward, 0.0)
        )
        source, stale = _stale_sources(
            chain["instrument"].to_numpy(),
            u_stale < stale_prob,
            bid_coin,
            ask_coin,
            intrinsic / forward,
            upper_coin,
        )
        bid_coin, ask_coin = bid_coin[source], ask_coin[source]
        bid_size, ask_size = bid_size[source], ask_size[source]

        noise = np.array([p.mark_noise_vol for p in params])[regime_codes]
        upper = np.where(is_call, forward, strike)
        mark = np.clip(price + vega * noise * z_mark, intrinsic, upper)
        return chain.assign(
            bid=bid_coin * forward,
            ask=ask_coin * forward,
            mark=mark,
            bid_size=bid_size,
            ask_size=ask_size,
            stale=stale,
        )


def _features(
    price_coin: FloatArray, vega_coin: FloatArray, k: FloatArray, t: FloatArray, is_call: BoolArray
) -> list[FloatArray]:
    """The :data:`FEATURES` columns (inputs assumed finite, ``t > 0``)."""
    z = np.minimum(np.abs(k) / np.sqrt(t), Z_CAP)
    return [
        np.ones_like(t),
        np.log(np.maximum(vega_coin, 1e-9)),
        z,
        np.where(is_call == (k < 0.0), z, 0.0),
        np.log(t),
        np.log(np.maximum(price_coin, 1e-7)),
    ]


def _quantile_draw(u: FloatArray, tables: FloatArray, row_table: Any) -> FloatArray:
    """Inverse-CDF draws: ``u`` interpolated linearly in the quantiles ``tables[row_table]``
    (levels :data:`QUANTILE_LEVELS`, flat beyond the end levels), without a loop over tables:
    the levels are shared, so the interpolation weights depend on ``u`` alone."""
    levels = np.asarray(QUANTILE_LEVELS)
    j = np.clip(np.searchsorted(levels, u) - 1, 0, len(levels) - 2)
    w = np.clip((u - levels[j]) / (levels[j + 1] - levels[j]), 0.0, 1.0)
    flat = np.ravel(tables)
    at = row_table * len(levels) + j
    out: FloatArray = np.take(flat, at) * (1.0 - w) + np.take(flat, at + 1) * w
    return out


def _sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic
    return out


def tick_below(price_coin: FloatArray) -> FloatArray:
    """Deribit's tick (coin) for a price at or below ``price_coin``: the step down from it."""
    return np.where(price_coin <= TICK_STEP_COIN + _EPS, TICK_SMALL_COIN, TICK_LARGE_COIN)


def _tick_above(price_coin: FloatArray) -> FloatArray:
    """Deribit's tick (coin) for a price at or above ``price_coin``: the step up from it."""
    return np.where(price_coin < TICK_STEP_COIN, TICK_SMALL_COIN, TICK_LARGE_COIN)


def round_bid(price_coin: FloatArray) -> FloatArray:
    """Round bids down to Deribit's coin tick grid (0.0001 below 0.005, 0.0005 from there)."""
    tick = _tick_above(price_coin)
    out: FloatArray = np.round(np.floor(price_coin / tick + _EPS) * tick, 4)
    return out


def round_ask(price_coin: FloatArray) -> FloatArray:
    """Round asks up to Deribit's coin tick grid (0.0001 up to 0.005, 0.0005 above)."""
    tick = tick_below(price_coin)
    out: FloatArray = np.round(np.ceil(price_coin / tick - _EPS) * tick, 4)
    return out


def _round_to_ticks(
    bid_raw: FloatArray, ask_raw: FloatArray, upper_coin: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Tick-rounded (bid, ask) in coin; bid NaN where it rounds to zero (below one tick)."""
    ask = np.minimum(np.maximum(round_ask(ask_raw), TICK_SMALL_COIN), round_bid(upper_coin))
    bid = np.minimum(round_bid(bid_raw), np.round(ask - tick_below(ask), 4))
    bid[bid < TICK_SMALL_COIN - _EPS] = np.nan
    return bid, ask


def _size(log_size: FloatArray, side: FloatArray) -> FloatArray:
    """Sizes on Deribit's amount grid; NaN where the side has no quote."""
    size = np.maximum(np.round(np.exp(log_size) / SIZE_STEP) * SIZE_STEP, SIZE_STEP)
    size[np.isnan(side)] = np.nan
    return size


def _stale_sources(
    instrument: Any,
    draw: BoolArray,
    bid_coin: FloatArray,
    ask_coin: FloatArray,
    intrinsic_coin: FloatArray,
    upper_coin: FloatArray,
) -> tuple[Any, BoolArray]:
    """Row whose quote each row shows (itself unless stale) and the stale mask.

    An instrument's first row is never stale. A stale row shows the quote of the instrument's
    last fresh row; where that quote breaks a bound of this row (ask below intrinsic, a side
    above the upper bound) the row is re-quoted instead, which can change what later stale rows
    carry, so the rule is applied until nothing changes.
    """
    codes, _ = pd.factorize(instrument)
    order = np.argsort(codes, kind="stable")  # rows are in ts order, so each run is in ts order
    first = np.ones(len(order), dtype=bool)
    first[1:] = codes[order][1:] != codes[order][:-1]
    stale_sorted = draw[order] & ~first
    position = np.arange(len(order))
    while True:
        src_sorted = np.maximum.accumulate(np.where(stale_sorted, -1, position))
        src = order[src_sorted]
        rows = order[stale_sorted]
        carried_bid, carried_ask = bid_coin[src[stale_sorted]], ask_coin[src[stale_sorted]]
        with np.errstate(invalid="ignore"):
            bad = (
                (carried_ask < intrinsic_coin[rows] - _EPS)
                | (carried_ask > upper_coin[rows] + _EPS)
                | (carried_bid > upper_coin[rows] + _EPS)
            )
        if not bad.any():
            break
        stale_sorted[np.flatnonzero(stale_sorted)[bad]] = False
    source = np.empty(len(order), dtype=np.int64)
    source[order] = src
    stale = np.zeros(len(order), dtype=bool)
    stale[order] = stale_sorted
    return source, stale


def fit_liquidity(quotes: pd.DataFrame, *, sizes: pd.DataFrame | None = None) -> LiquidityParams:
    """Fit one regime's :class:`LiquidityParams` to real quotes.

    Parameters
    ----------
    quotes : DataFrame
        Clean rows of one regime's window in the quote schema (:mod:`volguard.data.schema`):
        ``ts``, ``underlying``, ``instrument``, ``t``, ``strike``, ``is_call``, ``forward``,
        ``bid``, ``ask``, ``mark`` (USD per 1 underlying), ``mark_iv``; ``bid_size`` and
        ``ask_size`` are used where present. Rows without a mark IV are ignored.
    sizes : DataFrame, optional
        Rows with ``bid_size``/``ask_size`` (contracts) to fit the sizes to, for quote sources
        that have none (the ``deribit-svcj-snapshots`` files); default: ``quotes``.

    Returns
    -------
    LiquidityParams

    Raises
    ------
    ValueError
        If no two-sided quote is left to fit the spreads to, or no row has a size.

    Notes
    -----
    Every fit is a quantile, a median or a logistic regression on :data:`FEATURES`, with the
    mark (price, and vega at the mark IV) standing in for the true price:

    * spread: median regression (iteratively reweighted least squares) of
      ``ln(max(ask - bid - tick, tick / 2))`` in coin on the features, where ``tick`` is the
      mean of the bid's and the ask's ticks: rounding the bid down and the ask up widens a raw
      spread by about one tick, which the simulator adds back; residual quantiles per bucket
      of :data:`BUCKETS`;
    * tick rounding: that deconvolution is rough where a spread is one or two ticks, so each
      bucket's residuals are shifted and scaled (grid search, fixed seed) to minimise the
      absolute log errors between the simulated tick-rounded spreads (mark as the price, fitted
      positions) and the real ones, at the median and the 90th percentile, in coin and in vol
      points;
    * position: quantiles of ``(mark - bid) / (ask - bid)`` of two-sided quotes with the mark
      inside the book;
    * quote removal: ridge-penalised logistic regressions of "no bid" (rows whose mark is at
      least 1.5 ticks, below which the tick rounding itself removes the bid) and of "no ask";
      the no-bid intercept is then shifted (bisection) so that the simulated no-bid share, tick
      rounding and logistic removal together, equals the real share;
    * stale: the share of two-sided quotes whose mark lies outside the book, i.e. the book has
      not followed the venue's model price. (Quotes unchanged since the previous snapshot while
      the mark moved by more than the spread would be the direct measure, but at the real
      files' spacing, 6 h to a day, they are about 1 in 5,000: too rare to fit.);
    * mark noise: 1.4826 x the median absolute residual of mark IVs around a quadratic in
      ``k`` per expiry, near the money (``|k| / sqrt(t) < 0.5``, calls);
    * sizes: quantiles of ln(size) per side.
    """
    q = quotes.loc[
        np.isfinite(quotes["mark_iv"].to_numpy(dtype=float, na_value=np.nan))
        & (quotes["mark_iv"].to_numpy(dtype=float, na_value=np.nan) > 0)
        & (quotes["t"].to_numpy(dtype=float, na_value=np.nan) > 0)
    ]
    forward = q["forward"].to_numpy(dtype=float)
    t = q["t"].to_numpy(dtype=float)
    strike = q["strike"].to_numpy(dtype=float)
    mark_iv = q["mark_iv"].to_numpy(dtype=float)
    is_call = q["is_call"].to_numpy(dtype=bool)
    price_coin = q["mark"].to_numpy(dtype=float, na_value=np.nan) / forward
    bid_coin = q["bid"].to_numpy(dtype=float, na_value=np.nan) / forward
    ask_coin = q["ask"].to_numpy(dtype=float, na_value=np.nan) / forward
    vega = black76_greeks(forward, strike, t, mark_iv, is_call)["vega"]
    k = np.log(strike / forward)
    x = np.column_stack(_features(price_coin, vega / 100.0 / forward, k, t, is_call))

    two_sided = np.isfinite(bid_coin) & np.isfinite(ask_coin) & np.isfinite(price_coin)
    if not two_sided.any():
        raise ValueError("quotes has no two-sided quote with a mark IV to fit spreads to")
    bid2, ask2 = bid_coin[two_sided], ask_coin[two_sided]
    tick = 0.5 * (_tick_above(bid2) + tick_below(ask2))
    y = np.log(np.maximum(ask2 - bid2 - tick, 0.5 * TICK_SMALL_COIN))
    spread_coef = _median_regression(x[two_sided], y)
    resid = y - x[two_sided] @ spread_coef
    position = (price_coin[two_sided] - bid2) / (ask2 - bid2)
    inside = (position >= 0.0) & (position <= 1.0)
    position_q = np.quantile(position[inside], QUANTILE_LEVELS)
    bucket = _bucket(k, t)[two_sided]
    resid_q = []
    for b in range(len(BUCKETS)):
        rows = bucket == b
        if rows.sum() < MIN_BUCKET_ROWS:  # too few to calibrate: the pooled residuals, as fitted
            resid_q.append(_floats(np.quantile(resid, QUANTILE_LEVELS)))
            continue
        q_b = np.quantile(resid[rows], QUANTILE_LEVELS)
        shift, scale = _match_rounded_spreads(
            (x[two_sided] @ spread_coef)[rows],
            q_b,
            position_q,
            price_coin[two_sided][rows],
            np.where(is_call, 1.0, strike / forward)[two_sided][rows],
            (ask2 - bid2)[rows],
            (vega / 100.0 / forward)[two_sided][rows],
        )
        resid_q.append(_floats(shift + scale * q_b))

    priced = np.isfinite(price_coin) & (price_coin >= 1.5 * TICK_SMALL_COIN)
    no_bid_coef = _logistic_regression(x[priced], np.isnan(bid_coin[priced]))
    no_bid_coef[0] += _match_no_bid_share(
        x, spread_coef, resid_q, position_q, no_bid_coef, price_coin, k, t, np.isnan(bid_coin)
    )
    no_ask_coef = _logistic_regression(x, np.isnan(ask_coin))

    size_rows = q if sizes is None else sizes
    return LiquidityParams(
        spread_coef=_floats(spread_coef),
        spread_resid_q=tuple(resid_q),
        position_q=_floats(position_q),
        no_bid_coef=_floats(no_bid_coef),
        no_ask_coef=_floats(no_ask_coef),
        stale_prob=float(np.mean(~inside)),
        mark_noise_vol=_mark_noise(q, k, t, mark_iv, is_call),
        bid_size_q=_log_size_quantiles(size_rows, "bid_size"),
        ask_size_q=_log_size_quantiles(size_rows, "ask_size"),
        n_snapshots=int(q.groupby(["underlying", "ts"]).ngroups),
        n_rows=len(q),
    )


def _bucket(k: FloatArray, t: FloatArray) -> Any:
    """Index into :data:`BUCKETS` of each row."""
    short = t < 30.0 / DAYS_PER_YEAR
    wing = np.abs(k) / np.sqrt(t) >= 0.3
    return 2 * (~short).astype(np.int64) + wing.astype(np.int64)


def _match_rounded_spreads(
    base: FloatArray,
    resid_q: FloatArray,
    position_q: FloatArray,
    price_coin: FloatArray,
    upper_coin: FloatArray,
    real_spread: FloatArray,
    vega_coin: FloatArray,
) -> tuple[float, float]:
    """(shift, scale) of the residuals whose tick-rounded spreads (coin) best match the real
    ones: least mean absolute log error of the median and the 90th percentile, in coin and in
    vol points (spread over vega)."""
    u_spread, u_pos = np.random.default_rng(0).random((2, len(base)))
    e = np.interp(u_spread, QUANTILE_LEVELS, resid_q)
    pos = np.interp(u_pos, QUANTILE_LEVELS, position_q)
    per_volpt = 1.0 / np.maximum(vega_coin, 1e-12)
    real_coin = np.percentile(real_spread, (50, 90))
    real_volpt = np.percentile(real_spread * per_volpt, (50, 90))
    best = (np.inf, 0.0, 1.0)
    for shift in np.linspace(-1.5, 1.0, 26):
        for scale in np.linspace(0.3, 1.2, 10):
            spread = np.exp(base + shift + scale * e)
            bid, ask = _round_to_ticks(
                price_coin - pos * spread, price_coin + (1.0 - pos) * spread, upper_coin
            )
            quoted = np.isfinite(bid)
            sim = (ask - bid)[quoted]
            sim_coin = np.percentile(sim, (50, 90))
            sim_volpt = np.percentile(sim * per_volpt[quoted], (50, 90))
            err = float(
                np.sum(np.abs(np.log(sim_coin / real_coin)))
                + np.sum(np.abs(np.log(sim_volpt / real_volpt)))
            )
            if err < best[0] - 1e-12:
                best = (err, float(shift), float(scale))
    return best[1], best[2]


def _match_no_bid_share(
    x: FloatArray,
    spread_coef: FloatArray,
    resid_q: list[tuple[float, ...]],
    position_q: FloatArray,
    no_bid_coef: FloatArray,
    price_coin: FloatArray,
    k: FloatArray,
    t: FloatArray,
    no_bid: BoolArray,
) -> float:
    """Shift of the no-bid intercept at which the simulated no-bid share (tick rounding plus the
    logistic removal) equals the real one, by bisection (the share grows with the shift)."""
    rows = np.isfinite(price_coin)
    price = price_coin[rows]
    u_spread, u_pos, u_drop = np.random.default_rng(0).random((3, int(rows.sum())))
    bucket = _bucket(k[rows], t[rows])
    resid = np.empty(len(price))
    for b, q in enumerate(resid_q):
        resid[bucket == b] = np.interp(u_spread[bucket == b], QUANTILE_LEVELS, q)
    spread = np.exp(x[rows] @ spread_coef + resid)
    bid_raw = price - np.interp(u_pos, QUANTILE_LEVELS, position_q) * spread
    rounded_away = round_bid(bid_raw) < TICK_SMALL_COIN - _EPS
    logit = x[rows] @ no_bid_coef
    target = float(np.mean(no_bid[rows]))
    lo, hi = -15.0, 15.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        share = np.mean(rounded_away | (u_drop < _sigmoid(logit + mid)))
        lo, hi = (mid, hi) if share < target else (lo, mid)
    return 0.5 * (lo + hi)


def _tuples(value: Any) -> Any:
    """JSON lists (nested or not) back to tuples."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _lists(value: Any) -> Any:
    """Tuples (nested or not) to JSON lists."""
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=float))


def _median_regression(x: FloatArray, y: FloatArray, iterations: int = 100) -> FloatArray:
    """Least-absolute-deviations coefficients by iteratively reweighted least squares."""
    beta = np.asarray(np.linalg.lstsq(x, y, rcond=None)[0], dtype=np.float64)
    for _ in range(iterations):
        w = np.sqrt(1.0 / np.maximum(np.abs(y - x @ beta), 1e-4))
        new = np.asarray(np.linalg.lstsq(x * w[:, None], y * w, rcond=None)[0], dtype=np.float64)
        if np.max(np.abs(new - beta)) < 1e-9:
            return new
        beta = new
    return beta


def _logistic_regression(x: FloatArray, label: BoolArray, ridge: float = 1.0) -> FloatArray:
    """Logistic coefficients by Newton's method; the ridge keeps them finite when no row is
    labelled (a calm window has no missing asks)."""
    y = label.astype(float)
    beta = np.zeros(x.shape[1])
    for _ in range(100):
        p = _sigmoid(x @ beta)
        grad = x.T @ (p - y) + ridge * beta
        hess = (x * (p * (1.0 - p))[:, None]).T @ x + ridge * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def _mark_noise(
    q: pd.DataFrame, k: FloatArray, t: FloatArray, mark_iv: FloatArray, is_call: BoolArray
) -> float:
    near = is_call & (np.abs(k) / np.sqrt(t) < 0.5)
    frame = pd.DataFrame(
        {
            "g": q["underlying"].astype(str).to_numpy()
            + q["ts"].astype(str).to_numpy()
            + q["expiry"].astype(str).to_numpy(),
            "k": k,
            "iv": mark_iv,
        }
    ).loc[near]
    residuals = [
        g["iv"].to_numpy() - np.polyval(np.polyfit(g["k"], g["iv"], 2), g["k"])
        for _, g in frame.groupby("g")
        if len(g) >= 6
    ]
    if not residuals:
        return 0.0
    return float(1.4826 * np.median(np.abs(np.concatenate(residuals))))


def _log_size_quantiles(rows: pd.DataFrame, column: str) -> tuple[float, ...]:
    size = (
        rows[column].to_numpy(dtype=float, na_value=np.nan)
        if column in rows
        else np.array([], dtype=float)
    )
    size = size[np.isfinite(size) & (size > 0)]
    if not len(size):
        raise ValueError(f"no positive {column} to fit sizes to; pass sizes=rows that have them")
    return _floats(np.quantile(np.log(size), QUANTILE_LEVELS))


BUCKETS: tuple[str, ...] = ("short_atm", "short_wing", "long_atm", "long_wing")
"""Buckets of :func:`liquidity_stats`: expiry under (``short``) or from 30 days (``long``) x
``|k| / sqrt(t)`` under 0.3 (``atm``) or from it (``wing``)."""


def liquidity_stats(quotes: pd.DataFrame) -> dict[str, float]:
    """Summary figures to compare real and simulated quotes side by side.

    Parameters
    ----------
    quotes : DataFrame
        Quote rows (real, in the quote schema, or :meth:`LiquidityModel.quote` output) with
        ``ts``, ``underlying``, ``t``, ``strike``, ``is_call``, ``forward``, ``bid``, ``ask``
        and a vol for the vega: ``true_iv`` where present, else ``mark_iv``.

    Returns
    -------
    dict of str to float
        ``quotes_per_snapshot`` (rows per underlying and ``ts``), ``no_bid_share``,
        ``no_ask_share``; and per bucket of :data:`BUCKETS`, ``<bucket>.n``,
        ``<bucket>.no_bid_share`` and, over two-sided quotes, ``<bucket>.spread_volpt_p50`` /
        ``_p90`` (spread over vega, vol points) and ``<bucket>.spread_ticks_p50`` / ``_p90``
        (spread in units of 0.0001 coin). NaN where a bucket is empty.
    """
    vol_column = "true_iv" if "true_iv" in quotes else "mark_iv"
    forward = quotes["forward"].to_numpy(dtype=float)
    t = quotes["t"].to_numpy(dtype=float)
    strike = quotes["strike"].to_numpy(dtype=float)
    bid = quotes["bid"].to_numpy(dtype=float, na_value=np.nan)
    ask = quotes["ask"].to_numpy(dtype=float, na_value=np.nan)
    vol = np.nan_to_num(quotes[vol_column].to_numpy(dtype=float, na_value=np.nan))
    vega = black76_greeks(forward, strike, t, vol, quotes["is_call"].to_numpy(dtype=bool))["vega"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        spread_volpt = (ask - bid) / (vega / 100.0)
    spread_ticks = (ask - bid) / forward / TICK_SMALL_COIN
    bucket = _bucket(np.log(strike / forward), t)
    stats = {
        "quotes_per_snapshot": len(quotes) / max(quotes.groupby(["underlying", "ts"]).ngroups, 1),
        "no_bid_share": float(np.mean(np.isnan(bid))),
        "no_ask_share": float(np.mean(np.isnan(ask))),
    }
    two_sided = np.isfinite(bid) & np.isfinite(ask)
    for b, name in enumerate(BUCKETS):
        rows = bucket == b
        both = rows & two_sided
        stats[f"{name}.n"] = float(rows.sum())
        stats[f"{name}.no_bid_share"] = (
            float(np.mean(np.isnan(bid[rows]))) if rows.any() else np.nan
        )
        for label, values in (("volpt", spread_volpt), ("ticks", spread_ticks)):
            for pct in (50, 90):
                stats[f"{name}.spread_{label}_p{pct}"] = (
                    float(np.percentile(values[both], pct)) if both.any() else np.nan
                )
    return stats


PRESET = "presets/liquidity.json"
"""The fitted model, relative to this package (see :mod:`volguard.sim.liquidity_presets`)."""


def load_liquidity_model() -> LiquidityModel:
    """The liquidity model fitted to real Deribit windows and stored in the package."""
    text = resources.files("volguard.sim").joinpath(PRESET).read_text(encoding="utf-8")
    return LiquidityModel.from_dict(json.loads(text))
