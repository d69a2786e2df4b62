"""The regime-switching market simulator: a seeded path, its Deribit-like chains and their truth.

``simulate(scenario, days, freq, seed)`` runs in three seeded stages, each with its own child
of ``numpy.random.SeedSequence(seed)`` so that changing one stage never moves another's draws:

1. regimes: the scenario's script, then the Markov chain of :mod:`volguard.sim.regimes`, on a
   grid of ``scenario.step_minutes``;
2. the path: Bates dynamics of the regime in force (physical measure), stepped by
   :func:`volguard.kernels.sv_paths.sv_path`; a second asset shares the variance, scaled;
3. quotes: the liquidity model turns true prices into bids, asks and marks.

At every snapshot the listed options (:mod:`volguard.sim.listing`) are priced under the current
regime's Bates model with the current variance by COS, one call per snapshot for all expiries
and strikes (out-of-the-money side priced, the other by parity). The truth table holds, per
quote, the model price, implied vol, delta and gamma in the forward with the variance fixed,
the Black-76 vega at the true vol, and the regime. Options whose model price has no implied vol
(a time value below float precision: far wings of expiries in their last hours) are left out
of the chain; ``SimResult.settings["unpriceable"]`` counts them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volguard._typing import FloatArray, IntArray
from volguard.data.files import replacing_dir
from volguard.kernels.api import black76_greeks, implied_vol
from volguard.kernels.heston_cos import bates_greeks
from volguard.kernels.sv_paths import sv_path
from volguard.market.clock import SECONDS_PER_YEAR
from volguard.market.deribit import deribit_names
from volguard.market.snapshot import MarketSnapshot
from volguard.sim.listing import Listing, listed_expiries
from volguard.sim.quoting import quote_table
from volguard.sim.regimes import REGIME_CODES, REGIME_NAMES, Regime
from volguard.sim.scenario import Scenario

MIN_PRICING_VARIANCE = 1e-4
"""Variance floor of the pricing state (1 vol point); full truncation lets the path touch 0."""

TRUTH_COLUMNS: tuple[str, ...] = (
    "ts",
    "underlying",
    "instrument",
    "expiry",
    "t",
    "strike",
    "is_call",
    "forward",
    "index_price",
    "k",
    "true_price",
    "true_iv",
    "true_delta",
    "true_mv_delta",
    "true_gamma",
    "true_vega",
    "variance",
    "regime",
)
"""Columns of :attr:`SimResult.truth`: prices USD per 1 underlying; ``true_delta`` is
``dPrice/dF`` and ``true_gamma`` ``d2Price/dF2`` (per USD) with the variance fixed;
``true_mv_delta`` is the minimum-variance delta of the diffusion, ``true_delta + rho sigma
(dPrice/dv) / F`` (the hedge ratio ``Cov(dPrice, dF) / Var(dF)`` when ``dF/F = sqrt(v) dW1``,
``dv = ... + sigma sqrt(v) dW2``, ``d<W1, W2> = rho dt``; jumps left out), the delta that
minimises the one-step hedging error;
``true_vega`` is the Black-76 vega at ``true_iv``, USD per 1.00 of implied vol; ``variance`` is
the pricing state (the path's variance, floored at :data:`MIN_PRICING_VARIANCE`)."""


@dataclass(frozen=True)
class SimResult:
    """A simulated run.

    Attributes
    ----------
    path : DataFrame
        Per snapshot and underlying: ``ts, underlying, spot, variance, regime``.
    truth : DataFrame
        :data:`TRUTH_COLUMNS`, one row per listed option per snapshot.
    quotes : DataFrame
        The quote schema (``docs/data.md``), rows of ``truth`` that kept a quote, same order;
        ``source_row`` is the truth row's position + 2 (a header line counts 1).
    """

    scenario: Scenario
    seed: int
    settings: dict[str, Any]
    path: pd.DataFrame
    truth: pd.DataFrame
    quotes: pd.DataFrame

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write ``quotes.parquet``, ``truth.parquet``, ``path.parquet`` and ``run.json``.

        All or nothing: the files are written to a sibling temporary folder that replaces
        ``out_dir`` at the end, so a failure leaves ``out_dir`` as it was. ``quotes.parquet``
        ingests with ``volguard ingest --format quotes``.
        """
        with replacing_dir(out_dir) as building:
            for name, frame in (
                ("quotes", self.quotes),
                ("truth", self.truth),
                ("path", self.path),
            ):
                frame.to_parquet(building / f"{name}.parquet", index=False)
            about = {"scenario": self.scenario.name, "seed": self.seed, **self.settings}
            (building / "run.json").write_text(json.dumps(about, indent=2) + "\n")
        names = ("quotes.parquet", "truth.parquet", "path.parquet", "run.json")
        return [Path(out_dir) / name for name in names]

    def snapshots(self, underlying: str | None = None) -> Iterator[MarketSnapshot]:
        """The quotes as snapshots, in time order (one underlying; default the first)."""
        name = underlying or self.scenario.underlying
        rows = self.quotes[self.quotes["underlying"] == name]
        for _, group in rows.groupby("ts", sort=True):
            yield MarketSnapshot.from_quotes(group)


def simulate(
    scenario: Scenario,
    days: float,
    freq: str = "1h",
    seed: int = 0,
    *,
    quote: bool = True,
) -> SimResult:
    """Simulate ``days`` of snapshots every ``freq`` (a pandas offset such as ``1h``, ``15min``).

    Parameters
    ----------
    scenario : Scenario
        :func:`volguard.sim.preset` or :func:`volguard.sim.load_scenario`.
    days : float
        Length of the run; snapshots at ``start + i freq`` for ``i * freq < days``.
    freq : str
        Snapshot interval, a multiple of ``scenario.step_minutes``.
    seed : int
        Seed of every random draw: the same seed gives the same result bit for bit.
    quote : bool
        Run the liquidity model (False: ``quotes`` is empty; truth only).

    Raises
    ------
    ValueError
        If ``days`` is not positive or ``freq`` is not a positive multiple of the step.

    Examples
    --------
    >>> from volguard.sim import preset
    >>> run = simulate(preset("calm-2026-01"), days=0.25, freq="2h", seed=7)
    >>> len(run.path), run.truth["regime"].unique().tolist()
    (3, ['calm'])
    """
    interval = pd.Timedelta(freq)
    step = pd.Timedelta(minutes=scenario.step_minutes)
    if not days > 0:
        raise ValueError(f"days must be > 0, got {days!r}")
    if interval <= pd.Timedelta(0) or interval % step != pd.Timedelta(0):
        raise ValueError(
            f"freq {freq!r} must be a positive multiple of the path step "
            f"({scenario.step_minutes} minutes)"
        )
    n_snap = int(np.ceil(pd.Timedelta(days=days) / interval))
    per_snap = int(interval // step)
    n_steps = max(n_snap - 1, 0) * per_snap
    dt = step.total_seconds() / SECONDS_PER_YEAR
    regime_seq, path_seq, quote_seq = np.random.SeedSequence(seed).spawn(3)
    regimes = regime_steps(scenario, n_steps + 1, step / pd.Timedelta(days=1), regime_seq)
    times = pd.date_range(scenario.start, periods=n_snap, freq=interval)
    at_snap = regimes[::per_snap][:n_snap]
    assets = simulate_assets(scenario, regimes[:n_steps], dt, np.random.default_rng(path_seq))
    paths, truths, unpriceable = [], [], 0
    for underlying, (regs, x, v) in assets.items():
        spot, var = np.exp(x[::per_snap]), v[::per_snap]
        paths.append(
            pd.DataFrame(
                {
                    "ts": times,
                    "underlying": underlying,
                    "spot": spot,
                    "variance": var,
                    "regime": regime_labels(at_snap),
                }
            )
        )
        truth, dropped = price_chains(scenario, underlying, regs, times, spot, var, at_snap)
        truths.append(truth)
        unpriceable += dropped
    truth = pd.concat(truths, ignore_index=True)
    quotes = (
        quote_table(truth, np.random.default_rng(quote_seq), f"sim:{scenario.name}:{seed}")
        if quote
        else truth.iloc[:0]
    )
    settings = {
        "days": days,
        "freq": freq,
        "snapshots": n_snap,
        "step_minutes": scenario.step_minutes,
        "unpriceable": unpriceable,
    }
    return SimResult(scenario, seed, settings, pd.concat(paths, ignore_index=True), truth, quotes)


def regime_steps(
    scenario: Scenario, n: int, step_days: float, seq: np.random.SeedSequence
) -> IntArray:
    """Regime code (:data:`REGIME_CODES`) of each of ``n`` steps: the script, then the chain."""
    rng = np.random.default_rng(seq)
    codes = np.empty(n, dtype=np.int64)
    filled = 0
    current = scenario.initial_regime
    for name, days in scenario.script:
        length = n - filled if np.isinf(days) else round(days / step_days)
        length = min(length, n - filled)
        codes[filled : filled + length] = REGIME_CODES[name]
        filled += length
        current = _next_regime(scenario.regimes[name], rng)
    while filled < n:
        mean_steps = scenario.regimes[current].mean_days / step_days
        length = min(int(rng.geometric(-np.expm1(-1.0 / mean_steps))), n - filled)
        codes[filled : filled + length] = REGIME_CODES[current]
        filled += length
        current = _next_regime(scenario.regimes[current], rng)
    return codes


def _next_regime(regime: Regime, rng: np.random.Generator) -> str:
    if not regime.switch_to:
        return regime.name
    names = list(regime.switch_to)
    p = np.array([regime.switch_to[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def simulate_assets(
    scenario: Scenario, codes: IntArray, dt: float, rng: np.random.Generator
) -> dict[str, tuple[list[Regime], FloatArray, FloatArray]]:
    """Log spot and variance paths (length ``len(codes) + 1``) of each underlying.

    Returns
    -------
    dict
        Underlying -> (its regime objects in :data:`REGIME_NAMES` order, log spot, variance).
    """
    n = codes.size
    base = [scenario.regimes[name] for name in REGIME_NAMES]
    z_v, z_x, z_j, z_2 = (rng.standard_normal(n) for _ in range(4))
    u_jump = rng.random(n)
    out = {
        scenario.underlying: (
            base,
            *_asset_path(scenario, base, codes, dt, z_v, z_x, z_j, u_jump, 1.0),
        )
    }
    second = scenario.second_asset
    if second is not None:
        c = np.array([second.corr[name] for name in REGIME_NAMES])[codes]
        rho = np.array([r.rho for r in base])[codes]
        rho2 = c * rho
        # the second asset's price shock c W1 + sqrt(1 - c^2) Z, re-expressed on z_v and its own
        # normal so that the kernel sees (rho2 z_v + sqrt(1 - rho2^2) z_x2)
        z_x2 = (c * np.sqrt(1 - rho**2) * z_x + np.sqrt(1 - c**2) * z_2) / np.sqrt(1 - rho2**2)
        scaled = [
            r.scaled(second.vol_scale, second.corr[name])
            for r, name in zip(base, REGIME_NAMES, strict=True)
        ]
        x, v = _asset_path(
            scenario, scaled, codes, dt, z_v, z_x2, z_j, u_jump, second.vol_scale, second.spot
        )
        out[second.underlying] = (scaled, x, v)
    return out


def _asset_path(
    scenario: Scenario,
    regimes: list[Regime],
    codes: IntArray,
    dt: float,
    z_v: FloatArray,
    z_x: FloatArray,
    z_j: FloatArray,
    u_jump: FloatArray,
    scale: float,
    spot: float | None = None,
) -> tuple[FloatArray, FloatArray]:
    def per_step(attr: str) -> FloatArray:
        return np.array([getattr(r, attr) for r in regimes], dtype=float)[codes]

    lam, mu, sd = per_step("lam_p"), per_step("mu_jp"), per_step("sigma_jp")
    # at most one jump per 5-minute step (P(2+) ~ lam^2 dt^2 / 2, negligible); common jump
    # times across assets because u_jump is shared
    jump = np.where(u_jump < -np.expm1(-lam * dt), mu + sd * z_j, 0.0)
    drift = (per_step("drift") - lam * mu) * dt
    x, v = sv_path(
        float(np.log(spot if spot is not None else scenario.spot)),
        scenario.v0 * scale**2,
        dt,
        per_step("kappa"),
        per_step("theta"),
        per_step("sigma"),
        per_step("rho"),
        drift,
        jump,
        z_v,
        z_x,
    )
    return x, v


def price_chains(
    scenario: Scenario,
    underlying: str,
    regimes: list[Regime],
    times: pd.DatetimeIndex,
    spot: FloatArray,
    variance: FloatArray,
    codes: IntArray,
) -> tuple[pd.DataFrame, int]:
    """The truth table (:data:`TRUTH_COLUMNS`) of one underlying's chains at ``times``, and the
    number of options left out for want of an implied vol."""
    listing = Listing(scenario.listing)
    if scenario.listed_at_spot is not None and underlying == scenario.underlying:
        # the chain found at the start was listed when the spot stood elsewhere
        ts0, regime0 = times[0], regimes[codes[0]]
        expiries = listed_expiries(ts0, scenario.listing)
        tau = np.array([(e - ts0).total_seconds() for e in expiries]) / SECONDS_PER_YEAR
        fwd = scenario.listed_at_spot * np.exp(regime0.basis * tau)
        listing.at(ts0, dict(zip(expiries, fwd, strict=True)), np.sqrt(regime0.theta))
    chains = []  # the listing is sequential (strikes persist); pricing is not
    for i, ts in enumerate(times):
        regime = regimes[codes[i]]
        v = max(float(variance[i]), MIN_PRICING_VARIANCE)
        expiries = listed_expiries(ts, scenario.listing)
        tau = np.array([(e - ts).total_seconds() for e in expiries]) / SECONDS_PER_YEAR
        fwd = spot[i] * np.exp(regime.basis * tau)
        strikes = listing.at(ts, dict(zip(expiries, fwd, strict=True)), np.sqrt(v))
        counts = np.array([strikes[e].size for e in expiries])
        n = int(counts.sum())
        chains.append(
            (
                np.full(n, ts.value, dtype=np.int64),
                np.repeat(np.array([e.value for e in expiries], dtype=np.int64), counts),
                np.repeat(tau, counts),
                np.concatenate([strikes[e] for e in expiries]),
                np.repeat(fwd, counts),
                np.full(n, spot[i]),
                np.full(n, v),
                np.full(n, codes[i]),
                regime.pricing_params(v),
            )
        )
    # the COS kernels release the GIL for most of their time: threads price snapshots in parallel
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(_price_calls, chains))
    cols = [
        np.concatenate(c)
        for c in zip(
            *(chain[:5] + p + chain[5:8] for chain, p in zip(chains, results, strict=True)),
            strict=True,
        )
    ]
    ts_ns, expiry_ns, t, strike, forward, call, call_delta, gamma, d_var, index, var, code = cols
    # every strike as a call and a put: puts by parity (D = 1), put delta = call delta - 1
    both = np.repeat(np.arange(strike.size), 2)
    is_call = np.tile(np.array([True, False]), strike.size)
    price = np.where(is_call, call[both], call[both] - forward[both] + strike[both])
    iv = np.asarray(implied_vol(price, forward[both], strike[both], t[both], is_call))
    priced = np.isfinite(iv)
    both, is_call, price, iv = both[priced], is_call[priced], price[priced], iv[priced]
    delta = np.where(is_call, call_delta[both], call_delta[both] - 1.0)
    rho_sigma = np.array([r.rho * r.sigma for r in regimes])[code[both]]
    f, k_, tt = forward[both], strike[both], t[both]
    vega = black76_greeks(f, k_, tt, iv, is_call)["vega"]
    expiry = pd.DatetimeIndex(pd.to_datetime(expiry_ns[both], utc=True))
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(ts_ns[both], utc=True),
            "underlying": pd.array(np.full(both.size, underlying), dtype="string"),
            "instrument": instrument_names(underlying, expiry, k_, is_call),
            "expiry": expiry,
            "t": tt,
            "strike": k_,
            "is_call": is_call,
            "forward": f,
            "index_price": index[both],
            "k": np.log(k_ / f),
            "true_price": price,
            "true_iv": iv,
            "true_delta": delta,
            "true_mv_delta": delta + rho_sigma * d_var[both] / forward[both],
            "true_gamma": gamma[both],
            "true_vega": vega,
            "variance": var[both],
            "regime": regime_labels(code[both]),
        }
    )
    return frame, int((~priced).sum())


def _price_calls(
    chain: tuple[Any, ...],
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Call price, delta, gamma and ``d price / d v`` of one snapshot's chain (out-of-the-money
    side priced; by parity the call and the put share gamma and ``d/dv``)."""
    _, _, t, strike, forward, *_, params = chain
    otm_call = strike >= forward
    g = bates_greeks(forward, strike, t, params, otm_call)
    call = np.where(otm_call, g.price, g.price + forward - strike)
    return call, np.where(otm_call, g.delta, g.delta + 1.0), g.gamma, g.vega_v0


def instrument_names(
    underlying: str, expiry: pd.DatetimeIndex, strike: FloatArray, is_call: np.ndarray
) -> pd.Series:
    """Deribit names (``BTC-6FEB26-70000-P``), built once per distinct contract."""
    keys = pd.DataFrame({"expiry": expiry, "strike": strike, "is_call": is_call})
    contract = keys.groupby(["expiry", "strike", "is_call"], sort=False).ngroup().to_numpy()
    unique = keys.drop_duplicates().reset_index(drop=True)
    names = deribit_names(
        pd.Series([underlying] * len(unique)),
        unique["expiry"],
        unique["strike"].to_numpy(dtype=float),
        unique["is_call"].astype("boolean"),
    )
    return pd.Series(names.to_numpy()[contract], dtype="string")


def regime_labels(codes: np.ndarray) -> pd.Categorical[str]:
    """Regime codes as a categorical of :data:`REGIME_NAMES`."""
    return pd.Categorical.from_codes(codes, categories=pd.Index(list(REGIME_NAMES)))
