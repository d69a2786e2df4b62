"""Does the smile's measured stickiness forecast the next snapshot better than persistence?

A first measurement towards the surface-dynamics forecaster of the accuracy issue, on the
desk's protocol (:mod:`volguard.lab.skill`): the core quotes of each snapshot (expiry at least
2 days, ``|delta|`` in [0.1, 0.9]) are forecast from the previous snapshot, and each rule is
scored by its per-snapshot RMSE (vol points), median over the snapshots of each regime, with
its skill and Diebold-Mariano p-value against the best baseline.

Baselines: ``persist-strike`` and ``persist-moneyness`` (the previous mid vols per instrument,
and per expiry in ``k``), ``svi-plain`` and ``svi-plain-strike`` (the previous snapshot's plain
SVI read sticky moneyness and sticky strike). Two rules measured:

* ``stickiness``: the previous plain SVI read at ``k_new + lambda ln(F_new / F_old)``, between
  sticky moneyness (``lambda = 0``) and sticky strike (``lambda = 1``) and beyond (``lambda =
  2`` moves the at-the-money vol along the skew as local volatility does: the skew stickiness
  ratio);
* ``stickiness-quotes``: each instrument's previous mid vol moved along the previous smile's
  slope by ``(lambda - 1) ln(F_new / F_old)`` (``lambda = 1`` is ``persist-strike``).

Lambda is chosen per rule and expiry bucket (under / over 30 days) on the pairs already seen,
each weighted by ``0.5 ** (age / half_life)`` snapshots, from a grid of -1 to 4: strictly
causal.

Run: ``python examples/stickiness_forecast.py [--underlying BTC] [--half-life 10]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from _svcj import REGIMES, svcj_snapshots

from volguard.lab.predict import persistence, sticky_strike
from volguard.lab.regimes import range_labels
from volguard.lab.skill import desk_scorecard, skill_table, with_buckets
from volguard.market.clock import DAYS_PER_YEAR
from volguard.market.quotes import observed_vols
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import FIT_ERRORS
from volguard.models.parametric.svi_plain import PlainSVI

LAMBDAS = np.arange(-1.0, 4.01, 0.25)
SPLIT_DAYS = 30.0


def quote_table(snapshot: MarketSnapshot) -> pd.DataFrame:
    table = observed_vols(snapshot).drop(columns="half_spread_iv")
    return table.assign(ts=snapshot.ts, vega=1.0)


def read_at(fit: PlainSVI, now: MarketSnapshot, rows: pd.DataFrame, lam: np.ndarray) -> np.ndarray:
    """The fit read at ``k_new + lam ln(F_new / F_old)`` for each row (``lam`` per row)."""
    f_old = now.forward_at(rows["expiry"])
    k_new = rows["k"].to_numpy(float)
    move = np.log(rows["forward"].to_numpy(float) / f_old)
    out: np.ndarray = fit.implied_vol(k_new + lam * move, rows["t"].to_numpy(float))
    return out


def quotes_at(
    before: pd.DataFrame, rows: pd.DataFrame, now: MarketSnapshot, lam: np.ndarray
) -> np.ndarray:
    """Each instrument's previous mid vol moved along its previous smile's slope by
    ``(lam - 1) ln(F_new / F_old)`` (``lam = 1``: ``persist-strike``); the slope per expiry
    from the previous mid vols, linear in ``k``. Instruments new since are not predicted."""
    out = np.full(len(rows), np.nan)
    move = np.log(rows["forward"].to_numpy(float) / now.forward_at(rows["expiry"]))
    then = rows[["instrument"]].merge(before, on="instrument", how="left")
    for expiry, smile in before.groupby("expiry"):
        smile = smile.sort_values("k")
        if len(smile) < 2:
            continue
        at = (rows["expiry"] == expiry).to_numpy()
        k_old = then["k"].to_numpy(float)[at]
        slope = np.interp(k_old, smile["k"], np.gradient(smile["mid_iv"], smile["k"]))
        out[at] = then["mid_iv"].to_numpy(float)[at] + (lam[at] - 1) * slope * move[at]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--underlying", default="BTC")
    parser.add_argument("--half-life", type=float, default=10.0, help="snapshots")
    parser.add_argument("--cache", type=Path, default=Path("runs/stickiness"))
    args = parser.parse_args()
    snaps = svcj_snapshots(args.underlying, args.cache)
    fits: list[PlainSVI | None] = []
    for snap in snaps:
        try:
            fits.append(PlainSVI().fit(snap))
        except FIT_ERRORS:
            fits.append(None)
    # per bucket (short, long): decayed SSE of each lambda over the pairs seen so far
    sse = np.zeros((2, LAMBDAS.size))
    sse_q = np.zeros((2, LAMBDAS.size))  # the same choice for the quotes' own smile
    decay = 0.5 ** (1.0 / args.half_life)
    frames = []
    for i in range(1, len(snaps)):
        now, later, fit = snaps[i - 1], snaps[i], fits[i - 1]
        rows = quote_table(later)
        rows = rows[rows["expiry"].isin(now.expiries)]
        if fit is None or rows.empty:
            continue
        long = (rows["t"].to_numpy(float) * DAYS_PER_YEAR > SPLIT_DAYS).astype(int)
        chosen = LAMBDAS[np.argmin(sse, axis=1)] if sse.any() else np.zeros(2)
        lam = chosen[long]
        lam_q = (LAMBDAS[np.argmin(sse_q, axis=1)] if sse_q.any() else np.ones(2))[long]
        before = quote_table(now)
        parts = persistence(before, rows)
        parts["svi-plain"] = rows.assign(model_iv=read_at(fit, now, rows, np.zeros(len(rows))))
        parts["svi-plain-strike"] = sticky_strike(fit, now, rows)
        parts["stickiness"] = rows.assign(model_iv=read_at(fit, now, rows, lam))
        parts["stickiness-quotes"] = rows.assign(model_iv=quotes_at(before, rows, now, lam_q))
        frames += [p.assign(engine=name, protocol="forecast-1") for name, p in parts.items()]
        # the pair's outcome enters the choice of lambda for the next pairs only
        mid = rows["mid_iv"].to_numpy(float)
        for j, grid_lam in enumerate(LAMBDAS):
            err = (read_at(fit, now, rows, np.full(len(rows), grid_lam)) - mid) ** 2
            err_q = (quotes_at(before, rows, now, np.full(len(rows), grid_lam)) - mid) ** 2
            for bucket in (0, 1):
                sse[bucket, j] = decay * sse[bucket, j] + np.nansum(err[long == bucket])
                sse_q[bucket, j] = decay * sse_q[bucket, j] + np.nansum(err_q[long == bucket])
    pred = pd.concat(frames, ignore_index=True)
    pred["regime"] = range_labels(pred["ts"], REGIMES).to_numpy()
    pred = with_buckets(pred)
    pred = pred[(pred["bucket"] == "core") & (pred["regime"] != "other")]
    card = desk_scorecard(pred, ["regime", "engine"])
    skill = skill_table(pred, ["regime"])
    table = card.merge(skill, on=["regime", "engine"], how="left")
    table["regime"] = pd.Categorical(table["regime"], list(REGIMES))
    columns = ["regime", "engine", "iv_rmse_vol_pts", "inside_pct", "skill", "dm_p"]
    print(table.sort_values(["regime", "iv_rmse_vol_pts"])[columns].round(3).to_string(index=False))
    print("lambda chosen at the end (short, long), fit:", LAMBDAS[np.argmin(sse, axis=1)])
    print("lambda chosen at the end (short, long), quotes:", LAMBDAS[np.argmin(sse_q, axis=1)])


if __name__ == "__main__":
    main()
