"""Engine predictions of held-out quotes: the rows :func:`volguard.lab.metrics.scorecard` scores.

Two protocols on snapshots of one underlying:

* :func:`nowcast`: within a snapshot, a fresh clone of each engine is fitted on the quotes a
  :class:`~volguard.lab.splits.NowcastSplit` leaves visible and predicts the held-out ones;
* :func:`forecast`: fitted on snapshot ``i``, each engine predicts the quotes of snapshot
  ``i + horizon`` at that snapshot's forwards and times (its surface read at the new ``k`` and
  ``t``: sticky moneyness).

Quotes are the two-sided out-of-the-money ones of
:func:`~volguard.market.quotes.observed_vols`. Each prediction row carries the quote
(``mid_iv``, ``bid_iv``, ``ask_iv``, ``vega`` and ``price`` at the mid vol) and the engine's
``model_iv``, ``model_price``, ``model_delta``, ``model_gamma`` and ``model_vega`` (and, for an
ensemble, ``disagreement_vol_pts``: its members' spread at the quote); each fit is a
cell with ``fit_ms``, ``failed`` and ``arb_violations``. An engine that fails to fit gives a
failed cell and no predictions, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from volguard.kernels.api import black76_greeks, implied_vol
from volguard.lab.splits import NowcastSplit
from volguard.market.quotes import observed_vols
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import FIT_ERRORS, SurfaceEngine


def _quote_table(snapshot: MarketSnapshot) -> pd.DataFrame:
    q = observed_vols(snapshot)
    g = black76_greeks(
        q["forward"].to_numpy(float),
        q["strike"].to_numpy(float),
        q["t"].to_numpy(float),
        q["mid_iv"].to_numpy(float),
        q["is_call"].to_numpy(bool),
    )
    return q.drop(columns="half_spread_iv").assign(ts=snapshot.ts, vega=g["vega"], price=g["price"])


def fit_engines(
    engines: Mapping[str, SurfaceEngine], snapshot: MarketSnapshot
) -> dict[str, tuple[SurfaceEngine | None, dict[str, object]]]:
    """A fresh clone of each engine fitted on ``snapshot`` (None where the fit raised), with its
    cell: ``fit_ms``, ``failed`` (raised or fell back) and ``arb_violations``."""
    fits: dict[str, tuple[SurfaceEngine | None, dict[str, object]]] = {}
    for name, engine in engines.items():
        fitted = clone(engine)
        try:
            fitted.fit(snapshot)
        except FIT_ERRORS:
            fits[name] = (None, {"fit_ms": np.nan, "failed": True, "arb_violations": 0})
            continue
        result = fitted.result_
        fits[name] = (
            fitted,
            {
                "fit_ms": result.fit_ms,
                "failed": result.fallback is not None,
                "arb_violations": result.arbitrage.total,
            },
        )
    return fits


def _predict(
    fitted: SurfaceEngine, rows: pd.DataFrame, context: MarketSnapshot, level: float
) -> pd.DataFrame:
    contracts = rows[["expiry", "strike", "is_call"]]
    greeks = fitted.greeks(contracts, context, delta="sticky-moneyness")
    out = rows.assign(
        model_iv=greeks["iv"],
        model_price=greeks["price"],
        model_delta=greeks["delta"],
        model_gamma=greeks["gamma"],
        model_vega=greeks["vega"],
    )
    if hasattr(fitted, "disagreement_at"):  # an ensemble: its members' spread per quote
        out["disagreement_vol_pts"] = 100.0 * fitted.disagreement_at(contracts, context)
    if hasattr(fitted, "interval"):  # the engine's own interval: posterior, spread or CV+
        out["engine_lower_iv"], out["engine_upper_iv"] = fitted.interval(contracts, context, level)
    return out


def _one_sided_table(snapshot: MarketSnapshot) -> pd.DataFrame:
    """The out-of-the-money quotes with one side only, scored against the venue's mark vol."""
    q = snapshot.quotes
    has_bid = q["bid"].notna() & (q["bid"] > 0)
    has_ask = q["ask"].notna()
    f = q["forward"].to_numpy(float)
    strike = q["strike"].to_numpy(float)
    k = np.log(strike / f)
    call = q["is_call"].to_numpy(bool)
    rows = q[(has_bid != has_ask) & np.where(k >= 0, call, ~call) & q["mark_iv"].notna()]
    rows = rows[rows["t"] > 0].assign(k=lambda r: np.log(r["strike"] / r["forward"]))
    f, strike, t = (rows[c].to_numpy(float) for c in ("forward", "strike", "t"))
    call = rows["is_call"].to_numpy(bool)
    bid_iv = implied_vol(rows["bid"].to_numpy(float, na_value=np.nan), f, strike, t, call)
    ask_iv = implied_vol(rows["ask"].to_numpy(float, na_value=np.nan), f, strike, t, call)
    mark = rows["mark_iv"].to_numpy(float)
    g = black76_greeks(f, strike, t, mark, call)
    table = rows[["instrument", "expiry", "strike", "is_call", "forward", "t", "k"]].assign(
        ts=snapshot.ts, mid_iv=mark, bid_iv=bid_iv, ask_iv=ask_iv, vega=g["vega"], price=g["price"]
    )
    return table.reset_index(drop=True)


def nowcast_snapshot(
    snapshot: MarketSnapshot,
    engines: Mapping[str, SurfaceEngine],
    split: NowcastSplit,
    fits: Mapping[str, tuple[SurfaceEngine | None, dict[str, object]]] | None = None,
    level: float = 0.9,
    baselines: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`nowcast` on one snapshot. ``fits``: the engines already fitted on the whole
    snapshot (:func:`fit_engines`), which ``illiquid`` reuses: engines fit the two-sided quotes
    only, so its fit is that one. ``level``: of the engines' own intervals, where they give
    one (``engine_lower_iv``, ``engine_upper_iv``). With ``baselines`` (and a mode with a mid),
    the held-out quotes are also predicted by the venue's mark vol (engine ``venue-mark``)."""
    protocol = f"nowcast-{split.mode}"
    quotes = snapshot.quotes
    if split.mode == "illiquid":
        table = _one_sided_table(snapshot)
        two_sided = quotes[quotes["bid"].notna() & (quotes["bid"] > 0) & quotes["ask"].notna()]
        folds = [(two_sided, np.arange(len(table)))] if len(table) and len(two_sided) else []
    else:
        fits = None
        table = _quote_table(snapshot)
        folds = [
            (quotes[quotes["instrument"].isin(table["instrument"].iloc[train])], test)
            for train, test in split.split(table)
            if len(train) and len(test)
        ]
    predictions, cells = [], []
    for i, (visible, test) in enumerate(folds):
        fold_fits = fits or fit_engines(engines, MarketSnapshot.from_quotes(visible))
        for name, (fitted, cell) in fold_fits.items():
            cells.append(
                {"engine": name, "protocol": protocol, "ts": snapshot.ts, "split": i, **cell}
            )
            if fitted is not None:
                rows = _predict(fitted, table.iloc[test], snapshot, level)
                predictions.append(rows.assign(engine=name, protocol=protocol, split=i))
        if baselines and split.mode != "illiquid" and len(test):
            marks = venue_marks(snapshot, table.iloc[test])
            predictions.append(marks.assign(engine=VENUE_MARK, protocol=protocol, split=i))
            cells.append(
                {"engine": VENUE_MARK, "protocol": protocol, "ts": snapshot.ts}
                | {"split": i, "fit_ms": 0.0, "failed": False, "arb_violations": 0}
            )
    return _frames(predictions, cells)


VENUE_MARK = "venue-mark"
"""The nowcast's venue baseline: each quote predicted by the venue's own mark vol."""


def venue_marks(snapshot: MarketSnapshot, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (a quote table) predicted by the venue's mark vol of the same instruments
    (rows without a mark are dropped), with Black-76 prices and greeks at that vol."""
    marks = snapshot.quotes[["instrument", "mark_iv"]].rename(columns={"mark_iv": "model_iv"})
    out = rows.merge(marks, on="instrument", how="inner")
    out = out[np.isfinite(out["model_iv"].to_numpy(float)) & (out["model_iv"] > 0)]
    return _at_vols(out, out["model_iv"].to_numpy(float))


def _at_vols(rows: pd.DataFrame, vol: np.ndarray) -> pd.DataFrame:
    """``rows`` with ``model_iv`` = ``vol`` and Black-76 price and greeks at it."""
    g = black76_greeks(
        rows["forward"].to_numpy(float),
        rows["strike"].to_numpy(float),
        rows["t"].to_numpy(float),
        vol,
        rows["is_call"].to_numpy(bool),
    )
    return rows.assign(
        model_iv=vol,
        model_price=g["price"],
        model_delta=g["delta"],
        model_gamma=g["gamma"],
        model_vega=g["vega"],
    )


def nowcast(
    snapshots: Sequence[MarketSnapshot],
    engines: Mapping[str, SurfaceEngine],
    split: NowcastSplit,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predictions and cells of ``split`` on every snapshot (protocol ``nowcast-<mode>``).

    ``mode="illiquid"`` fits on the two-sided quotes and predicts the out-of-the-money quotes
    with one side only; they have no mid, so their ``mid_iv`` is the venue's mark vol and the
    one quoted side's vol is kept (``inside``: the model on that side's right).
    """
    parts = [nowcast_snapshot(snapshot, engines, split) for snapshot in snapshots]
    return _joined(parts)


def forecast_snapshot(
    fits: Mapping[str, tuple[SurfaceEngine | None, dict[str, object]]],
    now: MarketSnapshot,
    later: MarketSnapshot,
    protocol: str,
    baselines: bool = False,
    level: float = 0.9,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Engines fitted on ``now`` (:func:`fit_engines`) predict the quotes of ``later`` (sticky
    moneyness: the surface read at the later forwards); with ``baselines``, so do the
    persistence baselines (:func:`persistence`) and, where ``fits`` has the plain fit
    ``svi-plain``, its sticky-strike read ``svi-plain-strike`` (:func:`sticky_strike`).
    ``level``: of the engines' own intervals, where they give one."""
    table = _quote_table(later)
    table = table[table["expiry"].isin(now.expiries)]
    predictions, cells = [], []
    for name, (fitted, cell) in fits.items():
        cells.append({"engine": name, "protocol": protocol, "ts": later.ts, "split": 0, **cell})
        if fitted is not None and len(table):
            predictions.append(
                _predict(fitted, table, later, level).assign(
                    engine=name, protocol=protocol, split=0
                )
            )
    if baselines and len(table):
        found = persistence(_quote_table(now), table)
        plain = fits.get(PLAIN_FIT, (None, {}))[0]
        if plain is not None:
            found[f"{PLAIN_FIT}-strike"] = sticky_strike(plain, now, table)
        for name, rows in found.items():
            cells.append(
                {"engine": name, "protocol": protocol, "ts": later.ts, "split": 0}
                | {"fit_ms": 0.0, "failed": False, "arb_violations": 0}
            )
            predictions.append(rows.assign(engine=name, protocol=protocol, split=0))
    return _frames(predictions, cells)


PERSISTENCE = ("persist-strike", "persist-moneyness")
"""The forecast's engine-free baselines (:func:`persistence`)."""
PLAIN_FIT = "svi-plain"
"""The plain fit every study scores beside its engines, a baseline of the desk's protocol."""


def sticky_strike(fitted: SurfaceEngine, now: MarketSnapshot, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (quotes of a later snapshot) predicted by ``fitted``, a surface fitted on
    ``now``, read sticky strike: each strike keeps the vol it had at ``now``'s forward,
    ``sigma(ln(K / F_now), t_later)``; expiries ``now`` did not quote are dropped."""
    rows = rows[rows["expiry"].isin(now.expiries)]
    k_then = np.log(rows["strike"].to_numpy(float) / now.forward_at(rows["expiry"]))
    return _at_vols(rows, fitted.implied_vol(k_then, rows["t"].to_numpy(float)))


def persistence(before: pd.DataFrame, after: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The quotes ``after`` predicted by the vols ``before``, two ways.

    ``persist-strike``: each instrument keeps its mid vol (sticky strike; instruments new
    since ``before`` are not predicted). ``persist-moneyness``: each expiry's smile keeps its
    shape in ``k = ln(K/F)``, the mid vols ``before`` interpolated linearly at the new ``k``
    (flat beyond the quoted range). Prices and greeks are Black-76 at those vols and the new
    forwards. Both tables are quote tables (:func:`nowcast`'s columns) with the ``model_*``
    columns.
    """
    sticky = after.merge(before[["instrument", "mid_iv"]], on="instrument", suffixes=("", "_then"))
    moneyness = after.copy()
    then = np.full(len(after), np.nan)
    for expiry, rows in before.groupby("expiry"):
        smile = rows.sort_values("k")
        at = (after["expiry"] == expiry).to_numpy()
        then[at] = np.interp(after["k"].to_numpy(float)[at], smile["k"], smile["mid_iv"])
    moneyness["mid_iv_then"] = then
    out = {}
    for name, rows in zip(PERSISTENCE, (sticky, moneyness), strict=True):
        rows = rows[np.isfinite(rows["mid_iv_then"])]
        vol = rows["mid_iv_then"].to_numpy(float)
        out[name] = _at_vols(rows.drop(columns="mid_iv_then"), vol)
    return out


def forecast(
    snapshots: Sequence[MarketSnapshot], engines: Mapping[str, SurfaceEngine], horizon: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predictions and cells of each engine fitted on snapshot ``i`` for snapshot ``i + horizon``
    (protocol ``forecast-<horizon>``), at the later snapshot's forwards; its expiries that the
    earlier snapshot did not list are skipped."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 snapshot, got {horizon}")
    parts = [
        forecast_snapshot(fit_engines(engines, now), now, later, f"forecast-{horizon}")
        for now, later in zip(snapshots[:-horizon], snapshots[horizon:], strict=True)
    ]
    return _joined(parts)


def _frames(
    predictions: list[pd.DataFrame], cells: list[dict[str, object]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    pred = pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame()
    return pred, pd.DataFrame(cells)


def _joined(parts: list[tuple[pd.DataFrame, pd.DataFrame]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    frames = [p for p, _ in parts if len(p)]
    pred = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return pred, pd.concat([c for _, c in parts], ignore_index=True)
