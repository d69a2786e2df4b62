"""Shared fixtures. Real data is read from ``VOLGUARD_DATA`` (default ``../shared/data``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests._http_server import Server

# property tests draw the same examples on every run, so a clean main stays clean on CI;
# HYPOTHESIS_PROFILE=explore draws fresh random examples to hunt for new failures
settings.register_profile("volguard", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "volguard"))

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("VOLGUARD_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder; tests that need it are skipped (with the reason) where it is absent."""
    root = data_root()
    if not (root / "deribit-svcj-snapshots").is_dir():
        pytest.skip(f"real data not found at {root} (set VOLGUARD_DATA)")
    return root


@pytest.fixture(scope="session")
def snapshot_files(shared_data: Path) -> list[Path]:
    """The 304 Deribit snapshot files, sorted by time."""
    return sorted((shared_data / "deribit-svcj-snapshots" / "snapshots").glob("*.csv.gz"))


@pytest.fixture
def server() -> Iterator[Server]:
    """A scripted HTTP server on 127.0.0.1 (``server.routes[path] = [action, ...]``)."""
    srv = Server()
    yield srv
    srv.close()
