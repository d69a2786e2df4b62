"""Rendering of results to files (JSON, Markdown, HTML); no computation here."""
