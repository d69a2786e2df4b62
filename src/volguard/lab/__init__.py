"""The generalization lab: regimes, splits, metrics, hedging backtests and the study runner."""
