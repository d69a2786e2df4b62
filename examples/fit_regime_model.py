"""Refit the guard's default regime model (``volguard.models.regime.DVOL_MODEL``).

A two-state Gaussian HMM (hmmlearn, seed 0) on the daily changes of Deribit's BTC DVOL index,
2022-11-06 to 2025-11-12, in vol points per square root of a day (a missing day divides the
change by sqrt(2)). Prints the fitted means, standard deviations and transition matrix.
Run: ``.venv/bin/python examples/fit_regime_model.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from volguard.models.regime import fit_regime_hmm


def main() -> None:
    root = Path(os.environ.get("VOLGUARD_DATA", Path(__file__).parents[2] / "shared" / "data"))
    dvol = pd.read_csv(root / "deribit-dvol-daily" / "dvol_btc_daily.csv", parse_dates=["date"])
    gap_days = dvol["date"].diff().dt.days.to_numpy()[1:]
    x = np.diff(dvol["dvol_close"].to_numpy()) / np.sqrt(gap_days)
    model = fit_regime_hmm(x[:, None], n_states=2, seed=0)
    print(f"{x.size} daily changes")
    print("means (vol pts/sqrt(day)):", model.means.ravel().round(4))
    print("sd (vol pts/sqrt(day)):   ", np.sqrt(model.covars.ravel()).round(4))
    print("variances:                ", model.covars.ravel().round(4))
    print("transition matrix:\n", model.transmat.round(4))


if __name__ == "__main__":
    main()
