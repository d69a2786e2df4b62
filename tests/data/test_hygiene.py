"""Hygiene rules: each reason code, their precedence, flags, and conservation of rows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from volguard.data.hygiene import HygieneRules, classify, split

F = 95_000.0
TICK_USD = 1e-4 * F  # Deribit's 0.0001 coin tick at F


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({}, None),
        ({"bid": 2_200.0}, "crossed"),
        ({"bid_iv": 0.5, "ask_iv": 0.4}, "crossed"),
        ({"forward": np.nan}, "missing_forward"),
        ({"forward": 0.0}, "missing_forward"),
        ({"t": 0.0}, "expired"),
        ({"t": -0.01}, "expired"),
        ({"strike": -5.0}, "non_positive"),
        ({"bid": -1.0}, "non_positive"),
        ({"open_interest": -1.0}, "non_positive"),
        ({"mark": np.inf}, "non_finite"),
        ({"strike": np.nan}, "missing:strike"),
        ({"is_call": None}, "missing:is_call"),
        # deep ITM call: intrinsic 15k; an ask two ticks under intrinsic is an arbitrage
        (
            {"strike": 80_000.0, "bid": 14_000.0, "ask": 15_000.0 - 2 * TICK_USD, "mark": 15_100.0},
            "below_intrinsic",
        ),
        # ... but within one tick it is rounding, not an error
        (
            {
                "strike": 80_000.0,
                "bid": 14_000.0,
                "ask": 15_000.0 - 0.5 * TICK_USD,
                "mark": 15_100.0,
            },
            None,
        ),
        (
            {
                "is_call": False,
                "strike": 50_000.0,
                "bid": 50_000.0 + 2 * TICK_USD,
                "ask": 50_100.0 + 2 * TICK_USD,
                "mark": 49_000.0,
            },
            "above_upper_bound",
        ),
        ({"bid": F + 2 * TICK_USD, "ask": F + 3 * TICK_USD}, "above_upper_bound"),
    ],
)
def test_each_rule_gives_its_reason(
    make_rows: Callable[..., pd.DataFrame], override: dict[str, object], reason: str | None
) -> None:
    out = classify(make_rows(override))
    got = out["reason"].iloc[0]
    assert (got if pd.notna(got) else None) == reason


def test_linear_options_use_the_usd_tick(make_rows: Callable[..., pd.DataFrame]) -> None:
    itm = {"settlement": "linear", "strike": 80_000.0, "bid": 14_000.0, "mark": 15_100.0}
    out = classify(make_rows({**itm, "ask": 15_000.0 - 0.02}, {**itm, "ask": 15_000.0 - 0.005}))
    assert out["reason"].tolist()[0] == "below_intrinsic"
    assert pd.isna(out["reason"].iloc[1])
    wide = classify(make_rows({**itm, "ask": 15_000.0 - 0.02}), HygieneRules(tick_usd=0.05))
    assert pd.isna(wide["reason"].iloc[0])


def test_first_reason_wins_in_the_documented_order(make_rows: Callable[..., pd.DataFrame]) -> None:
    # expired AND crossed AND negative strike: expired comes first
    out = classify(make_rows({"t": 0.0, "bid": 3_000.0, "strike": -1.0}))
    assert out["reason"].iloc[0] == "expired"
    # a loader's parse reason is never overwritten
    out = classify(make_rows({"reason": "unparseable:strike", "strike": np.nan, "bid": 3_000.0}))
    assert out["reason"].iloc[0] == "unparseable:strike"


def test_duplicates_keep_the_last(make_rows: Callable[..., pd.DataFrame]) -> None:
    same = {"instrument": "BTC-27FEB26-100000-C"}
    out = classify(make_rows(same, {"instrument": "BTC-27FEB26-90000-C"}, {**same, "bid": 2_050.0}))
    assert out["reason"].isna().tolist() == [False, True, True]
    assert out["reason"].iloc[0] == "duplicate"


def test_one_sided_quotes_stay_flagged(make_rows: Callable[..., pd.DataFrame]) -> None:
    out = classify(
        make_rows(
            {"bid": np.nan},
            {"ask": np.nan},
            {"bid": np.nan, "ask": np.nan},
            {"bid": np.nan, "bid_iv": 0.44},  # an IV-only bid (Tardis smiles) is still a bid
            {"strike": 80_000.0, "bid": 14_900.0, "ask": 15_200.0, "mark": 15_000.0 - 3 * TICK_USD},
        )
    )
    assert out["reason"].isna().all()
    assert out["flags"].tolist() == [
        "no_bid",
        "no_ask",
        "no_bid,no_ask",
        "",
        "mark_below_intrinsic",
    ]


def test_split_conserves_rows(make_rows: Callable[..., pd.DataFrame]) -> None:
    out = classify(make_rows({}, {"bid": 9e9, "ask": 9.1e9}, {"t": -1.0}, {}))
    clean, quarantine = split(out)
    assert (len(clean), len(quarantine)) == (2, 2)
    assert "reason" not in clean.columns
    assert sorted(quarantine["reason"]) == ["above_upper_bound", "expired"]


def test_input_is_not_mutated(make_rows: Callable[..., pd.DataFrame]) -> None:
    frame = make_rows({"bid": 3_000.0})
    before = frame.copy()
    classify(frame)
    pd.testing.assert_frame_equal(frame, before)
