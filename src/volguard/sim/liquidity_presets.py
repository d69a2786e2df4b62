"""Fit the packaged liquidity model to real Deribit windows.

Run by ``volguard sim calibrate`` (reads ``VOLGUARD_DATA``, default ``../shared/data``).

Each simulator regime is fitted to one window of ``deribit-svcj-snapshots`` (read with the
project's loader and hygiene, clean rows only); see :data:`WINDOWS`. Those files carry no quote
sizes, so every regime's sizes come from the OptionsDX Deribit BTC end-of-day files
(``optionsdx-deribit-btc-eod``, 2021-2022), the real Deribit sizes volguard has. The result is
written to ``src/volguard/sim/presets/liquidity.json`` and read by
:func:`volguard.sim.liquidity.load_liquidity_model`; the data files themselves stay outside the
package.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from volguard.data.hygiene import classify, split
from volguard.data.loaders import read_deribit_snapshot, read_optionsdx
from volguard.sim.liquidity import LiquidityModel, fit_liquidity

WINDOWS: dict[str, tuple[str, str, str]] = {
    "calm": ("2026-01-01", "2026-01-28", "calm January 2026 (BTC 87-97k, ATM IV 36-43 %)"),
    "crash": ("2026-01-29", "2026-02-07", "crash 2026-01-29..02-06 (BTC 89k -> 64k)"),
    "plateau": ("2026-02-09", "2026-04-01", "high-vol plateau Feb-Mar 2026 (ATM IV 48-56 %)"),
    "trending": ("2026-06-01", "2026-06-08", "second sell-off 2026-06-01..07 (BTC 73.7k -> 60.6k)"),
    "rally": ("2026-08-18", "2026-08-23", "rally 2026-08-18..22 (BTC 64.6k -> 78.4k)"),
    "crunch": (
        "2026-02-05T12:00",
        "2026-02-06T18:00",
        "liquidity dry-up inside the crash (22-36 % of options without a bid per snapshot)",
    ),
}
"""Regime -> (start, end, description) of its real window, UTC, ``start <= ts < end``.

The five simulator regimes, plus ``crunch``: the worst day and a half of the crash, for
stress scenarios that want the venue's bid-less books rather than the crash window's mean.
What the fits say: option for option (same vega, moneyness, expiry, price) the crash window's
books are no wider than January's; the crash's larger no-bid share (9 % of rows against 6 %)
comes from its chain, which lists more cheap far-from-the-money strikes. Only ``crunch`` is
thinner at equal features (more one-sided books, wider long-dated spreads)."""

SNAPSHOTS = "deribit-svcj-snapshots/snapshots"
SIZES = "optionsdx-deribit-btc-eod"


def snapshot_time(path: Path) -> pd.Timestamp:
    """The collector run time in a ``deribit_options_snapshot_<YYYYMMDDTHHMMSS>Z`` file name."""
    return pd.Timestamp(path.name.split("_")[-1].split(".")[0], tz="UTC")


def load_window(root: Path, start: str, end: str) -> pd.DataFrame:
    """Clean quote rows of the snapshots taken in ``[start, end)`` (UTC)."""
    lo, hi = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    files = [f for f in sorted((root / SNAPSHOTS).glob("*.csv.gz")) if lo <= snapshot_time(f) < hi]
    clean = [split(classify(read_deribit_snapshot(f)))[0] for f in files]
    return pd.concat(clean, ignore_index=True)


def load_sizes(root: Path) -> pd.DataFrame:
    """Clean OptionsDX rows, for their bid and ask sizes."""
    files = sorted((root / SIZES).glob("btc_eod_*.txt.gz"))
    return pd.concat([split(classify(read_optionsdx(f)))[0] for f in files], ignore_index=True)


def fit_presets(root: Path) -> LiquidityModel:
    """Fit every regime of :data:`WINDOWS` to the real data under ``root``."""
    sizes = load_sizes(root)
    regimes, sources = {}, {}
    for regime, (start, end, what) in WINDOWS.items():
        params = fit_liquidity(load_window(root, start, end), sizes=sizes)
        regimes[regime] = params
        sources[regime] = (
            f"{what}: deribit-svcj-snapshots {start} <= ts < {end}, {params.n_snapshots} "
            f"snapshots (underlying x time), {params.n_rows} rows; sizes: {len(sizes)} OptionsDX "
            "Deribit BTC EOD rows (2021-06..07, 2022-01..04)"
        )
    return LiquidityModel(regimes=regimes, sources=sources)


def liquidity_json(model: LiquidityModel) -> str:
    """The fitted model as the text of ``sim/presets/liquidity.json``."""
    return json.dumps(model.to_dict(), indent=1) + "\n"
