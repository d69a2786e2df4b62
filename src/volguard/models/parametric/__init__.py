"""First-principles engines: Black-76 flat-ATM, SVI, ... (SSVI, SABR, Heston, Bates to come)."""
