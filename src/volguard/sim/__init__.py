"""Market simulator: regime-switching dynamics, Deribit-like chains and their liquidity."""
