"""Thin typer commands over the public API; no computation here."""
