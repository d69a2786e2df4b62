"""Drift detectors on a standardized residual stream, and the tuning of their thresholds.

Every detector follows river's protocol: ``update(x)`` returns None, ``drift_detected`` is True
right after the update that raised an alarm, ``reset()`` starts over. They watch one number per
update, for instance the engine's standardized error rate; a study can feed them any stream.

Thresholds are not textbook defaults (river #1914: CUSUM with k = 0.5, h = 5 alarms on 88 % of
stable streams). :func:`tune_threshold` picks the smallest threshold whose false-alarm rate on
stationary streams is at most a target. The module defaults (``*_DEFAULTS``) are tuned at
``DEFAULT_TARGET`` on the streams the guard actually watches: its standardized error rate ``z``
on simulated calm markets (40 runs of 14 days, a snapshot every 2 h, seeds 100-139;
:func:`~volguard.guard.shift_study.calm_z_streams`), with the shape parameter (CUSUM ``k``,
Page-Hinkley ``delta``) that detected the most simulated crashes of the tuning seeds 100-119
(``examples/guard_tune_detectors.py``; docs/guard.md lists the figures). Those streams are
heavier-tailed than Gaussian and the simulated crash shows as a jump of a few sd, so the tuned
settings are close to a one-step threshold (CUSUM ``k = 3, h = 2.5`` alarms at ``z > 5.5``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from river import drift as river_drift

from volguard._typing import FloatArray

DEFAULT_TARGET = 1e-3
"""Default false-alarm target: one alarm per 1,000 updates of a stationary stream."""
CUSUM_DEFAULTS = {"k": 3.0, "h": 2.5}
PAGE_HINKLEY_DEFAULTS = {"delta": 2.5, "threshold": 3.0}
ADWIN_DEFAULTS = {"delta": 0.0056}


class Detector(Protocol):
    """What the guard needs from a drift detector (river's ``DriftDetector`` satisfies it)."""

    @property
    def drift_detected(self) -> bool: ...

    def update(self, x: float) -> None: ...


class CUSUM:
    """One-sided (upward) tabular CUSUM of a standardized stream.

    ``S_t = max(0, S_{t-1} + x_t - k)``; an alarm when ``S_t > h``, after which ``S`` restarts at
    0. ``k`` is half the shift (in standard deviations) the chart is tuned to catch fastest.

    Parameters
    ----------
    k : float
        Reference value (allowance), standard deviations.
    h : float
        Decision interval, standard deviations.

    References
    ----------
    Page, E. S. (1954). Continuous inspection schemes. Biometrika 41(1/2), 100-115.
    doi:10.1093/biomet/41.1-2.100. Montgomery, D. C., Introduction to Statistical Quality
    Control, 7th ed., section 9.1.

    Examples
    --------
    >>> c = CUSUM(k=0.5, h=4.0)
    >>> for x in [0.1, -0.3, 3.0, 2.5]:
    ...     c.update(x)
    >>> c.drift_detected, c.statistic
    (True, 0.0)
    """

    def __init__(self, k: float = CUSUM_DEFAULTS["k"], h: float = CUSUM_DEFAULTS["h"]) -> None:
        if k < 0 or h <= 0:
            raise ValueError(f"k must be >= 0 and h > 0; got k={k!r}, h={h!r}")
        self.k = k
        self.h = h
        self.reset()

    def reset(self) -> None:
        """Clear the statistic and the alarm."""
        self._s = 0.0
        self._drift = False

    def update(self, x: float) -> None:
        """Add one observation."""
        self._s = max(0.0, self._s + float(x) - self.k)
        self._drift = self._s > self.h
        if self._drift:
            self._s = 0.0

    @property
    def statistic(self) -> float:
        """The current cumulative sum ``S_t``."""
        return self._s

    @property
    def drift_detected(self) -> bool:
        """True right after the update that crossed ``h``."""
        return self._drift


class PageHinkley:
    """Upward Page-Hinkley test (river's, with ``mode='up'`` and no warm-up wait).

    Parameters
    ----------
    delta : float
        Magnitude of change tolerated, standard deviations.
    threshold : float
        Alarm level of the cumulative deviation, standard deviations.

    References
    ----------
    Page (1954), as in :class:`CUSUM`; Hinkley, D. V. (1971). Inference about the change-point
    from cumulative sum tests. Biometrika 58(3), 509-523. doi:10.1093/biomet/58.3.509.

    Examples
    --------
    >>> ph = PageHinkley(delta=0.5, threshold=4.0)
    >>> for x in [0.0, 0.1, -0.1, 0.0, 8.0]:
    ...     ph.update(x)
    >>> ph.drift_detected
    True
    """

    def __init__(
        self,
        delta: float = PAGE_HINKLEY_DEFAULTS["delta"],
        threshold: float = PAGE_HINKLEY_DEFAULTS["threshold"],
    ) -> None:
        self.delta = delta
        self.threshold = threshold
        self.reset()

    def reset(self) -> None:
        """Start a fresh test."""
        self._ph = river_drift.PageHinkley(
            min_instances=1, delta=self.delta, threshold=self.threshold, alpha=1.0, mode="up"
        )

    def update(self, x: float) -> None:
        """Add one observation."""
        self._ph.update(float(x))  # type: ignore[no-untyped-call]

    @property
    def drift_detected(self) -> bool:
        """True right after the update that raised the alarm."""
        return bool(self._ph.drift_detected)


class ADWIN:
    """ADWIN (river's) that reports only upward changes of the windowed mean.

    A change to a lower mean (the error settling after a stress) is not an alarm for the guard;
    the window is still cut, as ADWIN does. ``clock=1`` checks for a cut at every update.

    References
    ----------
    Bifet, A. and Gavaldà, R. (2007). Learning from time-changing data with adaptive
    windowing. SIAM SDM 2007, 443-448. doi:10.1137/1.9781611972771.42.

    Examples
    --------
    >>> det = ADWIN(delta=0.01)
    >>> alarms = []
    >>> for x in [0.0] * 40 + [4.0] * 10:
    ...     det.update(x)
    ...     alarms.append(det.drift_detected)
    >>> any(alarms)
    True
    """

    def __init__(self, delta: float = ADWIN_DEFAULTS["delta"]) -> None:
        self.delta = delta
        self.reset()

    def reset(self) -> None:
        """Start with an empty window."""
        self._adwin = river_drift.ADWIN(  # type: ignore[no-untyped-call]
            delta=self.delta, clock=1, grace_period=5
        )
        self._drift = False

    def update(self, x: float) -> None:
        """Add one observation."""
        before = float(self._adwin.estimation)
        self._adwin.update(float(x))  # type: ignore[no-untyped-call]
        self._drift = bool(self._adwin.drift_detected) and self._adwin.estimation > before

    @property
    def drift_detected(self) -> bool:
        """True right after an update that cut the window to a higher mean."""
        return self._drift


def stationary_streams(
    n_streams: int = 200, length: int = 1000, dof: float = 4.0, seed: int = 0
) -> FloatArray:
    """Stationary standardized streams, shape ``(n_streams, length)``: Student-t(``dof``)
    scaled to unit variance (Gaussian when ``dof`` is infinite).

    Examples
    --------
    >>> stationary_streams(3, 5).shape
    (3, 5)
    """
    rng = np.random.default_rng(seed)
    if np.isinf(dof):
        out: FloatArray = rng.standard_normal((n_streams, length))
        return out
    scaled: FloatArray = rng.standard_t(dof, (n_streams, length)) * np.sqrt((dof - 2) / dof)
    return scaled


def false_alarm_rate(
    make: Callable[[], Detector], streams: FloatArray | Sequence[FloatArray]
) -> float:
    """Alarms per update of fresh detectors from ``make`` run over each row of ``streams``
    (a 2-D array, or 1-D streams of any lengths).

    Examples
    --------
    >>> false_alarm_rate(lambda: CUSUM(k=0.5, h=5.0), stationary_streams(20, 500, dof=np.inf))
    0.0006
    """
    alarms = updates = 0
    for row in streams:
        det = make()
        for x in row:
            det.update(float(x))
            alarms += det.drift_detected
        updates += len(row)
    return float(alarms / updates)


def detection_delays(
    make: Callable[[], Detector], streams: Sequence[FloatArray], shifts: Sequence[int]
) -> FloatArray:
    """Per stream, the updates from index ``shift`` (the first of the new regime) to the first
    alarm at or after it, of a fresh detector run from the stream's start (NaN: never).

    Examples
    --------
    >>> z = np.r_[np.zeros(30), np.full(10, 4.0)]
    >>> detection_delays(lambda: CUSUM(k=0.5, h=6.5), [z], [30]).tolist()
    [1.0]
    """
    out = np.full(len(streams), np.nan)
    for i, (row, shift) in enumerate(zip(streams, shifts, strict=True)):
        det = make()
        for j, x in enumerate(row):
            det.update(float(x))
            if j >= shift and det.drift_detected:
                out[i] = j - shift
                break
    return out


def tune_threshold(
    make: Callable[[float], Detector],
    grid: Sequence[float],
    streams: FloatArray | Sequence[FloatArray],
    target: float = DEFAULT_TARGET,
) -> tuple[float, float]:
    """The smallest threshold in ascending ``grid`` whose false-alarm rate is at most ``target``.

    Returns ``(threshold, measured rate)``. The rate falls as the threshold grows, so the first
    grid point that meets the target is the most sensitive detector that keeps the promise.

    Raises
    ------
    ValueError
        If no threshold in ``grid`` meets the target.

    Examples
    --------
    >>> streams = stationary_streams(20, 500, dof=np.inf)
    >>> tune_threshold(lambda h: CUSUM(k=0.5, h=h), [4.0, 6.0, 8.0], streams, target=1e-3)
    (6.0, 0.0002)
    """
    for threshold in sorted(grid):
        rate = false_alarm_rate(functools.partial(make, threshold), streams)
        if rate <= target:
            return float(threshold), rate
    raise ValueError(f"no threshold in {list(grid)} keeps the false-alarm rate <= {target}")
