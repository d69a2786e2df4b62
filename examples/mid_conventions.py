"""How far apart the two mid conventions are on the real Deribit chains.

volguard's mid vol is the implied vol of the mid PRICE (:mod:`volguard.market.quotes`); the
other common convention averages the bid and ask vols. This prints, per underlying and per
bucket of standardised moneyness ``|k| / (atm_vol sqrt(t))``, the median and 5th percentile of
``(bid_iv + ask_iv) / 2 - mid_iv`` in vol points and in half-spreads (negative: the average of
the vols is below the mid price's vol, as the premium's convexity in vol makes it), over the
two-sided
out-of-the-money quotes of every snapshot of ``deribit-svcj-snapshots``.

Run: python examples/mid_conventions.py [--cache runs/mid-conventions]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from _svcj import svcj_snapshots

from volguard.market.quotes import QuoteVols
from volguard.market.smile import atm_vol

BUCKETS = [0.0, 0.5, 1.0, 2.0, 3.0, np.inf]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("runs/mid-conventions"))
    args = parser.parse_args()
    rows = []
    for underlying in ("BTC", "ETH"):
        for snap in svcj_snapshots(underlying, args.cache):
            v = QuoteVols.from_snapshot(snap)
            atm = atm_vol(v.t, v.k, v.mid_iv)
            gap = (v.bid_iv + v.ask_iv) / 2 - v.mid_iv
            rows.append(
                pd.DataFrame(
                    {
                        "underlying": underlying,
                        "z": np.abs(v.k) / (atm * np.sqrt(v.t)),
                        "gap_vol_pts": 100 * gap,
                        "gap_half_spreads": gap / v.half_spread_iv,
                    }
                )
            )
    table = pd.concat(rows, ignore_index=True)
    table["bucket"] = pd.cut(table["z"], BUCKETS, right=False)
    summary = table.groupby(["underlying", "bucket"], observed=True).agg(
        quotes=("z", "size"),
        median_vol_pts=("gap_vol_pts", "median"),
        p05_vol_pts=("gap_vol_pts", lambda x: x.quantile(0.05)),
        median_half_spreads=("gap_half_spreads", "median"),
        p05_half_spreads=("gap_half_spreads", lambda x: x.quantile(0.05)),
    )
    print(summary.round(3).to_string())


if __name__ == "__main__":
    main()
