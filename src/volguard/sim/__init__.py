"""Market simulation: regime simulator, liquidity model, stress and adversarial scenarios."""
