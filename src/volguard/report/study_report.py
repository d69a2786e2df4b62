"""The scorecard of a study as Markdown, for terminals, PRs and ``make run``'s report."""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS: dict[str, str] = {
    "engine": "engine",
    "protocol": "protocol",
    "regime": "regime",
    "n": "quotes",
    "iv_rmse_vol_pts": "IV RMSE (vol pts)",
    "inside_spread_pct": "inside bid-ask %",
    "gen_gap": "gen. gap",
    "gen_gap_lo": "gap lo",
    "gen_gap_hi": "gap hi",
    "hedge_err_std_bp": "hedge err sd (bp)",
    "fit_ms": "fit ms",
    "failures": "failed fits",
}


def scorecard_markdown(card: pd.DataFrame, title: str = "Scorecard") -> str:
    """A Markdown table of the scorecard's main columns, with the best engine per protocol and
    regime (lowest IV RMSE) in bold.

    Examples
    --------
    >>> card = pd.DataFrame({"engine": ["a", "b"], "protocol": ["p", "p"], "regime": ["calm"] * 2,
    ...                      "iv_rmse_vol_pts": [2.0, 1.0]})
    >>> print(scorecard_markdown(card).splitlines()[-1])
    | **b** | p | calm | 1.00 |
    """
    columns = [c for c in COLUMNS if c in card]
    best = card.groupby(["protocol", "regime"])["iv_rmse_vol_pts"].transform("min")
    lines = [
        f"## {title}",
        "",
        "| " + " | ".join(COLUMNS[c] for c in columns) + " |",
        "| "
        + " | ".join("---" if c in ("engine", "protocol", "regime") else "---:" for c in columns)
        + " |",
    ]
    for winner, (_, row) in zip(card["iv_rmse_vol_pts"] == best, card.iterrows(), strict=True):
        cells = []
        for c in columns:
            value = row[c]
            if isinstance(value, str):
                cells.append(f"**{value}**" if c == "engine" and winner else value)
            elif c in ("n", "failures"):
                cells.append(f"{value:,.0f}")
            else:
                cells.append(f"{value:.2f}" if np.isfinite(value) else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
