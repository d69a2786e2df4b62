"""Online regime probability: a Gaussian hidden Markov model filtered forward on snapshot features.

The model is fitted offline (:func:`fit_regime_hmm`, Baum-Welch in hmmlearn); online,
:class:`RegimeFilter` runs the forward recursion one observation at a time
(``p_t ∝ N(x_t | state) * (p_{t-1} @ A)``), so the probability at ``t`` uses data up to ``t`` only.

The default model (:data:`DVOL_MODEL`) has one feature, the change of the 30-day at-the-money
implied vol in vol points per square root of a day (:func:`volguard.market.smile.atm_vol` gives the
level from a snapshot). It was fitted with :func:`fit_regime_hmm` (2 states, seed 0) on the daily
changes of Deribit's BTC DVOL index, 2022-11-06 to 2025-11-12 (1,101 changes, ``VOLGUARD_DATA``
``deribit-dvol-daily``), which ends before the replayed 2026 data: calm state sd 1.81, stress state
sd 6.85 vol points per sqrt(day); a calm day is followed by a stress day with probability 0.019.
``examples/fit_regime_model.py`` reproduces it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from volguard._typing import FloatArray
from volguard.market.smile import atm_vol


@dataclass(frozen=True)
class RegimeModel:
    """A Gaussian HMM: ``means`` (states, features), ``covars`` (states, features, features),
    ``transmat`` (states, states), ``startprob`` (states,); states ordered calm to stressed
    (by the determinant of their covariance)."""

    means: FloatArray
    covars: FloatArray
    transmat: FloatArray
    startprob: FloatArray

    @property
    def n_states(self) -> int:
        return int(self.means.shape[0])

    def log_likelihoods(self, x: FloatArray) -> FloatArray:
        """Log density of each observation (rows of ``x``) under each state, (obs, states)."""
        return np.array(
            [
                [_log_normal(row, self.means[i], self.covars[i]) for i in range(self.n_states)]
                for row in np.atleast_2d(x)
            ]
        )

    def decode(self, x: FloatArray) -> np.ndarray:
        """The most likely state path of ``x`` (observations, features): Viterbi (Rabiner
        1989, eq. 105), offline, on the whole sample; :class:`RegimeFilter` is the online,
        causal reading of the same model.

        Rabiner, L. R. (1989). A tutorial on hidden Markov models and selected applications in
        speech recognition. *Proc. IEEE* 77(2), 257-286. doi:10.1109/5.18626.
        """
        log_b = self.log_likelihoods(x)
        with np.errstate(divide="ignore"):
            log_a = np.log(self.transmat)
            delta = np.log(self.startprob) + log_b[0]
        back = np.zeros(log_b.shape, dtype=int)
        for i in range(1, len(log_b)):
            scores = delta[:, None] + log_a
            back[i] = np.argmax(scores, axis=0)
            delta = scores[back[i], np.arange(self.n_states)] + log_b[i]
        path = np.empty(len(log_b), dtype=int)
        path[-1] = int(np.argmax(delta))
        for i in range(len(log_b) - 1, 0, -1):
            path[i - 1] = back[i, path[i]]
        return path


DVOL_MODEL = RegimeModel(
    means=np.array([[-0.0974], [0.752]]),
    covars=np.array([[[3.2846]], [[46.9206]]]),
    transmat=np.array([[0.9808, 0.0192], [0.1775, 0.8225]]),
    startprob=np.array([1.0, 0.0]),
)
"""Two states fitted on BTC DVOL daily changes 2022-11..2025-11 (see the module docstring)."""


def fit_regime_hmm(
    x: FloatArray, n_states: int = 2, seed: int = 0, order_by: int | None = None
) -> RegimeModel:
    """Fit a Gaussian HMM with full covariances to ``x`` (observations, features) offline
    (hmmlearn's Baum-Welch, 200 iterations, ``random_state=seed``).

    States are ordered calm to stressed: by the determinant of their covariance, or, with
    ``order_by``, by their mean of that feature column.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.r_[rng.normal(0, 1, 300), rng.normal(0, 5, 100), rng.normal(0, 1, 300)]
    >>> model = fit_regime_hmm(x[:, None], seed=0)
    >>> np.sqrt(model.covars.ravel()).round(0).tolist()
    [1.0, 5.0]
    >>> path = model.decode(x[:, None])  # the calm, wild, calm thirds
    >>> [round(float(path[s].mean()), 2) for s in (slice(300), slice(300, 400), slice(400, None))]
    [0.0, 1.0, 0.0]
    """
    from hmmlearn.hmm import GaussianHMM  # fitting is offline; the online filter needs NumPy only

    hmm = GaussianHMM(n_states, covariance_type="full", n_iter=200, random_state=seed).fit(x)
    key = [np.linalg.det(c) for c in hmm.covars_] if order_by is None else hmm.means_[:, order_by]
    order = np.argsort(key)
    return RegimeModel(
        means=hmm.means_[order],
        covars=hmm.covars_[order],
        transmat=hmm.transmat_[np.ix_(order, order)],
        startprob=hmm.startprob_[order],
    )


class RegimeFilter:
    """Forward filter of a :class:`RegimeModel`: the probability of each state given the past.

    The start probabilities are those of the first observation's state (hmmlearn's
    convention); each later update first moves the chain one step.

    ``update(x)`` takes one feature vector; a non-finite ``x`` only propagates the chain (the
    regime is not observed, the probability drifts towards the stationary mix).

    Examples
    --------
    >>> f = RegimeFilter()
    >>> for dv in [0.5, -1.0, 0.8, 5.0]:
    ...     f.update(np.array([dv]))
    >>> round(f.stress_probability, 2)
    0.23
    """

    def __init__(self, model: RegimeModel = DVOL_MODEL) -> None:
        self.model = model
        self.reset()

    def reset(self) -> None:
        """Back to the model's start probabilities."""
        self._p = np.asarray(self.model.startprob, dtype=float).copy()
        self._started = False

    def update(self, x: FloatArray) -> None:
        """Filter one observation (features,)."""
        m = self.model
        prior = self._p @ m.transmat if self._started else self._p  # start probs: first state
        self._started = True
        x = np.atleast_1d(np.asarray(x, dtype=float))
        if not np.isfinite(x).all():
            self._p = prior
            return
        log_like = np.array([_log_normal(x, m.means[i], m.covars[i]) for i in range(m.n_states)])
        post = prior * np.exp(log_like - log_like.max())
        self._p = post / post.sum()

    @property
    def probabilities(self) -> FloatArray:
        """Filtered probability of each state, calm first."""
        return self._p.copy()

    @property
    def stress_probability(self) -> float:
        """Probability of the most volatile (last) state."""
        return float(self._p[-1])


def _log_normal(x: FloatArray, mean: FloatArray, cov: FloatArray) -> float:
    diff = x - mean
    _, logdet = np.linalg.slogdet(cov)
    return float(-0.5 * (diff @ np.linalg.solve(cov, diff) + logdet + x.size * np.log(2 * np.pi)))


class AtmRegime:
    """A :class:`RegimeFilter` fed as the guard feeds it: at each snapshot, the change of the 30-day
    at-the-money vol (:func:`volguard.market.smile.atm_vol`, vol points) since the last
    snapshot that had one, per square root of a day (at least an hour). A snapshot without an
    at-the-money vol (NaN) only moves the chain on.

    Examples
    --------
    >>> regime = AtmRegime()
    >>> ts = pd.date_range("2026-01-01", periods=4, freq="D", tz="UTC")
    >>> [round(regime.update(t, v), 2) for t, v in zip(ts, [45.0, 45.5, float("nan"), 60.0])]
    [nan, 0.5, nan, 10.25]
    >>> regime.stress_probability > 0.9
    True
    """

    def __init__(self, model: RegimeModel = DVOL_MODEL) -> None:
        self.filter = RegimeFilter(model)
        self._last: tuple[pd.Timestamp, float] | None = None

    def update(self, ts: pd.Timestamp, atm: float) -> float:
        """Filter the snapshot at ``ts`` with 30-day at-the-money vol ``atm`` (vol points, NaN
        if none); returns the change fed to the filter (NaN when there is none)."""
        change = math.nan
        if self._last is not None and math.isfinite(atm):
            days = (ts - self._last[0]).total_seconds() / 86_400
            change = (atm - self._last[1]) / math.sqrt(max(days, 1.0 / 24.0))
        if math.isfinite(atm):
            self._last = (ts, atm)
        self.filter.update(np.array([change]))
        return change

    @property
    def stress_probability(self) -> float:
        """Probability of the stress state given the snapshots so far."""
        return self.filter.stress_probability


def stress_probability(
    observed: pd.DataFrame, model: RegimeModel = DVOL_MODEL
) -> dict[pd.Timestamp, float]:
    """The guard's stress probability at each snapshot time ``ts`` of ``observed``, from the
    rows of that ``ts`` (``t``, ``k``, ``mid_iv``: the snapshot's observed quotes) and the
    earlier ones, fed through :class:`AtmRegime` as the guard's runtime feeds it. Pass the
    whole snapshots' quotes, not a subset chosen with hindsight (such as options still quoted
    at the next snapshot). It gives the ``regime_prob`` of
    :func:`volguard.lab.greeks.causal_deltas`.
    """
    regime, out = AtmRegime(model), {}
    for _, rows in observed.groupby("ts", sort=True):
        ts = rows["ts"].iloc[0]
        regime.update(ts, 100 * atm_vol(rows["t"], rows["k"], rows["mid_iv"]))
        out[ts] = regime.stress_probability
    return out
