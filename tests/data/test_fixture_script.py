"""The committed fixtures and samples are exactly what the committed script generates."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures import make_fixtures


def test_fixtures_are_reproducible(tmp_path: Path) -> None:
    make_fixtures.main(tmp_path / "fixtures", tmp_path / "samples")
    for new in sorted((tmp_path / "fixtures").rglob("*.*")):
        committed = make_fixtures.FIXTURES / new.relative_to(tmp_path / "fixtures")
        assert new.read_bytes() == committed.read_bytes(), committed
    for new in sorted((tmp_path / "samples").iterdir()):
        assert new.read_bytes() == (make_fixtures.SAMPLES / new.name).read_bytes(), new.name
    total = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert total < 300_000
