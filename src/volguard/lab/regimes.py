"""Regime labels of snapshots: rules on market features, a Gaussian HMM, or date ranges.

:func:`snapshot_features` turns a quote panel (the quote schema, many snapshots of one or more
underlyings) into one row per snapshot:

===================  ===================================================================
``atm_30d``          30-day ATM mark vol (decimal), :mod:`volguard.sim.surface_facts`
``atm_change_3d``    its change over the trailing 3 days (vol units)
``rr_25d``           25-delta risk reversal (vol units; negative: puts richer)
``realized_vol``     annualised realised vol of the index over the trailing 7 days
``return_7d``        log return of the index over the trailing 7 days
``drawdown_7d``      index over its trailing 7-day high, minus 1
``spread_vol_pts``   median half-spread of the two-sided quotes, vol points
``one_sided_share``  share of quotes without a bid or an ask
===================  ===================================================================

Every feature at ``ts`` uses data up to ``ts`` only. Labels: :func:`rule_labels` (thresholds of
:class:`RegimeRules`, documented), :func:`hmm_labels` (hmmlearn, states ordered by ATM vol) and
:func:`range_labels` (user-defined date ranges, e.g. ``crash: 2026-01-29 .. 2026-02-06``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from volguard.kernels.api import implied_vol
from volguard.market.history import realized_vol
from volguard.models.regime import fit_regime_hmm
from volguard.sim.surface_facts import surface_facts

FEATURES: tuple[str, ...] = (
    "atm_30d",
    "atm_change_3d",
    "rr_25d",
    "realized_vol",
    "return_7d",
    "drawdown_7d",
    "spread_vol_pts",
    "one_sided_share",
)


def _liquidity(quotes: pd.DataFrame) -> tuple[float, float]:
    bid = quotes["bid"].to_numpy(dtype=float, na_value=np.nan)
    ask = quotes["ask"].to_numpy(dtype=float, na_value=np.nan)
    both = np.isfinite(bid) & np.isfinite(ask)
    args = (
        quotes["forward"].to_numpy(dtype=float)[both],
        quotes["strike"].to_numpy(dtype=float)[both],
        quotes["t"].to_numpy(dtype=float)[both],
        quotes["is_call"].to_numpy(dtype=bool)[both],
    )
    bid_iv = np.asarray(implied_vol(bid[both], *args))
    ask_iv = np.asarray(implied_vol(ask[both], *args))
    half = (ask_iv - bid_iv) / 2 * 100
    half = half[np.isfinite(half)]
    return (float(np.median(half)) if half.size else np.nan), float(1 - both.mean())


def snapshot_features(panel: pd.DataFrame) -> pd.DataFrame:
    """One row per (underlying, ts) with :data:`FEATURES` (see the module docstring)."""
    rows = []
    for (underlying, ts), q in panel.groupby(["underlying", "ts"], sort=True):
        spread, one_sided = _liquidity(q)
        facts = surface_facts(q)
        rows.append(
            {
                "underlying": underlying,
                "ts": ts,
                "index_price": float(q["index_price"].median()),
                "atm_30d": facts["atm_30d"],
                "rr_25d": facts["rr_25d"],
                "spread_vol_pts": spread,
                "one_sided_share": one_sided,
            }
        )
    out = pd.DataFrame(rows)
    parts = []
    for _, g in out.groupby("underlying", sort=False):
        g = g.set_index("ts").sort_index()
        log_price = np.log(g["index_price"])
        week = log_price.rolling("7D")
        g["realized_vol"] = realized_vol(g["index_price"], "7D")
        g["return_7d"] = log_price - week.apply(lambda w: w[0], raw=True)
        g["drawdown_7d"] = np.exp(log_price - week.max()) - 1
        g["atm_change_3d"] = g["atm_30d"] - g["atm_30d"].rolling("3D").apply(
            lambda w: w[0], raw=True
        )
        parts.append(g.reset_index())
    return pd.concat(parts, ignore_index=True)[["underlying", "ts", "index_price", *FEATURES]]


@dataclass(frozen=True)
class RegimeRules:
    """Thresholds of :func:`rule_labels` (checked in this order, the first match wins).

    * ``crash``: ``drawdown_7d <= crash_drawdown`` or ``atm_change_3d >= crash_vol_jump``;
    * ``illiquid``: ``one_sided_share >= illiquid_share`` or
      ``spread_vol_pts >= illiquid_spread``;
    * ``rally``: ``return_7d >= rally_return``;
    * ``stressed``: ``atm_30d >= stressed_vol`` (a high-vol plateau);
    * ``calm`` otherwise.
    """

    crash_drawdown: float = -0.10
    crash_vol_jump: float = 0.08
    illiquid_share: float = 0.20
    illiquid_spread: float = 6.0
    rally_return: float = 0.10
    stressed_vol: float = 0.55


def rule_labels(features: pd.DataFrame, rules: RegimeRules | None = None) -> pd.Series:
    """A label per feature row by :class:`RegimeRules`.

    Examples
    --------
    >>> f = pd.DataFrame({"drawdown_7d": [-0.02, -0.15], "atm_change_3d": [0.0, 0.1],
    ...                   "one_sided_share": [0.05, 0.05], "spread_vol_pts": [1.0, 2.0],
    ...                   "return_7d": [0.01, -0.2], "atm_30d": [0.4, 0.7]})
    >>> rule_labels(f).tolist()
    ['calm', 'crash']
    """
    r = rules or RegimeRules()
    conditions = [
        (features["drawdown_7d"] <= r.crash_drawdown)
        | (features["atm_change_3d"] >= r.crash_vol_jump),
        (features["one_sided_share"] >= r.illiquid_share)
        | (features["spread_vol_pts"] >= r.illiquid_spread),
        features["return_7d"] >= r.rally_return,
        features["atm_30d"] >= r.stressed_vol,
    ]
    names = ["crash", "illiquid", "rally", "stressed"]
    labels = np.select([c.fillna(False).to_numpy(bool) for c in conditions], names, "calm")
    return pd.Series(labels, index=features.index, name="regime", dtype="string")


def hmm_labels(
    features: pd.DataFrame,
    columns: Sequence[str] = ("atm_30d", "atm_change_3d", "realized_vol"),
    n_states: int = 3,
    seed: int = 0,
) -> pd.Series:
    """Most likely state path of a Gaussian HMM fitted to standardized ``columns``.

    States are named by their mean ATM vol, lowest first: ``hmm0`` (calmest) to
    ``hmm{n-1}`` (by the covariance's size without ``atm_30d``). Rows with a missing feature
    get NA. The model is the guard's kind (:func:`volguard.models.regime.fit_regime_hmm`),
    decoded with Viterbi (:meth:`~volguard.models.regime.RegimeModel.decode`): an offline,
    whole-sample labelling (:class:`~volguard.models.regime.RegimeFilter` is the online one).
    """
    x = features[list(columns)].to_numpy(dtype=float)
    ok = np.isfinite(x).all(axis=1)
    z = (x[ok] - x[ok].mean(axis=0)) / x[ok].std(axis=0)
    order_by = list(columns).index("atm_30d") if "atm_30d" in columns else None
    states = fit_regime_hmm(z, n_states, seed, order_by=order_by).decode(z)
    labels = pd.Series(pd.NA, index=features.index, name="regime", dtype="string")
    labels[ok] = [f"hmm{s}" for s in states]
    return labels


def range_labels(
    ts: pd.Series, ranges: Mapping[str, tuple[str, str]], default: str = "other"
) -> pd.Series:
    """Labels from date ranges ``name -> (start, end)``, both inclusive (dates or times, UTC).

    Examples
    --------
    >>> ts = pd.Series(pd.to_datetime(["2026-01-15", "2026-02-01", "2026-03-01"], utc=True))
    >>> range_labels(ts, {"crash": ("2026-01-29", "2026-02-06")}).tolist()
    ['other', 'crash', 'other']
    """
    labels = pd.Series(default, index=ts.index, name="regime", dtype="string")
    for name, (start, end) in ranges.items():
        lo = pd.Timestamp(start, tz="UTC")
        hi = pd.Timestamp(end, tz="UTC")
        if hi == hi.normalize():  # a date: the whole day
            hi = hi + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
        labels[(ts >= lo) & (ts <= hi)] = name
    return labels
