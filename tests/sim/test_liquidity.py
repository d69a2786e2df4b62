"""The liquidity model: quotes from true prices, on Deribit's tick grid, clean under hygiene."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from volguard.data.hygiene import classify
from volguard.data.loaders import read_deribit_snapshot, read_tardis_chain
from volguard.data.schema import QUARANTINE_COLUMNS, conform
from volguard.errors import ConfigError
from volguard.kernels.api import black76_greeks
from volguard.sim.liquidity import (
    LiquidityModel,
    fit_liquidity,
    liquidity_stats,
    load_liquidity_model,
)

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "volguard" / "data" / "samples"
MODEL = load_liquidity_model()


def make_chain(regime: str = "calm", n_ts: int = 4, drift: float = 0.0) -> pd.DataFrame:
    """Hourly BTC chains priced with Black-76 at a skewed smile; the forward moves by ``drift``
    (log) each hour."""
    start = pd.Timestamp("2026-01-10 09:00", tz="UTC")
    expiries = [start.normalize() + pd.Timedelta(days=d, hours=8) for d in (1, 7, 30, 91)]
    rows = []
    for i in range(n_ts):
        ts = start + pd.Timedelta(hours=i)
        for expiry in expiries:
            t = (expiry - ts) / pd.Timedelta(days=365)
            forward = 90_000.0 * np.exp(drift * i + 0.05 * t)
            width = 4.0 * 0.5 * np.sqrt(t)
            strikes = np.unique(np.round(forward * np.exp(np.linspace(-width, width, 25)), -3))
            for strike in strikes:
                for is_call in (False, True):
                    rows.append((ts, expiry, t, strike, is_call, forward))
    chain = pd.DataFrame(rows, columns=["ts", "expiry", "t", "strike", "is_call", "forward"])
    chain["underlying"] = "BTC"
    chain["instrument"] = [
        f"BTC-{e.day}{e.strftime('%b%y').upper()}-{int(k)}-{'C' if c else 'P'}"
        for e, k, c in zip(chain["expiry"], chain["strike"], chain["is_call"], strict=True)
    ]
    chain["index_price"] = 90_000.0
    chain["k"] = np.log(chain["strike"] / chain["forward"])
    chain["true_iv"] = 0.5 - 0.1 * chain["k"] + 0.2 * chain["k"] ** 2
    g = black76_greeks(
        chain["forward"], chain["strike"], chain["t"], chain["true_iv"], chain["is_call"].to_numpy()
    )
    chain["true_price"] = g["price"]
    chain["true_vega"] = g["vega"]
    chain["regime"] = regime
    return chain.sort_values(["ts", "expiry", "strike", "is_call"], ignore_index=True)


def coin(quotes: pd.DataFrame, side: str) -> np.ndarray:
    return (quotes[side] / quotes["forward"]).to_numpy()


def test_same_seed_same_quotes_and_other_seeds_differ() -> None:
    chain = make_chain()
    a = MODEL.quote(chain, np.random.default_rng(7))
    b = MODEL.quote(chain, np.random.default_rng(7))
    c = MODEL.quote(chain, np.random.default_rng(8))
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["mark"], c["mark"])
    assert (np.nan_to_num(a["ask"]) != np.nan_to_num(c["ask"])).mean() > 0.2


def test_rows_kept_and_input_not_mutated() -> None:
    chain = make_chain()
    before = chain.copy()
    out = MODEL.quote(chain, np.random.default_rng(1))
    pd.testing.assert_frame_equal(chain, before)
    pd.testing.assert_frame_equal(out[chain.columns], chain)
    assert {"bid", "ask", "mark", "bid_size", "ask_size", "stale"} <= set(out.columns)


@pytest.mark.parametrize("regime", ["calm", "crash", "plateau", "trending", "rally", "crunch"])
def test_quotes_pass_hygiene_clean_within_bounds(regime: str) -> None:
    # a 2 %/hour sell-off makes carried (stale) coin quotes break bounds unless handled
    out = MODEL.quote(make_chain(regime, n_ts=6, drift=-0.02), np.random.default_rng(3))
    rows = out.assign(venue="deribit", settlement="inverse", reason=pd.NA)
    classified = classify(conform(rows, QUARANTINE_COLUMNS))
    assert classified["reason"].isna().all(), classified["reason"].value_counts()
    bid, ask, mark = (out[c].to_numpy() for c in ("bid", "ask", "mark"))
    both = ~np.isnan(bid) & ~np.isnan(ask)
    assert np.all(bid[both] < ask[both])
    assert np.all(bid[~np.isnan(bid)] > 0)
    upper = np.where(out["is_call"], out["forward"], out["strike"])
    intrinsic = np.maximum(np.where(out["is_call"], 1, -1) * (out["forward"] - out["strike"]), 0)
    assert np.all(ask[~np.isnan(ask)] <= upper[~np.isnan(ask)] * (1 + 1e-12))
    assert np.all((mark >= intrinsic) & (mark <= upper))
    assert np.all(np.isnan(bid) == np.isnan(out["bid_size"]))
    assert np.all(out["ask_size"].dropna() >= 0.1)


def test_prices_on_deribit_tick_grid() -> None:
    out = MODEL.quote(make_chain(), np.random.default_rng(2))
    for side in ("bid", "ask"):
        c = coin(out, side)
        c = c[~np.isnan(c)]
        small, large = c[c < 0.005], c[c >= 0.005]
        assert len(small) > 50 and len(large) > 50
        assert np.allclose(small / 1e-4, np.round(small / 1e-4), atol=1e-6)
        assert np.allclose(large / 5e-4, np.round(large / 5e-4), atol=1e-6)


def test_options_worth_under_a_tick_have_no_bid() -> None:
    out = MODEL.quote(make_chain(), np.random.default_rng(4))
    cheap = (out["true_price"] / out["forward"]).to_numpy() < 0.5e-4
    assert cheap.sum() > 10
    assert out.loc[cheap, "bid"].isna().all()
    assert (out.loc[cheap, "ask"] / out.loc[cheap, "forward"]).min() >= 1e-4 - 1e-12


def _median_volpt(out: pd.DataFrame, rows: np.ndarray) -> float:
    both = rows & out["bid"].notna().to_numpy() & out["ask"].notna().to_numpy()
    spread = (out["ask"] - out["bid"]).to_numpy()[both]
    return float(np.median(spread / (out["true_vega"].to_numpy()[both] / 100)))


@pytest.mark.parametrize("regime", ["calm", "crash", "plateau", "trending", "rally"])
def test_spreads_widen_in_the_wings(regime: str) -> None:
    out = MODEL.quote(make_chain(regime), np.random.default_rng(5))
    z = (np.abs(out["k"]) / np.sqrt(out["t"])).to_numpy()
    assert _median_volpt(out, (z > 0.6) & (z < 1.5)) > 1.5 * _median_volpt(out, z < 0.3)


def test_a_crunch_is_less_liquid_than_calm_at_the_same_chain() -> None:
    chain = make_chain("calm", n_ts=8)
    calm = MODEL.quote(chain, np.random.default_rng(9))
    crunch = MODEL.quote(chain.assign(regime="crunch"), np.random.default_rng(9))
    assert crunch["bid"].isna().mean() > calm["bid"].isna().mean() + 0.03
    assert crunch["ask"].isna().mean() > calm["ask"].isna().mean() + 0.03
    long_atm = ((np.abs(chain["k"]) / np.sqrt(chain["t"]) < 0.3) & (chain["t"] > 0.1)).to_numpy()
    assert _median_volpt(crunch, long_atm) > 1.2 * _median_volpt(calm, long_atm)


def test_stale_quotes_carry_the_previous_coin_quote() -> None:
    model = LiquidityModel(
        regimes={
            "calm": MODEL.regimes["calm"].__class__(
                **{**MODEL.regimes["calm"].__dict__, "stale_prob": 0.5}
            )
        }
    )
    out = model.quote(make_chain(n_ts=3, drift=0.001), np.random.default_rng(6))
    first = out["ts"] == out["ts"].min()
    assert not out.loc[first, "stale"].any()
    assert 0.3 < out.loc[~first, "stale"].mean() < 0.6
    prev = out.groupby("instrument")[["bid", "ask", "forward"]].shift(1)
    stale = out[out["stale"]]
    for side in ("bid", "ask"):
        now = stale[side] / stale["forward"]
        before = prev.loc[stale.index, side] / prev.loc[stale.index, "forward"]
        # carried from the last fresh quote: one step back or, where that was stale too, earlier
        one_back = ~out["stale"].shift(1).loc[stale.index].astype(bool)
        assert np.allclose(now[one_back], before[one_back], equal_nan=True)


def test_unknown_regime_names_it_and_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"\['storm'\].*calm"):
        MODEL.quote(make_chain("storm"), np.random.default_rng(0))


def test_dict_round_trip_and_packaged_model() -> None:
    data = json.loads(json.dumps(MODEL.to_dict()))
    assert LiquidityModel.from_dict(data) == MODEL
    assert set(MODEL.regimes) == {"calm", "crash", "plateau", "trending", "rally", "crunch"}
    assert "2026-01-29" in MODEL.sources["crash"]
    assert all(p.n_rows > 5_000 and p.n_snapshots >= 8 for p in MODEL.regimes.values())
    with pytest.raises(ConfigError):
        LiquidityModel.from_dict({**data, "features": ["const"]})


def _chain_from_real(real: pd.DataFrame, regime: str) -> pd.DataFrame:
    real = real[real["mark_iv"].notna() & (real["mark_iv"] > 0)].reset_index(drop=True)
    is_call = real["is_call"].to_numpy(dtype=bool)
    g = black76_greeks(real["forward"], real["strike"], real["t"], real["mark_iv"], is_call)
    return pd.DataFrame(
        {
            "ts": real["ts"],
            "underlying": real["underlying"].astype(str),
            "instrument": real["instrument"].astype(str),
            "expiry": real["expiry"],
            "t": real["t"],
            "strike": real["strike"],
            "is_call": is_call,
            "forward": real["forward"],
            "index_price": real["index_price"],
            "k": np.log(real["strike"] / real["forward"]),
            "true_iv": real["mark_iv"],
            "true_price": g["price"],
            "true_vega": g["vega"],
            "regime": regime,
        }
    )


def _real(snapshot_files: list[Path], days: tuple[str, ...]) -> pd.DataFrame:
    files = [f for f in snapshot_files if any(d in f.name for d in days)]
    rows = pd.concat([read_deribit_snapshot(f) for f in files], ignore_index=True)
    return rows[rows["reason"].isna()].reset_index(drop=True)


CALM_DAYS = ("20260108T", "20260115T", "20260122T")
CRASH_DAYS = ("20260203T", "20260205T")


@pytest.mark.realdata
@pytest.mark.parametrize(("regime", "days"), [("calm", CALM_DAYS), ("crash", CRASH_DAYS)])
def test_simulated_quotes_match_real_snapshots(
    snapshot_files: list[Path], regime: str, days: tuple[str, ...]
) -> None:
    real = _real(snapshot_files, days)
    sim = MODEL.quote(_chain_from_real(real, regime), np.random.default_rng(11))
    want, got = liquidity_stats(real), liquidity_stats(sim)
    assert abs(got["no_bid_share"] - want["no_bid_share"]) < 0.05
    assert abs(got["no_ask_share"] - want["no_ask_share"]) < 0.05
    # tolerances: no-bid share within 6 points per bucket, median spread (vol points) within 30 %
    for bucket in ("short_atm", "long_atm", "short_wing", "long_wing"):
        assert abs(got[f"{bucket}.no_bid_share"] - want[f"{bucket}.no_bid_share"]) < 0.06
        ratio = got[f"{bucket}.spread_volpt_p50"] / want[f"{bucket}.spread_volpt_p50"]
        assert abs(ratio - 1) < 0.3, (bucket, ratio)


@pytest.mark.realdata
def test_crash_is_less_liquid_than_calm_as_in_the_real_data(snapshot_files: list[Path]) -> None:
    # the widening comes through the chain (more cheap far strikes, shorter-dated risk), not
    # through per-option coefficients: at equal features the crash window's fit is no wider
    stats = {}
    for regime, days in (("calm", CALM_DAYS), ("crash", CRASH_DAYS)):
        real = _real(snapshot_files, days)
        sim = MODEL.quote(_chain_from_real(real, regime), np.random.default_rng(12))
        stats[regime] = (liquidity_stats(real), liquidity_stats(sim))
    for i in (0, 1):  # real, simulated
        calm, crash = stats["calm"][i], stats["crash"][i]
        assert crash["no_bid_share"] > calm["no_bid_share"] + 0.02
        assert crash["short_wing.no_bid_share"] > calm["short_wing.no_bid_share"]
        assert crash["quotes_per_snapshot"] > calm["quotes_per_snapshot"]


@pytest.mark.realdata
def test_fit_on_real_snapshots(snapshot_files: list[Path]) -> None:
    real = _real(snapshot_files, CALM_DAYS[:2])
    sizes = read_tardis_chain(SAMPLES / "deribit_options_chain_2025-06-01_OPTIONS.csv.gz")
    with pytest.raises(ValueError, match="bid_size"):
        fit_liquidity(real)
    params = fit_liquidity(real, sizes=sizes)
    assert params.n_snapshots == 4 and params.n_rows == len(real)
    model = LiquidityModel(regimes={"calm": params})
    sim = model.quote(_chain_from_real(real, "calm"), np.random.default_rng(0))
    want, got = liquidity_stats(real), liquidity_stats(sim)
    assert abs(got["no_bid_share"] - want["no_bid_share"]) < 0.03
    assert 0.7 < got["short_atm.spread_ticks_p50"] / want["short_atm.spread_ticks_p50"] < 1.3
    assert 0.0 < params.mark_noise_vol < 0.01
