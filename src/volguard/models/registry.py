"""Engine names -> classes; names feed the CLI and configuration files, not the core."""

from __future__ import annotations

from typing import Any

from volguard.models.base import SurfaceEngine
from volguard.models.conformal import ConformalSurface
from volguard.models.ensemble import EnsembleSurface
from volguard.models.gp import GPSurface
from volguard.models.hybrid import HybridSurface
from volguard.models.learned.gbm import GBMSurface
from volguard.models.learned.nn import NNSurface
from volguard.models.parametric.black76_flat import Black76Flat
from volguard.models.parametric.heston import Bates, Heston
from volguard.models.parametric.sabr import SABR
from volguard.models.parametric.ssvi import ESSVI, SSVI
from volguard.models.parametric.svi import SVI
from volguard.models.parametric.svi_plain import PlainSVI
from volguard.models.parametric.svi_surface import SVISurface

ENGINES: dict[str, type[SurfaceEngine]] = {
    cls.name: cls
    for cls in (
        Black76Flat,
        SVI,
        PlainSVI,
        SVISurface,
        SSVI,
        ESSVI,
        SABR,
        Heston,
        Bates,
        GBMSurface,
        NNSurface,
        HybridSurface,
        GPSurface,
    )
}
ENGINES[EnsembleSurface.name] = EnsembleSurface  # combines the engines above by name
ENGINES[ConformalSurface.name] = ConformalSurface  # wraps any of them with intervals


def make_engine(name: str, **settings: Any) -> SurfaceEngine:
    """A new engine by registered name.

    Raises
    ------
    ValueError
        If ``name`` is not registered.

    Examples
    --------
    >>> make_engine("svi", weighting="spread").get_params()
    {'weighting': 'spread'}
    """
    if name not in ENGINES:
        raise ValueError(f"engine {name!r} is unknown; expected one of {sorted(ENGINES)}")
    return ENGINES[name](**settings)
