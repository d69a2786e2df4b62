"""The simulated shift study: delays are counted from the known shift, false alarms before it."""

from __future__ import annotations

import numpy as np
import pytest

from volguard.guard.shift_study import SIGNALS, aci_recovery, guard_trace, shift_run, shift_study

RUN = {"calm_days": 4.0, "after_days": 1.5, "freq": "3h"}


def test_the_counts_follow_the_trace_of_the_guard() -> None:
    trace, shift_ts = guard_trace(3, **RUN)
    scored = trace[np.isfinite(trace["z"].to_numpy(dtype=float))]
    after = (scored["ts"] >= shift_ts).to_numpy()
    run = shift_run(3, **RUN).set_index("signal")
    assert list(run.index) == list(SIGNALS)
    assert (run["scored_before"] == int((~after).sum())).all()
    for signal in SIGNALS:
        fired = scored["left_normal" if signal == "policy" else signal].to_numpy(dtype=bool)
        assert run.loc[signal, "false_alarms"] == int((fired & ~after).sum())
        hits = np.flatnonzero(fired & after)
        delay = run.loc[signal, "delay_updates"]
        if hits.size:
            assert delay == hits[0] - np.argmax(after)
        else:
            assert np.isnan(delay)
    miss = scored["aci_miss"].astype(float).to_numpy()
    assert run.loc["cusum", "aci_coverage_before"] == pytest.approx(1 - np.nanmean(miss[~after]))
    assert run.loc["cusum", "aci_recovery_updates"] == aci_recovery(miss[after])
    _, summary = shift_study([3], **RUN)
    row = summary.set_index("signal").loc["cusum"]
    assert (
        row["false_alarms_per_10k"] == run.loc["cusum", "false_alarms"] / row["scored_before"] * 1e4
    )


def test_aci_recovery_counts_updates_to_a_window_back_near_nominal() -> None:
    assert aci_recovery(np.r_[[0.5] * 5, [0.1] * 20]) == 15.0
    assert aci_recovery(np.full(30, 0.1)) == 10.0  # never left: the first full window
    assert np.isnan(aci_recovery(np.full(30, 0.4)))
