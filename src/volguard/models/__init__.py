"""Pricing engines as scikit-learn estimators, their calibration results and registry.

Every engine class is importable from here; the string registry (:data:`ENGINES`,
:func:`make_engine`) is for the command line and configuration files.
"""

from volguard.models.base import SliceEngine, SurfaceEngine
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
from volguard.models.registry import ENGINES, make_engine
from volguard.models.result import CalibrationResult

__all__ = [
    "ENGINES",
    "ESSVI",
    "SABR",
    "SSVI",
    "SVI",
    "Bates",
    "Black76Flat",
    "CalibrationResult",
    "ConformalSurface",
    "EnsembleSurface",
    "GBMSurface",
    "GPSurface",
    "Heston",
    "HybridSurface",
    "NNSurface",
    "PlainSVI",
    "SVISurface",
    "SliceEngine",
    "SurfaceEngine",
    "make_engine",
]
