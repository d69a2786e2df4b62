"""The simulated shift study: delays are counted from the known shift, false alarms before it."""

from __future__ import annotations

import numpy as np

from volguard.guard.shift_study import SIGNALS, shift_run, shift_study


def test_a_crash_is_detected_after_the_shift_and_the_counts_add_up() -> None:
    run = shift_run(3, calm_days=4.0, after_days=1.5, freq="3h")
    assert list(run["signal"]) == list(SIGNALS)
    assert (run["scored_before"] == run["scored_before"].iloc[0]).all()
    assert (run["false_alarms"] <= run["scored_before"]).all()
    detected = run.set_index("signal")["delay_updates"]
    assert np.isfinite(detected["page_hinkley"]) and detected["page_hinkley"] >= 0
    _, summary = shift_study([3], calm_days=4.0, after_days=1.5, freq="3h")
    row = summary.set_index("signal").loc["cusum"]
    assert row["false_alarms_per_10k"] == (
        run.set_index("signal").loc["cusum", "false_alarms"] / row["scored_before"] * 1e4
    )
