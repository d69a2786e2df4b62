"""Quote hygiene: every loaded row ends clean (maybe flagged) or quarantined with one reason.

Rules run in a fixed order and a row keeps the first reason it meets, so the counts per reason
add up to the quarantined total. One-sided quotes are not errors: they stay, flagged
``no_bid`` / ``no_ask``. Bounds use the undiscounted forward (Deribit prices with r = 0):
a call lies in ``[max(F - K, 0), F]`` and a put in ``[max(K - F, 0), K]``, give or take one tick.

Only tradeable prices are held to the bounds: an ask below intrinsic or a bid above the upper
bound is an arbitrage, so the row is quarantined. A *mark* outside the bounds is flagged
(``mark_below_intrinsic`` / ``mark_above_upper_bound``) and kept: on real Deribit snapshots it
comes from the forward moving between the venue's mark computation and the book read (deep ITM
puts, up to 5e-3 coin), while the row's bid, ask and mark IV remain good data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from volguard.data.schema import REQUIRED

PRICE_COLUMNS = ("bid", "ask", "mark")
SIZE_COLUMNS = ("bid_size", "ask_size", "open_interest", "volume")


@dataclass(frozen=True)
class HygieneRules:
    """Tolerances of the bound checks.

    Parameters
    ----------
    tick_coin : float
        Price tolerance for inverse options, in coin per coin (Deribit's tick is 0.0001 BTC/ETH,
        and its marks are rounded to it); converted to USD with the row's forward.
    tick_usd : float
        Price tolerance for linear options, USD per unit of underlying.
    """

    tick_coin: float = 1e-4
    tick_usd: float = 0.01


def classify(rows: pd.DataFrame, rules: HygieneRules | None = None) -> pd.DataFrame:
    """Fill ``reason`` for every row that fails a rule and ``flags`` for one-sided quotes.

    Parameters
    ----------
    rows : DataFrame
        A loader's output (quote columns plus ``reason``, already set for parse problems).
    rules : HygieneRules, optional
        Tolerances; defaults to Deribit's tick.

    Returns
    -------
    DataFrame
        ``rows`` with ``reason`` (NA = clean) and ``flags`` filled; nothing is dropped.
    """
    rules = rules or HygieneRules()
    out = rows.copy()
    open_ = out["reason"].isna().to_numpy(copy=True)
    reason = out["reason"].astype(object).to_numpy(copy=True)

    def mark(mask: np.ndarray, code: str) -> None:
        hit = open_ & mask
        reason[hit] = code
        open_[hit] = False

    for column in REQUIRED:
        mark(out[column].isna().to_numpy(), f"missing:{column}")

    strike = out["strike"].to_numpy(dtype=float, na_value=np.nan)
    forward = out["forward"].to_numpy(dtype=float, na_value=np.nan)
    t = out["t"].to_numpy(dtype=float, na_value=np.nan)
    prices = {c: out[c].to_numpy(dtype=float, na_value=np.nan) for c in PRICE_COLUMNS}
    ivs = {c: out[f"{c}_iv"].to_numpy(dtype=float, na_value=np.nan) for c in PRICE_COLUMNS}
    sizes = {c: out[c].to_numpy(dtype=float, na_value=np.nan) for c in SIZE_COLUMNS}
    is_call = out["is_call"].to_numpy(dtype=bool, na_value=False)
    inverse = (out["settlement"] == "inverse").to_numpy(dtype=bool, na_value=False)

    numbers = [strike, forward, t, *prices.values(), *ivs.values(), *sizes.values()]
    mark(np.logical_or.reduce([np.isinf(x) for x in numbers]), "non_finite")
    mark(~(forward > 0), "missing_forward")
    mark(~(t > 0), "expired")
    negative = [x < 0 for x in (*prices.values(), *ivs.values(), *sizes.values())]
    mark(~(strike > 0) | np.logical_or.reduce(negative), "non_positive")
    crossed = (prices["bid"] > prices["ask"]) | (ivs["bid"] > ivs["ask"])
    mark(crossed, "crossed")

    tol = np.where(inverse, rules.tick_coin * forward, rules.tick_usd)
    intrinsic = np.where(
        is_call, np.maximum(forward - strike, 0.0), np.maximum(strike - forward, 0.0)
    )
    upper = np.where(is_call, forward, strike)
    mark(prices["ask"] < intrinsic - tol, "below_intrinsic")
    mark(prices["bid"] > upper + tol, "above_upper_bound")

    key = out[["underlying", "ts", "instrument"]]
    # of repeated quotes the last line wins: in an update stream it is the latest state
    mark(key.duplicated(keep="last").to_numpy() & key.notna().all(axis=1).to_numpy(), "duplicate")

    out["reason"] = pd.array(reason, dtype="string")
    no_bid = np.isnan(prices["bid"]) & np.isnan(ivs["bid"])
    no_ask = np.isnan(prices["ask"]) & np.isnan(ivs["ask"])
    flagged = {
        "no_bid": no_bid,
        "no_ask": no_ask,
        "mark_below_intrinsic": prices["mark"] < intrinsic - tol,
        "mark_above_upper_bound": prices["mark"] > upper + tol,
    }
    out["flags"] = pd.array(_join_flags(flagged, len(out)), dtype="string")
    return out


def _join_flags(flagged: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Comma-joined names of the flags set on each row ('' where none)."""
    flags = np.full(n, "", dtype=object)
    for name, mask in flagged.items():
        flags[mask] = np.where(flags[mask] == "", name, flags[mask] + "," + name)
    return flags


def split(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split classified rows into (clean, quarantine); clean rows lose the ``reason`` column."""
    bad = rows["reason"].notna().to_numpy()
    return rows.loc[~bad].drop(columns="reason").reset_index(drop=True), rows.loc[bad].reset_index(
        drop=True
    )
