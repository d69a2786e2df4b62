"""The guard: a streaming loop that scores the engine against incoming quotes, detects drift
and regime shifts, and recalibrates, widens or falls back, logging every decision."""
