"""Typed wrappers around :func:`numba.njit` so strict mypy keeps the signatures of kernels.

Every kernel is compiled with ``cache=True`` (the compiled machine code is stored next to the
module in ``__pycache__``) so that only the first import on a machine pays the compile time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

_F = TypeVar("_F", bound=Callable[..., Any])


def jit(fn: _F) -> _F:
    """Compile ``fn`` in nopython mode, cached, IEEE semantics (no ``fastmath``)."""
    return cast(_F, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))


def jit_parallel(fn: _F) -> _F:
    """Like :func:`jit`, with ``parallel=True`` so ``numba.prange`` loops run on all threads."""
    return cast(_F, numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")(fn))


prange = cast(Callable[..., range], numba.prange)
"""``numba.prange`` (plain ``range`` when run by the interpreter)."""
