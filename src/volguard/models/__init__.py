"""Pricing engines as scikit-learn estimators, their calibration results and registry."""

from volguard.models.base import SliceEngine, SurfaceEngine
from volguard.models.registry import ENGINES, make_engine
from volguard.models.result import CalibrationResult

__all__ = ["ENGINES", "CalibrationResult", "SliceEngine", "SurfaceEngine", "make_engine"]
