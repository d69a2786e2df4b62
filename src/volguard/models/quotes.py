"""The quotes an engine is fitted to: :class:`~volguard.market.quotes.QuoteVols` of one
snapshot (its two-sided out-of-the-money quotes and their mid vols, the one definition of the
observed quotes), sorted by ``(t, k)`` and weighted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from volguard._typing import FloatArray
from volguard.kernels.api import black76_greeks
from volguard.market.history import REALIZED_VOL
from volguard.market.quotes import QuoteVols
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
    """The fit quotes of ``snapshot``: its :class:`~volguard.market.quotes.QuoteVols` sorted
    by ``(t, k)``, with weights ``vega`` (Black vega at the mid vol, per unit of forward),
    ``spread`` (inverse half-spread in vol), ``open_interest`` (1 + OI) or ``none``.

    Raises
    ------
    ValueError
        If ``weighting`` is unknown.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting {weighting!r} is unknown; expected one of {WEIGHTINGS}")
    q = snapshot.quotes
    view = QuoteVols.from_snapshot(snapshot)
    view = view.subset(np.lexsort((view.k, view.t)))
    expiries = view.expiry.unique().sort_values()
    half = view.half_spread_iv
    oi = q["open_interest"].to_numpy(dtype=float, na_value=0.0)[view.rows]
    return FitQuotes(
        k=view.k,
        t=view.t,
        expiry_index=expiries.get_indexer(view.expiry),
        expiries=expiries,
        forward=view.forward,
        mid_iv=view.mid_iv,
        bid_iv=view.bid_iv,
        ask_iv=view.ask_iv,
        half_spread=half,
        weight=_weights(weighting, view, half, oi),
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


def _weights(weighting: str, view: QuoteVols, half: FloatArray, oi: FloatArray) -> FloatArray:
    n = len(view)
    if n == 0 or weighting == "none":
        return np.ones(n)
    if weighting == "vega":
        raw = black76_greeks(view.forward, view.strike, view.t, view.mid_iv, True)["vega"]
        raw = raw / view.forward  # per unit of forward, comparable across expiries' forwards
    elif weighting == "spread":
        raw = 1.0 / np.maximum(half, 1e-4)
    else:
        raw = 1.0 + np.nan_to_num(oi, nan=0.0)
    raw = np.where(np.isfinite(raw) & (raw > 0), raw, 0.0)
    total = raw.sum()
    return raw * (n / total) if total > 0 else np.ones(n)
