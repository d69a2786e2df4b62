"""The state of one snapshot: what a learned engine knows of the snapshot it prices.

A learned engine is trained across many snapshots and conditioned on one through these few
numbers. They are computed from :class:`FitQuotes` alone (the snapshot's fit quotes and the two
scalars riding with them), so a fitted engine depends on the snapshot it was fitted to and on
the trained model, nothing else.

The :data:`DEFAULT_FEATURES` come from the quotes and are finite for any snapshot with at least
one fit quote: where an expiry or a quote needed for the definition is missing, the fallback
below is used (never NaN). Two more are opt-in (a learned engine's ``features`` setting):
``basis_annual`` from the forwards and the index, and ``realized_vol_7d`` from the index
history, which the snapshot carries only once :func:`volguard.market.history.with_realized_vol`
has attached it (studies do); an engine asked to use a feature that is NaN raises.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from volguard.market.clock import DAYS_PER_YEAR
from volguard.market.smile import atm_skew, atm_vol
from volguard.models.quotes import FitQuotes

DEFAULT_FEATURES: tuple[str, ...] = (
    "atm_vol_30d",
    "atm_skew_30d",
    "term_slope",
    "half_spread_vol",
    "put_share",
)
"""The state features learned engines use unless told otherwise (from the quotes alone)."""
FEATURES: tuple[str, ...] = (*DEFAULT_FEATURES, "basis_annual", "realized_vol_7d")
"""Every state feature name, in the order the learned engines use them.

- ``atm_vol_30d`` (decimal vol): at-the-money vol at 30 days of the mid vols
  (:func:`volguard.market.smile.atm_vol`).
- ``atm_skew_30d`` (vol per unit of log-moneyness): ``dsigma/dk`` at ``k = 0`` near 30 days
  (:func:`volguard.market.smile.atm_skew`); 0 when no expiry has two distinct strikes.
- ``term_slope`` (decimal vol): ATM vol at 90 days minus ATM vol at 7 days, both as for
  ``atm_vol_30d`` (so 0 when one expiry is quoted: the nearest expiry is held at both ends).
- ``half_spread_vol`` (decimal vol): median half bid-ask spread in implied vol.
- ``put_share`` (fraction in [0, 1]): share of fit quotes that are puts (``k < 0``): where the
  listed strikes sit relative to the forward (low after a rally, high after a crash).
- ``basis_annual`` (per year): median over the expiries beyond 7 days (all expiries if none is)
  of the annualised log basis ``ln(F / index) / t``, the market's funding rate for the horizon;
  0 when the snapshot has no index price.
- ``realized_vol_7d`` (decimal vol): realised vol of the index over the trailing 7 days
  (:mod:`volguard.market.history`); NaN unless attached.
"""
MIN_BASIS_DAYS = 7.0
"""Expiries shorter than this are left out of ``basis_annual`` (their basis is mostly noise)."""


def _basis(quotes: FitQuotes) -> float:
    if not np.isfinite(quotes.index_price) or quotes.index_price <= 0:
        return 0.0
    times, first = np.unique(quotes.t, return_index=True)
    basis = np.log(quotes.forward[first] / quotes.index_price) / times
    far = times * DAYS_PER_YEAR > MIN_BASIS_DAYS
    return float(np.median(basis[far] if far.any() else basis))


def state_features(quotes: FitQuotes, required: Sequence[str] = ()) -> dict[str, float]:
    """The state features of one snapshot (see :data:`FEATURES` for units and fallbacks).

    Parameters
    ----------
    quotes : FitQuotes
        The snapshot's fit quotes (:func:`volguard.models.quotes.fit_quotes`).
    required : sequence of str
        Features the caller uses: one that is NaN (``realized_vol_7d`` not attached) raises.

    Returns
    -------
    dict
        Feature name -> finite float, in the order of :data:`FEATURES`.

    Raises
    ------
    ValueError
        If ``quotes`` is empty, or a ``required`` feature is NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> k = np.array([-0.1, 0.0, 0.1]); one = np.ones(3)
    >>> q = FitQuotes(k, 0.1 * one, np.zeros(3, int), pd.DatetimeIndex(["2026-02-01"]),
    ...               one, np.array([0.6, 0.5, 0.45]), 0.49 * one, 0.51 * one, 0.01 * one, one)
    >>> {name: round(v, 3) for name, v in state_features(q).items()}
    {'atm_vol_30d': 0.5, 'atm_skew_30d': -0.75, 'term_slope': 0.0, 'half_spread_vol': 0.01, \
'put_share': 0.333, 'basis_annual': 0.0, 'realized_vol_7d': nan}
    """
    if len(quotes) == 0:
        raise ValueError("state features need at least one fit quote; received none")
    skew = atm_skew(quotes.t, quotes.k, quotes.mid_iv, 30)

    def atm(days: float) -> float:
        return atm_vol(quotes.t, quotes.k, quotes.mid_iv, days)

    state = {
        "atm_vol_30d": atm(30),
        "atm_skew_30d": skew if np.isfinite(skew) else 0.0,
        "term_slope": atm(90) - atm(7),
        "half_spread_vol": float(np.median(quotes.half_spread)),
        "put_share": float(np.mean(quotes.k < 0)),
        "basis_annual": _basis(quotes),
        "realized_vol_7d": float(quotes.realized_vol),
    }
    missing = [name for name in required if not np.isfinite(state[name])]
    if missing:
        raise ValueError(
            f"state features {missing} are not known for the snapshot (NaN); "
            "realized_vol_7d comes from the index history: attach it with "
            "volguard.market.history.with_realized_vol"
        )
    return state


def known_state(state: dict[str, float]) -> dict[str, float]:
    """The features of ``state`` that are known (finite), for fit reports: a NaN never
    equals itself, so reports compared by value leave the unattached ones out."""
    return {name: value for name, value in state.items() if np.isfinite(value)}
