"""Quote-table implied vols: units (USD vs coin), statuses, real Deribit snapshot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from volguard.data.implied_vols import quote_implied_vols
from volguard.kernels.api import black76_price


def _quotes() -> pd.DataFrame:
    f = np.array([60_000.0, 60_000.0, 60_000.0, 3_000.0])
    k = np.array([55_000.0, 70_000.0, 60_000.0, 3_100.0])
    t = np.array([0.1, 0.1, 0.5, 1 / 365])
    vol = np.array([0.5, 0.7, 0.6, 0.9])
    call = np.array([False, True, True, True])
    mark = black76_price(f, k, t, vol, call)
    return pd.DataFrame(
        {
            "forward": f,
            "strike": k,
            "t": t,
            "is_call": pd.array(call, dtype="boolean"),
            "bid": mark * 0.98,
            "ask": mark * 1.02,
            "mark": mark,
            "true_vol": vol,
        },
        index=[10, 11, 12, 13],
    )


def test_usd_and_coin_premiums_give_the_same_vols() -> None:
    q = _quotes()
    usd = quote_implied_vols(q)
    coin = q.copy()
    for col in ("bid", "ask", "mark"):
        coin[col] = q[col] / q["forward"]
    from_coin = quote_implied_vols(coin, premium="coin")
    assert list(usd.columns) == [
        "bid_iv",
        "bid_iv_status",
        "ask_iv",
        "ask_iv_status",
        "mark_iv",
        "mark_iv_status",
    ]
    assert list(usd.index) == [10, 11, 12, 13]
    np.testing.assert_allclose(usd["mark_iv"], q["true_vol"], rtol=1e-12)
    np.testing.assert_allclose(from_coin["mark_iv"], usd["mark_iv"], rtol=1e-12)
    assert np.all(usd["bid_iv"] < usd["mark_iv"])
    assert np.all(usd["mark_iv"] < usd["ask_iv"])
    assert set(usd["mark_iv_status"]) == {"ok"}


def test_missing_and_invalid_quotes_get_statuses() -> None:
    q = _quotes()
    q.loc[10, "bid"] = np.nan  # no bid
    q.loc[11, "ask"] = 0.0  # OTM call at zero: no time value
    q.loc[12, "ask"] = 70_000.0  # above the forward
    q.loc[13, "is_call"] = pd.NA
    out = quote_implied_vols(q)
    assert out.loc[10, "bid_iv_status"] == "non_finite_input"
    assert out.loc[11, "ask_iv_status"] == "ill_posed"
    assert out.loc[12, "ask_iv_status"] == "above_upper_bound"
    assert out.loc[13, "mark_iv_status"] == "non_finite_input"
    assert np.isnan(out.loc[[10], "bid_iv"]).all()
    assert np.array_equal(out["mark_iv"].isna(), out["mark_iv_status"] != "ok")


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="premium must be 'usd' or 'coin'"):
        quote_implied_vols(_quotes(), premium="btc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lacks column"):
        quote_implied_vols(_quotes().drop(columns=["forward"]))


@pytest.mark.realdata
def test_real_snapshot_mark_ivs_match_deribit(snapshot_files: list[Path]) -> None:
    from volguard.data.loaders.deribit_snapshot import read_deribit_snapshot

    quotes = read_deribit_snapshot(snapshot_files[0])
    out = quote_implied_vols(quotes)
    ok = out["mark_iv_status"] == "ok"
    assert ok.mean() > 0.95
    diff = np.abs(out.loc[ok, "mark_iv"] - quotes.loc[ok, "mark_iv"])
    assert np.median(diff) < 1e-3
    # bid below ask in vol wherever both solved
    both = (out["bid_iv_status"] == "ok") & (out["ask_iv_status"] == "ok")
    assert (out.loc[both, "bid_iv"] <= out.loc[both, "ask_iv"]).all()
