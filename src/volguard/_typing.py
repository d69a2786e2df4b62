"""Shared type aliases: array shapes are documented in docstrings, dtypes are typed here."""

from __future__ import annotations

from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
IntArray: TypeAlias = npt.NDArray[np.int64]
ArrayLike: TypeAlias = npt.ArrayLike

Settlement: TypeAlias = Literal["inverse", "linear"]
"""``inverse``: premium paid in the coin (Deribit BTC/ETH); ``linear``: premium in USD(C)."""
