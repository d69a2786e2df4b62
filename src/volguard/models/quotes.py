"""The quotes an engine is fitted to: out-of-the-money two-sided quotes of one snapshot.

Implied vols are inverted here with Let's Be Rational from the USD premiums (``mid`` from the
mid price, not the average of the bid and ask vols), or taken from the venue's ``bid_iv`` /
``ask_iv`` where the source has vols but no prices (Tardis smiles).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from volguard._typing import FloatArray
from volguard.kernels.api import black76_greeks, implied_vol
from volguard.market.contracts import SECONDS_PER_YEAR
from volguard.market.history import REALIZED_VOL
from volguard.market.snapshot import MarketSnapshot

Weighting = Literal["vega", "spread", "open_interest", "none"]
WEIGHTINGS: tuple[str, ...] = ("vega", "spread", "open_interest", "none")


@dataclass(frozen=True)
class FitQuotes:
    """Arrays of the fit quotes, sorted by (t, k); ``expiry_index`` numbers the expiries 0..n-1.

    ``mid_iv``, ``bid_iv``, ``ask_iv`` are decimals; ``half_spread`` is ``(ask_iv - bid_iv) / 2``
    (vol units); ``weight`` sums to the number of quotes. Two scalars of the snapshot ride
    along for state features: ``index_price`` (USD, the median of the rows') and
    ``realized_vol`` (decimal, :data:`volguard.market.history.REALIZED_VOL` where attached);
    NaN where the snapshot has none.
    """

    k: FloatArray
    t: FloatArray
    expiry_index: np.ndarray
    expiries: pd.DatetimeIndex
    forward: FloatArray
    mid_iv: FloatArray
    bid_iv: FloatArray
    ask_iv: FloatArray
    half_spread: FloatArray
    weight: FloatArray
    index_price: float = float("nan")
    realized_vol: float = float("nan")

    def __len__(self) -> int:
        return int(self.k.size)

    def slice(self, i: int) -> FitQuotes:
        """The quotes of expiry number ``i``."""
        m = self.expiry_index == i
        return FitQuotes(
            self.k[m],
            self.t[m],
            self.expiry_index[m],
            self.expiries[i : i + 1],
            self.forward[m],
            self.mid_iv[m],
            self.bid_iv[m],
            self.ask_iv[m],
            self.half_spread[m],
            self.weight[m],
            self.index_price,
            self.realized_vol,
        )


def fit_quotes(snapshot: MarketSnapshot, weighting: str = "vega") -> FitQuotes:
    """Select and invert the fit quotes of ``snapshot``.

    Out-of-the-money side only (puts below the forward, calls at and above it), two-sided quotes
    whose mid has an implied vol. Weights: ``vega`` (Black vega at the mid vol), ``spread``
    (inverse half-spread in vol), ``open_interest`` (1 + OI) or ``none``.

    Raises
    ------
    ValueError
        If ``weighting`` is unknown.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting {weighting!r} is unknown; expected one of {WEIGHTINGS}")
    q = snapshot.quotes
    f = q["forward"].to_numpy(dtype=float)
    strike = q["strike"].to_numpy(dtype=float)
    t = q["t"].to_numpy(dtype=float)
    is_call = q["is_call"].to_numpy(dtype=bool, na_value=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.log(strike / f)
    otm = np.where(k >= 0, is_call, ~is_call) & np.isfinite(k) & (t > 0)
    bid = q["bid"].to_numpy(dtype=float, na_value=np.nan)
    ask = q["ask"].to_numpy(dtype=float, na_value=np.nan)
    mid_price = (bid + ask) / 2
    ivs = {}
    for name, price in (("bid", bid), ("ask", ask), ("mid", mid_price)):
        ok = otm & np.isfinite(price)
        vol = np.full(len(q), np.nan)
        if ok.any():
            vol[ok] = implied_vol(price[ok], f[ok], strike[ok], t[ok], is_call[ok])
        ivs[name] = vol
    venue_bid = q["bid_iv"].to_numpy(dtype=float, na_value=np.nan)
    venue_ask = q["ask_iv"].to_numpy(dtype=float, na_value=np.nan)
    bid_iv = np.where(np.isfinite(ivs["bid"]), ivs["bid"], venue_bid)
    ask_iv = np.where(np.isfinite(ivs["ask"]), ivs["ask"], venue_ask)
    mid_iv = np.where(
        np.isfinite(ivs["mid"]),
        ivs["mid"],
        np.where(np.isfinite(bid) | np.isfinite(ask), np.nan, (bid_iv + ask_iv) / 2),
    )
    keep = otm & np.isfinite(mid_iv) & (mid_iv > 0) & np.isfinite(ask_iv)
    keep &= np.isfinite(bid_iv) | np.isfinite(bid)  # two-sided: a bid price, even below any vol
    order = np.lexsort((k[keep], t[keep]))
    expiry = pd.DatetimeIndex(q["expiry"])[keep][order]
    expiries = expiry.unique().sort_values()
    sel = {
        name: arr[keep][order]
        for name, arr in (
            ("k", k),
            ("t", t),
            ("f", f),
            ("mid", mid_iv),
            ("bid", bid_iv),
            ("ask", ask_iv),
            ("strike", strike),
            ("oi", q["open_interest"].to_numpy(dtype=float, na_value=0.0)),
        )
    }
    half = (sel["ask"] - sel["bid"]) / 2  # NaN where the bid has no vol (below intrinsic)
    weight = _weights(weighting, sel, half)
    return FitQuotes(
        k=sel["k"],
        t=sel["t"],
        expiry_index=expiries.get_indexer(expiry),
        expiries=expiries,
        forward=sel["f"],
        mid_iv=sel["mid"],
        bid_iv=sel["bid"],
        ask_iv=sel["ask"],
        half_spread=half,
        weight=weight,
        index_price=_snapshot_value(q, "index_price"),
        realized_vol=_snapshot_value(q, REALIZED_VOL),
    )


def _snapshot_value(quotes: pd.DataFrame, column: str) -> float:
    """The median of a per-snapshot column over the rows; NaN if absent or empty."""
    if column not in quotes:
        return float("nan")
    values = quotes[column].to_numpy(dtype=float, na_value=np.nan)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def _weights(weighting: str, sel: dict[str, FloatArray], half: FloatArray) -> FloatArray:
    n = sel["k"].size
    if n == 0 or weighting == "none":
        return np.ones(n)
    if weighting == "vega":
        raw = black76_greeks(sel["f"], sel["strike"], sel["t"], sel["mid"], True)["vega"]
        raw = raw / sel["f"]  # per unit of forward, comparable across expiries' forwards
    elif weighting == "spread":
        typical = np.nanmedian(half) if np.isfinite(half).any() else 0.01
        raw = 1.0 / np.maximum(np.where(np.isfinite(half), half, typical), 1e-4)
    else:
        raw = 1.0 + np.nan_to_num(sel["oi"], nan=0.0)
    raw = np.where(np.isfinite(raw) & (raw > 0), raw, 0.0)
    total = raw.sum()
    return raw * (n / total) if total > 0 else np.ones(n)


def observed_vols(snapshot: MarketSnapshot) -> pd.DataFrame:
    """The two-sided out-of-the-money quotes of ``snapshot`` with their mid vol and half-spread
    in vol: :class:`QuoteVols` as a table with the instrument and expiry columns.

    Out-of-the-money: puts below the forward, calls at and above it (the liquid side, as in
    :func:`volguard.models.quotes.fit_quotes`). Rows whose bid or ask has no implied vol are
    dropped. ``t`` is ACT/365 years from the snapshot time, ``k = ln(K/F)``.
    """
    v = QuoteVols.from_snapshot(snapshot)
    q = snapshot.quotes
    return pd.DataFrame(
        {
            "instrument": q["instrument"].to_numpy()[v.rows],
            "expiry": pd.DatetimeIndex(q["expiry"])[v.rows],
            "strike": v.strike,
            "is_call": v.is_call,
            "forward": v.forward,
            "t": v.t,
            "k": v.k,
            "mid_iv": v.mid_iv,
            "half_spread_iv": v.half_spread_iv,
        }
    )


NS_PER_SECOND = 1e9


@dataclass(frozen=True)
class QuoteVols:
    """Two-sided out-of-the-money quotes of one snapshot, as arrays of equal length.

    ``rows`` are the quotes' positions in ``snapshot.quotes`` (for the instrument names and any
    other column); ``t`` ACT/365 years from the snapshot, ``k = ln(K/F)``, vols decimal,
    ``half_spread_iv = (ask_iv - bid_iv) / 2``, ``mid_iv = (bid_iv + ask_iv) / 2``.
    """

    rows: np.ndarray
    strike: FloatArray
    is_call: np.ndarray
    forward: FloatArray
    t: FloatArray
    k: FloatArray
    mid_iv: FloatArray
    half_spread_iv: FloatArray

    def __len__(self) -> int:
        return int(self.rows.size)

    def subset(self, mask: np.ndarray) -> QuoteVols:
        """The quotes where ``mask`` is True."""
        return QuoteVols(
            self.rows[mask],
            self.strike[mask],
            self.is_call[mask],
            self.forward[mask],
            self.t[mask],
            self.k[mask],
            self.mid_iv[mask],
            self.half_spread_iv[mask],
        )

    @classmethod
    def from_snapshot(cls, snapshot: MarketSnapshot) -> QuoteVols:
        """The two-sided out-of-the-money quotes (:func:`observed_vols` is their table).

        Out-of-the-money: puts below the forward, calls at and above it; the bid must be
        positive and both sides must invert to a vol with ``ask_iv >= bid_iv``.

        Examples
        --------
        >>> rows = pd.DataFrame({
        ...     "ts": pd.to_datetime(["2026-01-15 08:00"] * 2, utc=True), "underlying": "BTC",
        ...     "instrument": ["BTC-14FEB26-90000-P", "BTC-14FEB26-110000-C"],
        ...     "expiry": pd.to_datetime(["2026-02-14 08:00"] * 2, utc=True),
        ...     "strike": [90e3, 110e3], "is_call": [False, True], "forward": [100e3, 100e3],
        ...     "bid": [2_300.0, 1_500.0], "ask": [2_500.0, 1_700.0]})
        >>> qv = QuoteVols.from_snapshot(MarketSnapshot.from_quotes(rows))
        >>> qv.rows.tolist(), qv.mid_iv.round(3).tolist()
        ([0, 1], [0.567, 0.427])
        """
        q = snapshot.quotes
        f = q["forward"].to_numpy(dtype=float, na_value=np.nan)
        strike = q["strike"].to_numpy(dtype=float)
        expiry_ns = pd.DatetimeIndex(q["expiry"]).as_unit("ns").asi8  # any stored resolution
        t = (expiry_ns - snapshot.ts.value) / NS_PER_SECOND / SECONDS_PER_YEAR
        is_call = q["is_call"].to_numpy(dtype=bool, na_value=False)
        bid = q["bid"].to_numpy(dtype=float, na_value=np.nan)
        ask = q["ask"].to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.log(strike / f)
        keep = np.where(k >= 0, is_call, ~is_call) & np.isfinite(k) & (t > 0)
        keep &= np.isfinite(bid) & np.isfinite(ask) & (bid > 0)
        rows = np.flatnonzero(keep)
        vols = implied_vol(
            np.concatenate([bid[rows], ask[rows]]),
            np.tile(f[rows], 2),
            np.tile(strike[rows], 2),
            np.tile(t[rows], 2),
            np.tile(is_call[rows], 2),
        )
        bid_iv, ask_iv = vols[: rows.size], vols[rows.size :]
        ok = np.isfinite(bid_iv) & np.isfinite(ask_iv) & (ask_iv >= bid_iv)
        rows, bid_iv, ask_iv = rows[ok], bid_iv[ok], ask_iv[ok]
        return cls(
            rows,
            strike[rows],
            is_call[rows],
            f[rows],
            t[rows],
            k[rows],
            (bid_iv + ask_iv) / 2,
            (ask_iv - bid_iv) / 2,
        )
