"""Files of one engine fit: ``params.json``, ``fit.json`` and ``surface.parquet``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from volguard.data.files import write_atomic
from volguard.models.base import SurfaceEngine

SURFACE_K = np.round(np.arange(-1.5, 1.0 + 1e-9, 0.01), 10)
"""Default log-moneyness grid of ``surface.parquet``: -1.5 .. 1.0, step 0.01."""


def write_fit(engine: SurfaceEngine, out_dir: str | Path, k: np.ndarray = SURFACE_K) -> list[Path]:
    """Write a fitted engine's parameters, fit summary and surface grid; returns the paths.

    ``surface.parquet`` has ``expiry`` (UTC), ``t`` (years), ``k`` (ln K/F) and ``iv``
    (decimal) on ``k`` at every fitted expiry. Each file is written atomically.
    """
    out = Path(out_dir)
    result = engine.result_
    meta = {"engine": engine.name, "settings": engine.get_params(), "ts": engine.ts_.isoformat()}
    frame = engine.surface(k)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return [
        write_atomic(out / "params.json", _json({**meta, "params": result.params})),
        write_atomic(out / "fit.json", _json({**meta, **result.summary()})),
        write_atomic(out / "surface.parquet", buffer.getvalue()),
    ]


def _json(payload: dict[str, Any]) -> str:
    """Indented JSON; NumPy scalars become plain numbers."""
    text = json.dumps(
        payload, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o)
    )
    return text + "\n"
