"""Drift detectors: a reference ARL, the tuned false-alarm rates, detection after a shift."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from volguard.guard.drift import (
    ADWIN,
    CUSUM,
    DEFAULT_TARGET,
    PageHinkley,
    false_alarm_rate,
    stationary_streams,
    tune_threshold,
)

DETECTORS: dict[str, Callable[[], CUSUM | PageHinkley | ADWIN]] = {
    "cusum": CUSUM,
    "page_hinkley": PageHinkley,
    "adwin": ADWIN,
}


def test_cusum_in_control_run_length_matches_siegmund() -> None:
    # Siegmund's approximation of the one-sided CUSUM ARL (Montgomery, Introduction to
    # Statistical Quality Control, 7th ed., eq. 9.11): k = 0.5, h = 5, N(0, 1) data ->
    # ARL0 = (exp(2 * 0.5 * 6.166) - 2 * 0.5 * 6.166 - 1) / (2 * 0.25) = 938 updates.
    rate = false_alarm_rate(lambda: CUSUM(k=0.5, h=5.0), stationary_streams(400, 1000, np.inf, 7))
    assert 1 / rate == pytest.approx(938, rel=0.15)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_tuned_defaults_keep_the_false_alarm_target_on_fresh_streams(name: str) -> None:
    fresh = stationary_streams(200, 1000, dof=4.0, seed=123)  # not the tuning seed
    assert false_alarm_rate(DETECTORS[name], fresh) <= 1.5 * DEFAULT_TARGET


@pytest.mark.parametrize("name", ["cusum", "page_hinkley"])
def test_textbook_defaults_would_alarm_far_more(name: str) -> None:
    textbook = {"cusum": lambda: CUSUM(k=0.5, h=4.0), "page_hinkley": lambda: PageHinkley(0.5, 3.0)}
    streams = stationary_streams(50, 1000, dof=4.0, seed=5)
    assert false_alarm_rate(textbook[name], streams) > 5 * false_alarm_rate(
        DETECTORS[name], streams
    )


@pytest.mark.parametrize(("name", "max_median"), [("cusum", 1), ("page_hinkley", 1), ("adwin", 8)])
def test_a_six_sigma_shift_is_detected_within_a_few_updates(name: str, max_median: int) -> None:
    # the defaults are tuned on the guard's simulated calm z, where a crash is a jump of several
    # sd: CUSUM and Page-Hinkley catch such a jump at once, ADWIN needs a window of it
    delays = []
    for seed in range(40):
        calm = stationary_streams(1, 60, seed=seed)[0]
        shifted = stationary_streams(1, 40, seed=1000 + seed)[0] + 6.0
        det = DETECTORS[name]()
        for x in calm:
            det.update(x)
        for i, x in enumerate(shifted):
            det.update(x)
            if det.drift_detected:
                delays.append(i)
                break
    assert len(delays) >= 38
    assert np.median(delays) <= max_median


def test_adwin_ignores_a_drop_of_the_mean() -> None:
    det = ADWIN(delta=0.5)
    alarms = []
    for x in [3.0] * 50 + [0.0] * 50:
        det.update(x)
        alarms.append(det.drift_detected)
    assert not any(alarms)


def test_tune_threshold_returns_the_smallest_passing_threshold() -> None:
    streams = stationary_streams(50, 500, seed=9)
    h, rate = tune_threshold(lambda h: CUSUM(0.5, h), [3.0, 5.0, 7.0, 9.0], streams, 2e-3)
    assert rate <= 2e-3
    assert false_alarm_rate(lambda: CUSUM(0.5, h - 2.0), streams) > 2e-3
    with pytest.raises(ValueError, match="no threshold"):
        tune_threshold(lambda h: CUSUM(0.5, h), [0.5], streams, 1e-6)


def test_cusum_validates_and_resets() -> None:
    with pytest.raises(ValueError, match="h > 0"):
        CUSUM(k=0.5, h=0.0)
    c = CUSUM(k=0.0, h=10.0)
    c.update(3.0)
    assert c.statistic == 3.0
    c.reset()
    assert c.statistic == 0.0 and not c.drift_detected
