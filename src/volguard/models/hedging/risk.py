"""Terminal P&L of a hedge and the convex risk measures that judge it.

All three measures are convex and translation-equivariant on the loss ``L = -X`` (the P&L
``X`` in basis points of the initial notional):

* CVaR at level ``alpha`` (expected shortfall): the mean of the worst ``1 - alpha`` share of
  ``X``, as a loss; Rockafellar and Uryasev (2000) write it ``min_w w + E[(L - w)^+] / (1 -
  alpha)``, the form used for training;
* entropic risk ``(1 / lam) ln E exp(-lam X)`` (exponential utility indifference, Buehler et
  al. 2019, section 4);
* mean-variance ``-E X + (a / 2) Var X`` (not monotone, but the classical criterion).

References
----------
.. [1] Rockafellar, R. T. and Uryasev, S. (2000). Optimization of conditional value-at-risk.
   Journal of Risk 2(3), 21-41. doi:10.21314/JOR.2000.038
.. [2] Buehler, H., Gonon, L., Teichmann, J. and Wood, B. (2019). Deep hedging. Quantitative
   Finance 19(8), 1271-1291. doi:10.1080/14697688.2019.1571683
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from volguard._typing import FloatArray
from volguard.models.hedging.paths import HedgePaths

RiskMeasure = Literal["cvar", "entropic", "mean-variance"]
RISK_MEASURES: tuple[str, ...] = ("cvar", "entropic", "mean-variance")
BP = 1e4
"""P&L, costs and risk are reported in basis points of the initial notional ``F_0``."""


@dataclass(frozen=True)
class HedgeOutcome:
    """What a hedging strategy did on a path set.

    Attributes
    ----------
    positions : ndarray, shape (n, m)
        Futures held over each step.
    pnl : ndarray, shape (n,)
        Terminal P&L net of costs, bp of ``F_0``.
    cost : ndarray, shape (n,)
        Transaction costs paid, bp of ``F_0``.
    turnover : ndarray, shape (n,)
        ``sum_i |delta_i - delta_{i-1}|`` (units of underlying per unit of option).
    """

    positions: FloatArray
    pnl: FloatArray
    cost: FloatArray
    turnover: FloatArray


def outcome(paths: HedgePaths, positions: FloatArray, cost_rate: float) -> HedgeOutcome:
    """Terminal P&L of holding ``positions`` (shape (n, m)) on ``paths`` (module docstring of
    :mod:`volguard.models.hedging.paths`), with proportional cost ``cost_rate``."""
    f = paths.forward
    trades = np.diff(positions, axis=1, prepend=0.0)
    turnover = np.abs(trades).sum(axis=1)
    cost = cost_rate * (np.abs(trades) * f[:, :-1]).sum(axis=1)
    gains = (positions * np.diff(f, axis=1)).sum(axis=1)
    pnl = paths.premium - paths.payoff + gains - cost
    f0 = f[:, 0]
    return HedgeOutcome(positions, BP * pnl / f0, BP * cost / f0, turnover)


def cvar(pnl: FloatArray, alpha: float = 0.95) -> float:
    """Mean of the worst ``1 - alpha`` share of ``pnl`` (at least one path), as a loss.

    Examples
    --------
    >>> cvar(np.arange(1.0, 101.0))  # the worst 5 of 100: 1..5
    -3.0
    """
    # round first: (1 - 0.95) * 100 is 5.000000000000004 in floating point
    count = max(1, int(np.ceil(round((1 - alpha) * pnl.size, 9))))
    worst = np.sort(np.asarray(pnl, dtype=float))[:count]
    return float(-worst.mean())


def entropic(pnl: FloatArray, lam: float) -> float:
    """``(1 / lam) ln E exp(-lam pnl)``, computed stably (log-sum-exp).

    Examples
    --------
    >>> entropic(np.array([2.0, 2.0]), 0.5)  # a sure P&L is its own risk, negated
    -2.0
    >>> entropic(np.array([-1.0, 1.0]), 1.0) > 0  # risk aversion: above -E X = 0
    True
    """
    z = -lam * np.asarray(pnl, dtype=float)
    top = z.max()
    return float((top + np.log(np.mean(np.exp(z - top)))) / lam)


def mean_variance(pnl: FloatArray, aversion: float) -> float:
    """``-E pnl + (aversion / 2) Var pnl``."""
    x = np.asarray(pnl, dtype=float)
    return float(-x.mean() + 0.5 * aversion * x.var())


def risk(pnl: FloatArray, measure: RiskMeasure, level: float) -> float:
    """The measure named ``measure`` with its parameter ``level`` (CVaR level ``alpha``,
    entropic ``lam`` or mean-variance aversion ``a``).

    Raises
    ------
    ValueError
        If ``measure`` is not one of :data:`RISK_MEASURES`.
    """
    if measure == "cvar":
        return cvar(pnl, level)
    if measure == "entropic":
        return entropic(pnl, level)
    if measure == "mean-variance":
        return mean_variance(pnl, level)
    raise ValueError(f"risk measure must be one of {RISK_MEASURES}, got {measure!r}")


def check_level(measure: str, level: float) -> None:
    """Validate a risk measure and its parameter (``ValueError`` naming both)."""
    if measure not in RISK_MEASURES:
        raise ValueError(f"risk measure must be one of {RISK_MEASURES}, got {measure!r}")
    ok = 0 < level < 1 if measure == "cvar" else level > 0
    if not ok:
        rule = "in (0, 1)" if measure == "cvar" else "> 0"
        raise ValueError(f"risk level of {measure!r} must be {rule}, got {level!r}")
