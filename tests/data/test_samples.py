"""The bundled samples load cleanly with their registered loaders and stay small."""

from __future__ import annotations

import pytest

from volguard.data.loaders import LOADERS
from volguard.data.samples import SAMPLES_DIR, sample_files


@pytest.mark.parametrize(("fmt", "name"), [(f, p.name) for f, p in sample_files()])
def test_sample_loads_clean(fmt: str, name: str) -> None:
    out = LOADERS[fmt](SAMPLES_DIR / name)
    assert len(out) > 50
    assert out["reason"].isna().all()
    assert set(out["underlying"]) <= {"BTC", "ETH"}
    assert (out["mark"] > 0).all() and (out["mark_iv"].between(0.1, 3.0)).all()
    assert (out["t"] > 0).all()


def test_samples_are_small() -> None:
    sizes = sum(p.stat().st_size for _, p in sample_files())
    assert sizes < 100_000
