"""Hedging policies over path arrays: deep-hedging networks, a gated ensemble and baselines.

Inference is NumPy only; :func:`train_policy` needs PyTorch (``pip install 'volguard[ml]'``).
"""

from volguard.models.hedging.ensemble import BLEND_RULES, FALLBACKS, GatedEnsemble, GatedRollout
from volguard.models.hedging.paths import HedgePaths
from volguard.models.hedging.policy import FEATURES, HedgePolicy, train_policy
from volguard.models.hedging.risk import (
    RISK_MEASURES,
    HedgeOutcome,
    cvar,
    entropic,
    mean_variance,
    outcome,
    risk,
)
from volguard.models.hedging.strategies import (
    BlackDelta,
    EngineDelta,
    MinVarianceHedge,
    NoHedge,
    Strategy,
    WhalleyWilmott,
)

__all__ = [
    "BLEND_RULES",
    "FALLBACKS",
    "FEATURES",
    "RISK_MEASURES",
    "BlackDelta",
    "EngineDelta",
    "GatedEnsemble",
    "GatedRollout",
    "HedgeOutcome",
    "HedgePaths",
    "HedgePolicy",
    "MinVarianceHedge",
    "NoHedge",
    "Strategy",
    "WhalleyWilmott",
    "cvar",
    "entropic",
    "mean_variance",
    "outcome",
    "risk",
    "train_policy",
]
