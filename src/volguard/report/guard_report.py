"""Files of a guard replay: ``decisions.parquet``, ``guarded.parquet`` and ``report.html``.

The HTML report is one self-contained page (plotly.js inlined): the engine's error rate with
the policy's thresholds, the drift detectors' alarms, the stress probability, the state, and the
market's 30-day ATM vol and forward underneath, on one shared time axis.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from volguard.data.files import parquet_bytes, write_atomic
from volguard.guard.policy import PolicySettings, State

DETECTOR_NAMES = ("cusum", "page_hinkley", "adwin")


def write_guard_outputs(
    decisions: pd.DataFrame,
    guarded: pd.DataFrame,
    out_dir: str | Path,
    settings: PolicySettings | None = None,
    title: str = "volguard guard replay",
) -> list[Path]:
    """Write the three outputs atomically; returns their paths."""
    out = Path(out_dir)
    return [
        write_atomic(out / "decisions.parquet", parquet_bytes(decisions)),
        write_atomic(out / "guarded.parquet", parquet_bytes(guarded)),
        write_atomic(out / "report.html", guard_report_html(decisions, settings, title)),
    ]


def guard_report_html(
    decisions: pd.DataFrame,
    settings: PolicySettings | None = None,
    title: str = "volguard guard replay",
) -> str:
    """The report page of a decisions table (:func:`volguard.guard.replay.decisions_frame`).

    Examples
    --------
    >>> frame = pd.DataFrame({"ts": pd.to_datetime(["2026-01-29"], utc=True), "state": ["WATCH"],
    ...                       "z": [4.5], "detectors": ["cusum"], "p_stress": [0.2]})
    >>> html = guard_report_html(frame)
    >>> html.startswith("<!doctype html>") and "plotly" in html
    True
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    s = settings or PolicySettings()
    d = decisions.sort_values("ts") if not decisions.empty else decisions
    fig = make_subplots(
        rows=5,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.03,
        subplot_titles=(
            "standardized error rate z (one-step-ahead, per sqrt(day))",
            "drift detector alarms",
            "stress-regime probability",
            "guard state",
            "market: 30-day ATM vol (%) and forward (USD)",
        ),
        specs=[[{}], [{}], [{}], [{}], [{"secondary_y": True}]],
    )
    ts = d["ts"] if "ts" in d else pd.Series(dtype="datetime64[ns, UTC]")
    fig.add_trace(go.Scatter(x=ts, y=_col(d, "z"), name="z", mode="lines+markers"), 1, 1)
    for name, level in (("z_watch", s.z_watch), ("z_recalibrate", s.z_recalibrate)):
        fig.add_hline(y=level, line_dash="dot", annotation_text=name, row=1, col=1)
    fired = d["detectors"].fillna("") if "detectors" in d else pd.Series("", index=d.index)
    for i, name in enumerate(DETECTOR_NAMES):
        hit = fired.str.contains(name)
        fig.add_trace(
            go.Scatter(x=ts[hit], y=[i] * int(hit.sum()), name=name, mode="markers"), 2, 1
        )
    fig.add_trace(go.Scatter(x=ts, y=_col(d, "p_stress"), name="p(stress)"), 3, 1)
    states = d["state"] if "state" in d else pd.Series(dtype="string")
    levels = states.map(lambda name: State[name].value)
    fig.add_trace(go.Scatter(x=ts, y=levels, name="state", line_shape="hv"), 4, 1)
    fig.update_yaxes(
        tickvals=[st.value for st in State], ticktext=[st.name for st in State], row=4, col=1
    )
    fig.add_trace(go.Scatter(x=ts, y=_col(d, "atm_vol_30d"), name="ATM vol 30d (%)"), 5, 1)
    fig.add_trace(
        go.Scatter(x=ts, y=_col(d, "forward_30d_usd"), name="forward (USD)", line_dash="dot"),
        5,
        1,
        secondary_y=True,
    )
    fig.update_layout(height=1200, title=title, hovermode="x unified")
    return str(fig.to_html(include_plotlyjs=True, full_html=True))


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame else pd.Series(float("nan"), index=frame.index)
