"""The one conformal core: the finite-sample quantile rule and the adaptive level update.

Used by the lab's split and adaptive conformal intervals (:mod:`volguard.lab.uncertainty`),
the guard's streaming intervals (:class:`volguard.guard.conformal.AdaptiveConformal`) and the
CV+ engine (:class:`volguard.models.conformal.ConformalSurface`), so a coverage measured in the
lab holds for the intervals the guard and the engines give.

References
----------
Vovk, V., Gammerman, A. and Shafer, G. (2005). *Algorithmic Learning in a Random World*.
Springer. doi:10.1007/b106715.

Lei, J., G'Sell, M., Rinaldo, A., Tibshirani, R. J. and Wasserman, L. (2018). Distribution-free
predictive inference for regression. *JASA* 113(523), 1094-1111. arXiv:1604.04173.

Gibbs, I. and Candès, E. (2021). Adaptive conformal inference under distribution shift.
NeurIPS 34. arXiv:2106.00170.
"""

from __future__ import annotations

import math

import numpy as np

from volguard._typing import FloatArray


def conformal_rank(n: int, level: float) -> int:
    """The 1-based rank ``k = ceil((n + 1) * level)`` of the conformal order statistic among
    ``n`` scores (``k > n``: too few scores for the level; ``k <= 0``: level <= 0).

    Examples
    --------
    >>> conformal_rank(9, 0.9), conformal_rank(8, 0.9), conformal_rank(99, 0.95)
    (9, 9, 95)
    """
    # round away the float noise of e.g. 10 * 0.9 before the ceiling
    return math.ceil(round((n + 1) * level, 9))


def conformal_quantile(scores: FloatArray, level: float) -> float:
    """The split-conformal quantile of ``scores`` at ``level``.

    Parameters
    ----------
    scores : array, shape (n,)
        Nonconformity scores of the calibration quotes; non-finite entries are dropped.
    level : float
        Target coverage ``1 - alpha``; any real (ACI's adapted level may leave [0, 1]).

    Returns
    -------
    float
        ``s_(k)``, the ``k``-th smallest score with ``k = ceil((n + 1) * level)``; ``inf`` when
        ``k > n`` (too few scores for the level: the interval is the whole line), ``0.0`` when
        ``k <= 0`` (level <= 0: the point prediction), NaN when there are no scores.

    Notes
    -----
    If the ``n`` calibration scores and a new score are exchangeable, the new score is at most
    ``s_(k)`` with probability at least ``level`` (Vovk et al. 2005; Lei et al. 2018, Thm 2.1):
    the empirical quantile at ``ceil((n + 1)(1 - alpha)) / n``, not at ``1 - alpha``. The
    ``level <= 0`` case returns zero width where Gibbs and Candès (2021) use the empty set.

    Examples
    --------
    >>> s = np.arange(1.0, 10.0)  # n = 9
    >>> conformal_quantile(s, 0.9), conformal_quantile(s, 0.5), conformal_quantile(s[:8], 0.9)
    (9.0, 5.0, inf)
    """
    s = np.asarray(scores, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float("nan")
    k = conformal_rank(s.size, level)
    if k > s.size:
        return float("inf")
    if k <= 0:
        return 0.0
    return float(np.partition(s, k - 1)[k - 1])


def aci_update(alpha_t: float, alpha: float, gamma: float, miss_rate: float) -> float:
    """One step of adaptive conformal inference (Gibbs and Candès 2021, eq. 2).

    Parameters
    ----------
    alpha_t : float
        The miscoverage level in force for the step just scored.
    alpha : float
        The target miscoverage, ``1 - level``.
    gamma : float
        Step size (> 0).
    miss_rate : float
        ``err_t``: share of the step's quotes outside their interval, in [0, 1].

    Returns
    -------
    float
        ``alpha_{t+1} = alpha_t + gamma * (alpha - err_t)``, not clipped: ``alpha_{t+1} <= 0``
        gives the whole line next step and ``>= 1`` a zero-width interval
        (:func:`conformal_quantile`).

    Notes
    -----
    Over ``T`` steps the average miss rate satisfies
    ``|mean(err) - alpha| <= (max(alpha_1, 1 - alpha_1) + gamma) / (gamma T)`` whatever the
    data (their Proposition 4.1): misses lower ``alpha_t`` (wider intervals), hits raise it.

    Examples
    --------
    >>> round(aci_update(0.1, 0.1, 0.05, 0.5), 3)  # half the quotes missed: widen
    0.08
    """
    return alpha_t + gamma * (alpha - miss_rate)
