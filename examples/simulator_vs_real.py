"""Simulated presets against their real Deribit windows: the table and figure of docs/simulator.md.

For each preset, ``--seeds`` independent runs of ``--days`` days from the preset's start, one
snapshot every ``--freq``; the medians over all snapshots are set beside the real window's
figures stored by ``volguard sim calibrate`` (so no ../shared data is needed here). Writes the
Markdown table to stdout and ``docs/img/simulator_vs_real.svg``::

    .venv/bin/python examples/simulator_vs_real.py
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from volguard.sim import preset, simulate
from volguard.sim.liquidity import liquidity_stats
from volguard.sim.scenario import calibration
from volguard.sim.surface_facts import TENORS_DAYS, surface_facts

PRESET_WINDOWS = {"calm-2026-01": "calm", "crash-2026-02": "crash"}
ROWS = (
    *(f"atm_{d}d" for d in TENORS_DAYS),
    "rr_25d",
    "quotes_per_snapshot",
    "no_bid_share",
    "no_ask_share",
    "short_atm.spread_volpt_p50",
    "long_atm.spread_volpt_p50",
    "short_wing.spread_volpt_p50",
    "long_wing.spread_volpt_p50",
)
COLOURS = {"calm": "#1f77b4", "crash": "#d62728"}


def simulated_figures(name: str, seeds: int, days: float, freq: str) -> dict[str, float]:
    runs = [simulate(preset(name), days=days, freq=freq, seed=s) for s in range(seeds)]
    quotes = pd.concat(
        [
            r.quotes.assign(ts=r.quotes["ts"] + pd.Timedelta(days=1000 * i))
            for i, r in enumerate(runs)
        ]
    )
    facts = pd.DataFrame([surface_facts(g) for _, g in quotes.groupby("ts")]).median()
    return {**facts.to_dict(), **liquidity_stats(quotes)}


def svg(curves: dict[str, tuple[list[float], list[float]]]) -> str:
    """ATM vol term structure, real (dots) and simulated (lines), per window."""
    width, height, pad = 640, 360, 50
    xs = [float(d) for d in TENORS_DAYS]
    values = [v for real, sim in curves.values() for v in (*real, *sim)]
    lo, hi = min(values) - 0.02, max(values) + 0.02

    def point(day: float, vol: float) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * (day - xs[0]) / (xs[-1] - xs[0])
        y = height - pad - (height - 2 * pad) * (vol - lo) / (hi - lo)
        return x, y

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">ATM implied vol by '
        "tenor: real window (dots) vs simulated preset (line)</text>",
    ]
    for day in xs:
        x, _ = point(day, lo)
        out.append(
            f'<text x="{x:.0f}" y="{height - pad + 18}" text-anchor="middle">{day:.0f}d</text>'
        )
    for tick in range(5 * math.ceil(lo * 20), int(hi * 100) + 1, 5):
        _, y = point(xs[0], tick / 100)
        out.append(f'<text x="{pad - 8}" y="{y + 4:.0f}" text-anchor="end">{tick}%</text>')
        out.append(f'<line x1="{pad}" x2="{width - pad}" y1="{y:.0f}" y2="{y:.0f}" stroke="#eee"/>')
    for i, (window, (real, sim)) in enumerate(curves.items()):
        colour = COLOURS[window]
        line = " ".join(
            f"{x:.1f},{y:.1f}" for x, y in (point(d, v) for d, v in zip(xs, sim, strict=True))
        )
        out.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for d, v in zip(xs, real, strict=True):
            x, y = point(d, v)
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
        label = f'x="{width - pad}" y="{40 + 16 * i}" text-anchor="end" fill="{colour}"'
        out.append(f"<text {label}>{window}</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--freq", default="6h")
    parser.add_argument("--svg", type=Path, default=Path("docs/img/simulator_vs_real.svg"))
    args = parser.parse_args()
    windows = calibration()["windows"]
    table = {}
    curves = {}
    for name, window in PRESET_WINDOWS.items():
        sim = simulated_figures(name, args.seeds, args.days, args.freq)
        real = {**windows[window]["facts"], **windows[window]["liquidity"]}
        table[window] = {row: (real[row], sim[row]) for row in ROWS}
        curves[window] = (
            [real[f"atm_{d}d"] for d in TENORS_DAYS],
            [sim[f"atm_{d}d"] for d in TENORS_DAYS],
        )
    print("| figure | " + " | ".join(f"{w} real | {w} simulated" for w in table) + " |")
    print("| --- |" + " ---: | ---: |" * len(table))
    for row in ROWS:
        cells = []
        for window in table:
            real, sim = table[window][row]
            fmt = "{:.1%}" if row.startswith(("atm", "rr", "no_")) else "{:.1f}"
            cells += [fmt.format(real), fmt.format(sim)]
        print(f"| `{row}` | " + " | ".join(cells) + " |")
    args.svg.parent.mkdir(parents=True, exist_ok=True)
    args.svg.write_text(svg(curves))
    print(f"\nwrote {args.svg}")


if __name__ == "__main__":
    main()
