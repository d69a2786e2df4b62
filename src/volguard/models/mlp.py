"""Small tanh multilayer perceptrons: trained in PyTorch (optional), evaluated in NumPy.

The learned surfaces (``nn``, the ``hybrid``'s correction) and the hedging policies share
them. A trained network is a value (:class:`MLP`: its float64 weights as bytes), so it prices,
hedges, pickles and compares by content without PyTorch; only training needs it
(:func:`import_torch`), through :class:`TorchMLP`, the float32 twin, inside a
:class:`TorchSession` (one thread, deterministic algorithms).
"""

from __future__ import annotations

import functools
import importlib
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from volguard._typing import FloatArray

INSTALL_HINT = "pip install 'volguard[ml]'"


def import_torch(purpose: str) -> Any:
    """PyTorch, imported on demand (training only).

    Raises
    ------
    ImportError
        If PyTorch is not installed, naming ``purpose`` and the extra that installs it.
    """
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs PyTorch, which is not installed: {INSTALL_HINT}"
        ) from exc


@functools.lru_cache(maxsize=64)
def _layers(sizes: tuple[int, ...], params: bytes) -> tuple[tuple[FloatArray, FloatArray], ...]:
    flat = np.frombuffer(params, dtype="<f8")
    out, at = [], 0
    for n_in, n_out in itertools.pairwise(sizes):
        w = flat[at : at + n_in * n_out].reshape(n_out, n_in)
        at += n_in * n_out
        out.append((w, flat[at : at + n_out]))
        at += n_out
    return tuple(out)


@dataclass(frozen=True)
class MLP:
    """A trained multilayer perceptron as a value: tanh hidden layers, linear outputs.

    Attributes
    ----------
    sizes : tuple of int
        Layer widths, inputs first, outputs last.
    params : bytes
        Little-endian float64 weights and biases, layer by layer (``W`` of shape
        ``(n_out, n_in)`` row-major, then ``b``).
    shift, scale : tuple of float
        Input standardisation: the network sees ``(x - shift) / scale``.
    """

    sizes: tuple[int, ...]
    params: bytes
    shift: tuple[float, ...]
    scale: tuple[float, ...]

    def outputs(self, x: FloatArray) -> FloatArray:
        """Every output for inputs ``x`` of shape ``(n, sizes[0])``: shape ``(n, sizes[-1])``."""
        h = (np.asarray(x, dtype=float) - np.asarray(self.shift)) / np.asarray(self.scale)
        layers = _layers(self.sizes, self.params)
        for w, b in layers[:-1]:
            h = np.tanh(h @ w.T + b)
        w, b = layers[-1]
        out: FloatArray = h @ w.T + b
        return out

    def __call__(self, x: FloatArray) -> FloatArray:
        """The first output, shape ``(n,)``."""
        out: FloatArray = self.outputs(x)[:, 0]
        return out


class TorchMLP:
    """The PyTorch twin of :class:`MLP` for training: float32, Glorot-uniform hidden weights
    from ``generator``, the output layer's weights zero (the untrained network outputs its
    biases, 0)."""

    def __init__(
        self,
        torch: Any,
        sizes: tuple[int, ...],
        shift: FloatArray,
        scale: FloatArray,
        generator: Any,
    ) -> None:
        self.torch, self.sizes = torch, sizes
        self.shift = torch.tensor(shift, dtype=torch.float32)
        self.scale = torch.tensor(scale, dtype=torch.float32)
        self.params: list[Any] = []
        for n_in, n_out in itertools.pairwise(sizes):
            bound = float(np.sqrt(6.0 / (n_in + n_out)))  # Glorot uniform
            w = torch.empty(n_out, n_in, dtype=torch.float32).uniform_(
                -bound, bound, generator=generator
            )
            self.params += [w, torch.zeros(n_out, dtype=torch.float32)]
        with torch.no_grad():
            self.params[-2].mul_(0.0)
        for p in self.params:
            p.requires_grad_()

    def outputs(self, x: Any) -> Any:
        h = (x - self.shift) / self.scale
        for i in range(0, len(self.params) - 2, 2):
            h = self.torch.tanh(h @ self.params[i].T + self.params[i + 1])
        return h @ self.params[-2].T + self.params[-1]

    def __call__(self, x: Any) -> Any:
        return self.outputs(x)[:, 0]

    def snapshot(self) -> list[FloatArray]:
        """The current weights, copied (for early stopping's best checkpoint)."""
        return [p.detach().numpy().astype(float) for p in self.params]

    def value(self, weights: list[FloatArray]) -> MLP:
        """``weights`` (from :meth:`snapshot`) as an :class:`MLP`."""
        return MLP(
            sizes=self.sizes,
            params=np.concatenate([w.ravel() for w in weights]).astype("<f8").tobytes(),
            shift=tuple(float(v) for v in self.shift),
            scale=tuple(float(v) for v in self.scale),
        )


class TorchSession:
    """Deterministic, single-threaded torch for the duration of a ``with`` block (restored)."""

    def __init__(self, torch: Any) -> None:
        self.torch = torch

    def __enter__(self) -> TorchSession:
        self.threads = self.torch.get_num_threads()
        self.deterministic = self.torch.are_deterministic_algorithms_enabled()
        self.torch.set_num_threads(1)
        self.torch.use_deterministic_algorithms(True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.torch.set_num_threads(self.threads)
        self.torch.use_deterministic_algorithms(self.deterministic)
