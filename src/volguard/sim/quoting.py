"""From the simulated truth to venue quotes in the quote schema, through the liquidity model.

The rows come out as a Deribit snapshot would after ingestion (``docs/data.md``): USD premiums
of inverse options, venue vols inverted from the bid, ask and mark, and the hygiene flags
(``no_bid``, ``no_ask``) set by :func:`volguard.data.hygiene.classify`. A row that hygiene would
quarantine is a simulator bug, so it raises instead of being passed on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from volguard.data.hygiene import classify
from volguard.data.schema import QUOTE_COLUMNS, conform
from volguard.kernels.api import implied_vol
from volguard.sim.liquidity import LiquidityModel, load_liquidity_model

VENUE = "volguard-sim"


def quote_table(
    truth: pd.DataFrame,
    rng: np.random.Generator,
    source: str,
    model: LiquidityModel | None = None,
) -> pd.DataFrame:
    """Quotes of the truth rows that keep one, in the quote schema (same order as ``truth``).

    Parameters
    ----------
    truth : DataFrame
        :data:`volguard.sim.simulator.TRUTH_COLUMNS`, with a default ``RangeIndex``.
    rng : numpy.random.Generator
        The quote stage's generator.
    source : str
        The ``source`` column; ``source_row`` is the truth row's position + 2.
    model : LiquidityModel, optional
        Default: the calibrated model stored in the package.

    Raises
    ------
    RuntimeError
        If a quote fails hygiene (crossed, outside the bounds, ...).
    """
    model = model or load_liquidity_model()
    # the liquidity model sees the chain and the true prices and vols, not the true greeks
    chain = truth.drop(columns=["true_delta", "true_mv_delta", "true_gamma", "variance"])
    chain["regime"] = chain["regime"].astype(str)
    q = model.quote(chain, rng)
    f, strike = q["forward"].to_numpy(float), q["strike"].to_numpy(float)
    t, is_call = q["t"].to_numpy(float), q["is_call"].to_numpy(bool)
    ivs = {}
    for side in ("bid", "ask", "mark"):
        price = q[side].to_numpy(float)
        ok = np.isfinite(price)
        vol = np.full(price.size, np.nan)
        vol[ok] = implied_vol(price[ok], f[ok], strike[ok], t[ok], is_call[ok])
        ivs[f"{side}_iv"] = vol
    n = len(q)

    def constant(text: str) -> pd.Series:  # repeated from one string, not n Python objects
        return pd.Series([text], dtype="string").repeat(n).set_axis(q.index)

    rows = q.assign(
        venue=constant(VENUE),
        settlement=constant("inverse"),
        source=constant(source),
        source_row=q.index.to_numpy() + 2,
        **ivs,
    )
    out = conform(rows, QUOTE_COLUMNS)
    checked = classify(out.assign(reason=pd.array([pd.NA] * len(out), dtype="string")))
    bad = checked["reason"].notna()
    if bad.any():
        first = checked.loc[bad].iloc[0]
        raise RuntimeError(
            f"the liquidity model produced {int(bad.sum())} quote(s) that fail hygiene, e.g. "
            f"{first['instrument']} at {first['ts']}: {first['reason']}"
        )
    out["flags"] = checked["flags"]
    return out
