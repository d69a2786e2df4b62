"""Rendering of results to files (JSON, Markdown, later HTML); no computation here."""

from volguard.report.files import write_atomic

__all__ = ["write_atomic"]
