"""Adaptive conformal intervals (ACI) around an engine's implied-vol predictions.

Split-conformal intervals ``y_hat ± q * scale`` whose miscoverage level adapts online
(Gibbs and Candès 2021): after each batch of predictions with realised miss rate ``m_t``,
``alpha_{t+1} = alpha_t + gamma * (alpha - m_t)``, and ``q`` is the ``1 - alpha_t`` quantile of
the recent scores ``|y - y_hat| / scale``. Misses raise the quantile, a run of hits lowers it,
so the long-run miss rate stays near ``alpha`` even when the data shift (their Proposition 4.1:
``|mean(m) - alpha| <= (max(alpha_1, 1 - alpha_1) + gamma) / (gamma * T)`` over ``T`` batches).

The guard scores each snapshot's mid vols with ``scale`` = the quote's half-spread in vol, so an
interval is a number of half-spreads wide (wide where the market is wide).

References
----------
Gibbs, I. and Candès, E. (2021). Adaptive conformal inference under distribution shift.
NeurIPS 34. arXiv:2106.00170.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from volguard._typing import FloatArray
from volguard.kernels.conformal import aci_update, conformal_quantile


class AdaptiveConformal:
    """ACI on batches of predictions.

    Parameters
    ----------
    alpha : float
        Target miscoverage (0.1: 90 % intervals).
    gamma : float
        Step size of the ``alpha_t`` update per batch.
    window : int
        Batches of past scores the quantile is taken over.

    Examples
    --------
    >>> aci = AdaptiveConformal(alpha=0.2, gamma=0.05, window=3)
    >>> aci.update(np.zeros(5), np.array([0.1, -0.2, 0.3, -0.4, 0.5]))
    >>> round(aci.half_width, 2)  # the ceil(6 * 0.8) = 5th smallest of 5 scores
    0.5
    >>> aci.update(np.zeros(2), np.array([0.1, 1.0]))  # one miss in two: alpha_t falls
    >>> aci.last_miss_rate, round(aci.alpha_t, 3)
    (0.5, 0.185)
    >>> lo, hi = aci.interval(np.array([1.0]))  # the ceil(8 * 0.815) = 7th smallest of 7
    >>> lo.round(2).tolist(), hi.round(2).tolist()
    ([0.0], [2.0])
    """

    def __init__(self, alpha: float = 0.1, gamma: float = 0.05, window: int = 5) -> None:
        if not 0 < alpha < 1 or gamma <= 0 or window < 1:
            raise ValueError(
                f"need 0 < alpha < 1, gamma > 0, window >= 1; got {alpha}, {gamma}, {window}"
            )
        self.alpha = alpha
        self.gamma = gamma
        self.window = window
        self.reset()

    def reset(self) -> None:
        """Forget the scores; ``alpha_t`` back to ``alpha``."""
        self._scores: deque[FloatArray] = deque(maxlen=self.window)
        self._alpha_t = self.alpha
        self._batches = 0
        self._covered = 0
        self._seen = 0
        self._last_miss = float("nan")
        self._width = float("inf")

    @property
    def alpha_t(self) -> float:
        """The current adapted miscoverage level."""
        return self._alpha_t

    @property
    def half_width(self) -> float:
        """The current ``q``: the conformal quantile of the recent scores at level
        ``1 - alpha_t`` (:func:`~volguard.kernels.conformal.conformal_quantile`; inf before any
        score).

        Where ``alpha_t`` is below what the recent scores can certify (the interval would be
        the whole line), the largest recent score is used instead so that quotes stay finite."""
        return self._width

    def _quantile(self) -> float:
        scores = np.concatenate(self._scores)
        q = conformal_quantile(scores, 1.0 - self._alpha_t)
        return q if math.isfinite(q) else float(scores.max())

    def interval(
        self, y_hat: FloatArray, scale: FloatArray | float = 1.0
    ) -> tuple[FloatArray, FloatArray]:
        """``(lower, upper)`` = ``y_hat ∓ half_width * scale``."""
        width = self.half_width * np.asarray(scale, dtype=float)
        return y_hat - width, y_hat + width

    def update(self, y_hat: FloatArray, y: FloatArray, scale: FloatArray | float = 1.0) -> None:
        """Score one batch against the interval in force, then adapt ``alpha_t``."""
        scores = np.abs(np.asarray(y, dtype=float) - y_hat) / np.asarray(scale, dtype=float)
        scores = scores[np.isfinite(scores)]
        if scores.size == 0:
            return
        if self._scores:
            miss = float(np.mean(scores > self.half_width))
            self._alpha_t = aci_update(self._alpha_t, self.alpha, self.gamma, miss)
            self._covered += int(np.sum(scores <= self.half_width))
            self._seen += scores.size
            self._last_miss = miss
        self._scores.append(scores)
        self._batches += 1
        self._width = self._quantile()  # computed once per batch: read many times per update

    @property
    def last_miss_rate(self) -> float:
        """Share of the last batch outside its interval (NaN before the second batch)."""
        return self._last_miss

    @property
    def coverage(self) -> float:
        """Share of all scored predictions (after the first batch) inside their interval."""
        return self._covered / self._seen if self._seen else float("nan")
