"""Numba compilation made visible: the notice and timer of the first run, and ``warmup``.

The kernels are compiled with ``cache=True``, so only the first run on a machine compiles
(12-23 s); :func:`compile_timer` says so once when it starts and measures it, so that the fit
time a command shows excludes it; ``volguard warmup`` compiles everything ahead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

NOTICE = "compiling numerical kernels, first run only (volguard warmup compiles them ahead)"
WARM_ENGINES = ("black76-flat", "svi", "ssvi", "essvi", "sabr", "heston", "bates")
"""The engines whose fits reach every compiled kernel (the others are built from them)."""


@contextmanager
def compile_timer(console: Console) -> Iterator[list[float]]:
    """Within the block, print :data:`NOTICE` once if numba starts compiling; the yielded
    one-item list holds the seconds spent compiling when the block ends."""
    from numba.core import event

    class Notice(event.TimingListener):
        said = False

        def on_start(self, ev: Any) -> None:
            if not self.said:
                console.print(NOTICE, style="yellow", highlight=False)
                self.said = True
            super().on_start(ev)  # type: ignore[no-untyped-call]

    listener = Notice()  # type: ignore[no-untyped-call]
    seconds = [0.0]
    with event.install_listener("numba:compile", listener):
        yield seconds
    seconds[0] = float(listener.duration) if listener.done else 0.0


def warm_all(console: Console) -> float:
    """Compile every kernel: fit each of :data:`WARM_ENGINES` to a small simulated snapshot
    and run the Black-76 and implied-vol kernels; returns the seconds spent compiling."""
    import numpy as np

    from volguard.kernels.api import black76_greeks, implied_vol
    from volguard.models import make_engine
    from volguard.sim import preset, simulate

    with compile_timer(console) as seconds:
        snapshot = next(iter(simulate(preset("markov"), days=0.25, freq="6h", seed=0).snapshots()))
        for name in WARM_ENGINES:
            make_engine(name).fit(snapshot)
        price = black76_greeks(100.0, np.array([90.0, 110.0]), 0.5, 0.6, True)["price"]
        implied_vol(price, 100.0, np.array([90.0, 110.0]), 0.5, True)
    return seconds[0]
