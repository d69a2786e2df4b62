"""The HTML report of a study: one self-contained page (plotly.js inlined once, no network).

:func:`write_study_report` reads what :func:`volguard.lab.study.run_study` wrote into a study
folder (``study.json``, ``scorecard.parquet``, ``predictions.parquet``, ``hedging.parquet``,
``regimes.parquet``, ``desk.parquet``) and writes ``report.html`` beside them, with these
sections:

==============  ===================================================================
``header``      the study: name, data, seed, cells, seconds, versions
``scorecard``   every scorecard row; the best engine (lowest IV RMSE) per protocol,
                regime and scenario in bold
``skill``       the desk's protocol (``desk.parquet``): skill against the best baseline
                per engine and regime with its Diebold-Mariano p-value, core quotes
``gap``         the generalization gap per engine and regime with its bootstrap interval
``regimes``     IV RMSE per engine and regime, one panel per protocol
``smiles``      bid/ask vols and each engine's vol on a calm and a stressed snapshot
``hedging``     hedge-error distributions per regime and delta, with std and CVaR
``timeline``    30-day ATM vol and index price with the regime labels, per underlying
``stress``      IV RMSE and hedge-error std per engine under each stress scenario
==============  ===================================================================

A section whose inputs are missing says so in a sentence. Nothing is computed here beyond
shaping the study's tables for display; the hedge-error summary is
:func:`volguard.lab.hedging.hedge_summary`, as in the scorecard.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volguard.data.files import write_atomic
from volguard.lab.greeks import LEARNED
from volguard.lab.hedging import hedge_summary
from volguard.lab.study import GREEKS, MARKET
from volguard.market.clock import DAYS_PER_YEAR

SECTIONS: tuple[tuple[str, str], ...] = (
    ("header", "Study"),
    ("scorecard", "Scorecard"),
    ("skill", "Skill against the baselines"),
    ("gap", "Generalization gap"),
    ("regimes", "Error by regime"),
    ("sweep", "Setting sweeps"),
    ("smiles", "Smiles against bid and ask"),
    ("hedging", "Hedging error"),
    ("policy", "Learned hedging"),
    ("timeline", "Regime timeline"),
    ("stress", "Stress scenarios"),
)
"""Section ids (``<section id="sec-<id>">``) and titles, in page order."""

COLUMNS: dict[str, tuple[str, str]] = {
    "engine": ("engine", "s"),
    "protocol": ("protocol", "s"),
    "regime": ("regime", "s"),
    "scenario": ("scenario", "s"),
    "n": ("quotes", "int"),
    "snap_iv_rmse_vol_pts": ("RMSE per snapshot, median (core, vol pts)", ".2f"),
    "snap_inside_pct": ("inside bid-ask %, median (core)", ".1f"),
    "skill": ("skill vs best baseline", "pct"),
    "best_baseline": ("best baseline", "s"),
    "dm_p": ("DM p-value", ".3f"),
    "iv_rmse_vol_pts": ("IV RMSE, pooled (vol pts)", ".2f"),
    "iv_mae_vol_pts": ("IV MAE (vol pts)", ".2f"),
    "vega_w_rmse": ("vega-w. RMSE (vol pts)", ".2f"),
    "half_spread_rmse": ("RMSE (half-spreads)", ".2f"),
    "inside_spread_pct": ("inside bid-ask %", ".1f"),
    "price_rmse_usd": ("price RMSE (USD)", ".2f"),
    "true_iv_rmse_vol_pts": ("true-IV RMSE (vol pts)", ".2f"),
    "delta_rmse": ("delta RMSE", ".4f"),
    "gamma_rel_rmse": ("gamma rel. RMSE", ".3f"),
    "vega_rel_rmse": ("vega rel. RMSE", ".3f"),
    "disagreement_vol_pts": ("ensemble disagreement (vol pts, median)", ".2f"),
    "coverage_pct": ("interval coverage %", ".1f"),
    "interval_width_vol_pts": ("interval width (vol pts)", ".2f"),
    "engine_coverage_pct": ("engine's own interval coverage %", ".1f"),
    "engine_width_vol_pts": ("engine's own interval width (vol pts)", ".2f"),
    "fit_ms": ("fit ms (median)", ".1f"),
    "failures": ("failed fits", "int"),
    "arb_violations": ("arb. violations", "int"),
    "gen_gap": ("gen. gap [90% CI]", "gap"),
    "hedge_err_std_bp": ("hedge err sd (bp)", ".2f"),
    "hedge_err_cvar95_bp": ("hedge CVaR95 (bp)", ".2f"),
    "hedge_err_reduction_vs_bs": ("var. reduction vs BS", "pct"),
    "hedge_err_reduction_vs_mv": ("var. reduction vs MV", "pct"),
}
"""Scorecard columns shown (those present and not all missing): header and number format."""

ENGINE_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
)
REGIME_COLOURS = {"calm": "#2ca02c", "crash": "#d62728", "stress": "#d62728"}
OTHER_REGIME_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#393b79",
    "#7f7f7f",
)
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
POLICY = "policy_hedging"
"""The protocol of the learned-hedging rows, drawn in their own section."""
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto;
       max-width: 1400px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.8em; }
p.note { color: #555; max-width: 60em; }
p.missing { color: #8a6d3b; background: #fcf8e3; padding: 0.5em 0.8em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #eee; }
th { background: #f4f4f4; position: sticky; top: 0; text-align: left; }
td { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { font-weight: bold; }
tr.group td { border-top: 2px solid #bbb; }
div.scroll { max-height: 40em; overflow: auto; border: 1px solid #ddd; }
table.about th { position: static; width: 10em; }
code { font-size: 0.9em; }
"""


def write_study_report(study_dir: str | Path, path: str | Path | None = None) -> Path:
    """Write the study's report page atomically; returns its path.

    Parameters
    ----------
    study_dir
        A folder written by :func:`volguard.lab.study.run_study`; missing files leave their
        sections with a sentence saying so.
    path
        Where to write, default ``study_dir/report.html``.

    Examples
    --------
    >>> import tempfile
    >>> page = write_study_report(tempfile.mkdtemp())
    >>> text = page.read_text(encoding="utf-8")
    >>> text.startswith("<!doctype html>") and "no scorecard.parquet" in text
    True
    """
    folder = Path(study_dir)
    target = Path(path) if path is not None else folder / "report.html"
    return write_atomic(target, study_report_html(folder))


def study_report_html(study_dir: str | Path) -> str:
    """The report page of the study folder ``study_dir`` (see the module docstring)."""
    from plotly.offline import get_plotlyjs

    folder = Path(study_dir)
    inputs = _Inputs(folder)
    about = inputs.about or {}
    name = str(about.get("study", {}).get("name", folder.name))
    builders: dict[str, Callable[[_Inputs], str]] = {
        "header": _header,
        "scorecard": _scorecard,
        "skill": _skill,
        "gap": _gap,
        "regimes": _by_regime,
        "sweep": _sweep,
        "smiles": _smiles,
        "hedging": _hedging,
        "policy": _policy,
        "timeline": _timeline,
        "stress": _stress,
    }
    body = []
    for key, title in SECTIONS:
        body.append(
            f'<section id="sec-{key}">\n<h2>{html.escape(title)}</h2>\n'
            f"{builders[key](inputs)}\n</section>"
        )
    nav = " ".join(f'<a href="#sec-{key}">{html.escape(title)}</a>' for key, title in SECTIONS)
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>volguard study: {html.escape(name)}</title>\n"
        f"<style>{STYLE}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
        "</head>\n<body>\n"
        f"<h1>volguard study: {html.escape(name)}</h1>\n<nav>{nav}</nav>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


class _Inputs:
    """The study folder's files, read once; a missing or unreadable file is None with a note."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.notes: dict[str, str] = {}
        self.about = self._json("study.json")
        self.card = self._parquet("scorecard.parquet")
        self.predictions = self._parquet("predictions.parquet")
        self.hedging = self._parquet("hedging.parquet")
        self.regimes = self._parquet("regimes.parquet")
        self.desk = self._parquet("desk.parquet")
        self.policy: pd.DataFrame | None = None  # [protocols] policy_hedging: its own section
        if self.card is not None and "protocol" in self.card:
            learned = self.card["protocol"] == POLICY
            self.policy = self.card[learned].reset_index(drop=True)
            self.card = self.card[~learned].reset_index(drop=True)
        for frame in (self.card, self.predictions, self.hedging):
            if frame is not None and len(frame) and "scenario" not in frame:
                frame["scenario"] = MARKET
        self.engines = self._engines()
        self.regime_order = self._regime_order()

    def _json(self, name: str) -> dict[str, Any] | None:
        file = self.folder / name
        try:
            payload = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.notes[name] = f"no {name} in {self.folder}"
            return None
        except (OSError, ValueError) as exc:
            self.notes[name] = f"{file} could not be read ({exc})"
            return None
        return payload if isinstance(payload, dict) else None

    def _parquet(self, name: str) -> pd.DataFrame | None:
        file = self.folder / name
        if not file.exists():
            self.notes[name] = f"no {name} in {self.folder}"
            return None
        try:
            return pd.read_parquet(file)
        except (OSError, ValueError) as exc:
            self.notes[name] = f"{file} could not be read ({exc})"
            return None

    def missing(self, name: str, what: str) -> str:
        """The sentence of a section whose input ``name`` is absent or empty."""
        why = self.notes.get(name, f"{name} has no rows")
        return f'<p class="missing">{html.escape(what)}: {html.escape(why)}.</p>'

    def _engines(self) -> list[str]:
        study = (self.about or {}).get("study", {})
        names = [str(e) for e in study.get("engines", {})]
        if self.card is not None and "engine" in self.card:
            names += [str(e) for e in pd.unique(self.card["engine"]) if str(e) not in names]
        return names

    def _regime_order(self) -> list[str]:
        """Regimes in order of first appearance in time (``regimes.parquet``), then the rest."""
        order: list[str] = []
        if self.regimes is not None and {"ts", "regime"} <= set(self.regimes):
            first = self.regimes.dropna(subset=["regime"]).sort_values("ts")["regime"]
            order = [str(r) for r in pd.unique(first)]
        if self.card is not None and "regime" in self.card:
            order += sorted({str(r) for r in self.card["regime"].dropna()} - set(order))
        return order

    @property
    def in_regime(self) -> str | None:
        regimes = (self.about or {}).get("study", {}).get("regimes", {})
        value = regimes.get("in_regime") if isinstance(regimes, dict) else None
        return str(value) if value is not None else None

    def engine_colour(self, engine: str) -> str:
        if engine == "bs":
            return "#7f7f7f"
        index = self.engines.index(engine) if engine in self.engines else len(self.engines)
        return ENGINE_COLOURS[index % len(ENGINE_COLOURS)]

    def regime_colour(self, regime: str) -> str:
        if regime in REGIME_COLOURS:
            return REGIME_COLOURS[regime]
        others = [r for r in self.regime_order if r not in REGIME_COLOURS]
        index = others.index(regime) if regime in others else len(others)
        return OTHER_REGIME_COLOURS[index % len(OTHER_REGIME_COLOURS)]

    def sort_regimes(self, regimes: Iterable[Any]) -> list[str]:
        present = {str(r) for r in regimes if not pd.isna(r)}
        ranked = [r for r in self.regime_order if r in present]
        return ranked + sorted(present - set(ranked))


def _figure_html(fig: Any, key: str) -> str:
    """A figure's div (plotly.js is in the page head once)."""
    return str(
        fig.to_html(
            full_html=False, include_plotlyjs=False, div_id=f"fig-{key}", config=PLOT_CONFIG
        )
    )


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def _format(value: Any, fmt: str, lo: Any = None, hi: Any = None) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "-"
    if fmt == "s":
        return html.escape(str(value))
    number = float(value)
    if not np.isfinite(number):
        return "-"
    if fmt == "int":
        return f"{number:,.0f}"
    if fmt == "pct":
        return f"{number * 100:.1f}%"
    if fmt == "gap":
        return f"{number:.2f} [{_format(lo, '.2f')}, {_format(hi, '.2f')}]"
    return format(number, fmt)


def _market(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["scenario"] == MARKET] if "scenario" in frame else frame


def _protocol_order(protocols: Iterable[Any]) -> list[str]:
    """nowcast, then forecast, then shock, then anything else; alphabetical within each."""
    rank = {"nowcast": 0, "forecast": 1, "shock": 2}
    return sorted({str(p) for p in protocols}, key=lambda p: (rank.get(p.split("-")[0], 3), p))


# -- 1. header ------------------------------------------------------------------------------


def _header(inputs: _Inputs) -> str:
    about = inputs.about
    if about is None:
        return inputs.missing("study.json", "No study description")
    study = about.get("study", {})
    regimes = study.get("regimes", {})
    versions = ", ".join(
        f"{lib} {about[lib]}" for lib in ("python", "numpy", "pandas") if lib in about
    )
    snapshots = about.get("snapshots", {})
    rows = [
        ("name", html.escape(str(study.get("name", "")))),
        ("data", _code(study.get("data", {}))),
        ("seed", html.escape(str(study.get("seed", "")))),
        ("engines", html.escape(", ".join(str(e) for e in study.get("engines", {})))),
        ("protocols", _code(study.get("protocols", {}))),
        ("regimes", _code(regimes)),
        ("stress", _code(study.get("stress") or "none")),
        (
            "snapshots",
            html.escape(", ".join(f"{u}: {n}" for u, n in snapshots.items()) or "-"),
        ),
        (
            "cells",
            f"{about.get('cells', '-')} ({about.get('cells_cached', 0)} read from the cache)",
        ),
        (
            "run",
            html.escape(
                f"{about.get('seconds', '-')} s on {about.get('executor', '-')} "
                f"with {about.get('workers', '-')} worker(s)"
            ),
        ),
        ("versions", html.escape(versions or "-")),
    ]
    cells = "\n".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="about">\n{cells}\n</table>'


def _code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return f"<code>{html.escape(text)}</code>"


# -- 2. scorecard ---------------------------------------------------------------------------


def scorecard_table(card: pd.DataFrame) -> str:
    """The scorecard as an HTML table: one ``<tr>`` per row in ``<tbody>``, sorted by scenario
    (market first), protocol, regime and engine; the row of the lowest IV RMSE per protocol,
    regime and scenario has class ``best``.

    Examples
    --------
    >>> card = pd.DataFrame({"engine": ["a", "b"], "protocol": ["p", "p"], "regime": ["calm"] * 2,
    ...                      "scenario": ["market"] * 2, "iv_rmse_vol_pts": [2.0, 1.0]})
    >>> table = scorecard_table(card)
    >>> table.count("<tr"), table.count('<tr class="best">')
    (3, 1)
    """
    columns = [c for c in COLUMNS if c in card and card[c].notna().any()]
    groups = [c for c in ("protocol", "regime", "scenario") if c in card]
    frame = card.reset_index(drop=True)
    if "iv_rmse_vol_pts" in frame:
        rmse = frame["iv_rmse_vol_pts"]
        best = (
            rmse == rmse.groupby([frame[g] for g in groups], dropna=False).transform("min")
            if groups
            else rmse == rmse.min()
        )
    else:
        best = pd.Series(False, index=frame.index)
    order = frame.assign(
        _market=frame["scenario"] != MARKET if "scenario" in frame else False,
        _protocol=frame["protocol"].map(
            {p: i for i, p in enumerate(_protocol_order(frame["protocol"]))}
        )
        if "protocol" in frame
        else 0,
    )
    keys = ["_market", "scenario", "_protocol", "regime", "engine"]
    frame = frame.loc[order.sort_values([k for k in keys if k in order], kind="stable").index]
    head = "".join(f"<th>{html.escape(COLUMNS[c][0])}</th>" for c in columns)
    body = []
    previous: tuple[Any, ...] | None = None
    for winner, (_, row) in zip(best.loc[frame.index], frame.iterrows(), strict=True):
        group = tuple(row[g] for g in groups)
        classes = [c for c, on in (("best", bool(winner)), ("group", group != previous)) if on]
        previous = group
        cls = f' class="{" ".join(classes)}"' if classes else ""
        cells = "".join(
            f"<td>{_format(row[c], 's')}</td>"
            if COLUMNS[c][1] == "s"
            else f'<td class="num">{_format(row[c], COLUMNS[c][1], *_interval(row, c))}</td>'
            for c in columns
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return (
        f'<table id="scorecard-table">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(body)
        + "\n</tbody>\n</table>"
    )


def _interval(row: pd.Series, column: str) -> tuple[Any, Any]:
    """The bounds shown with ``column`` (the generalization gap's bootstrap interval)."""
    if column != "gen_gap":
        return None, None
    return row.get("gen_gap_lo"), row.get("gen_gap_hi")


def _scorecard(inputs: _Inputs) -> str:
    card = inputs.card
    if card is None or card.empty:
        return inputs.missing("scorecard.parquet", "No scorecard")
    return (
        _note(
            "One row per engine, protocol, regime and scenario (<code>market</code>: the "
            "snapshots as they were). Bold: the lowest IV RMSE of its protocol, regime and "
            "scenario. Vol errors in vol points (0.01 of vol); half-spreads: error over the "
            "quote's half bid-ask spread in vol; gap: RMSE over the in-regime RMSE with its "
            "bootstrap interval; hedge errors in bp of the forward per option and step; variance "
            "reductions "
            "against Black-76 at the quote's vol (BS) and the minimum-variance delta (MV)."
        )
        + f'\n<div class="scroll">\n{scorecard_table(card)}\n</div>'
    )


# -- 3. generalization gap --------------------------------------------------------------------


def _skill(inputs: _Inputs) -> str:
    desk = inputs.desk
    if desk is None or desk.empty or "skill_naive" not in desk:
        return inputs.missing("desk.parquet", "No skill table")
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    core = _market(desk)
    core = core[(core["bucket"] == "core") & core["skill_naive"].notna()]
    if core.empty:
        return '<p class="missing">No skill table: no core quotes with a baseline.</p>'
    protocols = _protocol_order(core["protocol"])
    fig = make_subplots(rows=len(protocols), cols=1, subplot_titles=protocols)
    for row, protocol in enumerate(protocols, start=1):
        part = core[core["protocol"] == protocol]
        regimes = inputs.sort_regimes(part["regime"])
        engines = [e for e in inputs.engines if e in set(part["engine"])]
        engines += sorted(set(part["engine"]) - set(engines))
        grid = part.pivot_table(
            index="engine", columns="regime", values="skill_naive", aggfunc="first"
        )
        p = part.pivot_table(index="engine", columns="regime", values="dm_p_naive", aggfunc="first")
        grid, p = (g.reindex(index=engines, columns=regimes) for g in (grid, p))
        text = [
            [f"{_format(s, '+.0%')} (p {_format(q, '.2f')})" for s, q in zip(r, pr, strict=True)]
            for r, pr in zip(grid.to_numpy(), p.to_numpy(), strict=True)
        ]
        fig.add_trace(
            go.Heatmap(
                z=grid.to_numpy(),
                x=regimes,
                y=engines,
                text=text,
                texttemplate="%{text}",
                colorscale="RdBu",
                zmid=0.0,
                zmin=-1.0,
                zmax=1.0,
                showscale=row == 1,
                hovertemplate="%{y}<br>%{x}<br>skill %{z:.1%}<extra></extra>",
            ),
            row,
            1,
        )
    rows = sum(core[core["protocol"] == p]["engine"].nunique() for p in protocols)
    fig.update_layout(height=120 * len(protocols) + 30 * rows, margin={"t": 60})
    best = core.groupby(["protocol", "regime"])["best_naive"].first()
    named = ", ".join(sorted({str(b) for b in best}))
    return (
        _note(
            "Skill = 1 - RMSE / RMSE of the best naive baseline (median over snapshots of the "
            "per-snapshot RMSE, core quotes: expiry >= 2 days, |delta| in [0.1, 0.9]; "
            f"best here: {named}). Blue beats doing nothing, red loses to it; p is the "
            "Diebold-Mariano p-value over snapshots. The skill against the venue's mark is "
            "in desk.csv (skill, best_baseline); docs/lab.md defines every column."
        )
        + "\n"
        + _figure_html(fig, "skill")
    )


def _gap(inputs: _Inputs) -> str:
    card = inputs.card
    if card is None or card.empty:
        return inputs.missing("scorecard.parquet", "No generalization gap")
    if "gen_gap" not in card or card["gen_gap"].isna().all():
        return (
            '<p class="missing">No generalization gap: the study names no in-regime '
            "(<code>[regimes] in_regime</code>) or its data never reached it.</p>"
        )
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    gap = _market(card).dropna(subset=["gen_gap"])
    protocols = _protocol_order(gap["protocol"])
    fig = make_subplots(rows=1, cols=len(protocols), subplot_titles=protocols, shared_yaxes=True)
    for col, protocol in enumerate(protocols, start=1):
        part = gap[gap["protocol"] == protocol]
        for engine in [e for e in inputs.engines if e in set(part["engine"])]:
            rows = part[part["engine"] == engine].set_index("regime")
            rows = rows.loc[inputs.sort_regimes(rows.index)]
            fig.add_trace(
                go.Bar(
                    x=list(rows.index),
                    y=rows["gen_gap"],
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": rows["gen_gap_hi"] - rows["gen_gap"],
                        "arrayminus": rows["gen_gap"] - rows["gen_gap_lo"],
                    },
                    name=engine,
                    legendgroup=engine,
                    showlegend=col == 1,
                    marker_color=inputs.engine_colour(engine),
                ),
                1,
                col,
            )
        fig.add_hline(y=1.0, line_dash="dot", line_color="#555", row=1, col=col)
    fig.update_yaxes(title_text="RMSE / in-regime RMSE", row=1, col=1)
    fig.update_layout(barmode="group", height=420, margin={"t": 60})
    return (
        _note(
            f"IV RMSE in each regime over the in-regime ({html.escape(inputs.in_regime or '-')}) "
            "RMSE, market scenario; bars: 90% bootstrap intervals over snapshots. Above 1: the "
            "engine does worse out of regime."
        )
        + "\n"
        + _figure_html(fig, "gap")
    )


# -- 4. error by regime -----------------------------------------------------------------------


def _by_regime(inputs: _Inputs) -> str:
    card = inputs.card
    if card is None or card.empty or "iv_rmse_vol_pts" not in card:
        return inputs.missing("scorecard.parquet", "No errors by regime")
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    market = _market(card).dropna(subset=["iv_rmse_vol_pts"])
    if market.empty:
        return '<p class="missing">No errors by regime: the scorecard has no market rows.</p>'
    protocols = _protocol_order(market["protocol"])
    fig = make_subplots(rows=1, cols=len(protocols), subplot_titles=protocols)
    for col, protocol in enumerate(protocols, start=1):
        part = market[market["protocol"] == protocol]
        for engine in [e for e in inputs.engines if e in set(part["engine"])]:
            rows = part[part["engine"] == engine].set_index("regime")
            rows = rows.loc[inputs.sort_regimes(rows.index)]
            fig.add_trace(
                go.Bar(
                    x=list(rows.index),
                    y=rows["iv_rmse_vol_pts"],
                    name=engine,
                    legendgroup=engine,
                    showlegend=col == 1,
                    marker_color=inputs.engine_colour(engine),
                    customdata=rows[["n"]] if "n" in rows else None,
                    hovertemplate=f"{engine}<br>%{{x}}: %{{y:.2f}} vol pts"
                    + ("<br>%{customdata[0]:,.0f} quotes" if "n" in rows else "")
                    + "<extra></extra>",
                ),
                1,
                col,
            )
    fig.update_yaxes(title_text="IV RMSE (vol pts)", row=1, col=1)
    fig.update_layout(barmode="group", height=420, margin={"t": 60})
    return (
        _note("IV RMSE against the mid vol per engine and regime, market scenario.")
        + "\n"
        + _figure_html(fig, "regimes")
    )


def sweeps(engines: dict[str, dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The study's sweeps: ``(registered engine, setting) -> {study engine name: value}`` for
    every engine run under several names (aliases, ``engine = ...``) that differ in exactly one
    numeric setting (a missing value counts as the engine's default, shown as None).

    Examples
    --------
    >>> sweeps({"a": {"engine": "gbm", "half_life_days": 5.0}, "b": {"engine": "gbm"}})
    {('gbm', 'half_life_days'): {'a': 5.0, 'b': None}}
    """
    groups: dict[str, list[str]] = {}
    for name, settings in engines.items():
        groups.setdefault(str(settings.get("engine", name)), []).append(name)
    found = {}
    for base, names in groups.items():
        if len(names) < 2:
            continue
        keys = {k for n in names for k in engines[n] if k != "engine"}
        varying = [k for k in keys if len({repr(engines[n].get(k)) for n in names}) > 1]
        values = {n: engines[n].get(varying[0]) for n in names} if len(varying) == 1 else {}
        if values and all(v is None or isinstance(v, int | float) for v in values.values()):
            found[(base, varying[0])] = values
    return found


def _sweep(inputs: _Inputs) -> str:
    card = inputs.card
    engines = ((inputs.about or {}).get("study") or {}).get("engines") or {}
    found = sweeps(engines)
    if card is None or card.empty or not found:
        return (
            '<p class="missing">No sweep: no engine runs under several names that differ in '
            'one numeric setting (<code>"name" = { engine = "gbm", half_life_days = 5 }'
            "</code>).</p>"
        )
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    market = _market(card).dropna(subset=["iv_rmse_vol_pts"])
    protocols = _protocol_order(market["protocol"])
    titles = [f"{base}: {setting} ({p})" for base, setting in found for p in protocols]
    fig = make_subplots(rows=len(found), cols=len(protocols), subplot_titles=titles)
    for row, ((_, setting), values) in enumerate(found.items(), start=1):
        # None (the default, e.g. no decay) sorts last, drawn at the largest value times 2
        numbers = [v for v in values.values() if v is not None]
        default = 2 * max(numbers) if numbers else 1.0
        order = sorted(values, key=lambda n: values[n] if values[n] is not None else default)
        x = [values[n] if values[n] is not None else default for n in order]
        for col, protocol in enumerate(protocols, start=1):
            part = market[market["protocol"] == protocol]
            for regime in inputs.sort_regimes(part["regime"]):
                rows = part[part["regime"] == regime].set_index("engine")["iv_rmse_vol_pts"]
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=[rows.get(n, np.nan) for n in order],
                        mode="lines+markers",
                        name=str(regime),
                        legendgroup=str(regime),
                        line_color=inputs.regime_colour(str(regime)),
                        showlegend=row == 1 and col == 1,
                        text=order,
                        hovertemplate="%{text}<br>" + setting + " %{x}: %{y:.2f} vol pts"
                        "<extra>" + str(regime) + "</extra>",
                    ),
                    row,
                    col,
                )
            fig.update_xaxes(title_text=setting, type="log", row=row, col=col)
        fig.update_yaxes(title_text="IV RMSE (vol pts)", row=row, col=1)
    fig.update_layout(height=360 * len(found), margin={"t": 60})
    return (
        _note(
            "IV RMSE per regime against a setting swept over aliases of one engine, market "
            "scenario: for a half-life, short memory adapts to a new regime and is noisier in "
            "a calm one (the bias-variance trade-off). The engine's default (None) is drawn at "
            "twice the largest value."
        )
        + "\n"
        + _figure_html(fig, "sweep")
    )


# -- 5. smiles --------------------------------------------------------------------------------


def _chosen_snapshots(inputs: _Inputs, pred: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """A calm (in-regime, the middle one in time) and a stressed snapshot (in a crash regime
    if any, else anywhere: the highest ATM vol) among those with predictions."""
    regimes = inputs.regimes
    if regimes is None or regimes.empty or not {"underlying", "ts"} <= set(regimes):
        return []
    have = pd.MultiIndex.from_frame(pred[["underlying", "ts"]].drop_duplicates())
    rows = regimes[pd.MultiIndex.from_frame(regimes[["underlying", "ts"]]).isin(have)]
    rows = rows[rows["underlying"] == rows["underlying"].iloc[0]] if len(rows) else rows
    if rows.empty:
        return []
    chosen: list[tuple[str, pd.Series]] = []
    label = rows["regime"].astype("string") if "regime" in rows else pd.Series(pd.NA)
    calm = rows[label == (inputs.in_regime or "calm")].sort_values("ts")
    if len(calm):
        chosen.append(("calm", calm.iloc[len(calm) // 2]))
    stressed = rows[label == "crash"] if (label == "crash").any() else rows
    if "atm_30d" in stressed and stressed["atm_30d"].notna().any():
        pick = stressed.iloc[int(np.nanargmax(stressed["atm_30d"].to_numpy(float)))]
        if not chosen or pick["ts"] != chosen[0][1]["ts"]:
            chosen.append(("stressed", pick))
    return chosen


def _smiles(inputs: _Inputs) -> str:
    pred = inputs.predictions
    if pred is None or pred.empty:
        return inputs.missing("predictions.parquet", "No smiles")
    needed = {"underlying", "ts", "k", "t", "expiry", "mid_iv", "model_iv", "engine", "protocol"}
    if not needed <= set(pred):
        return f'<p class="missing">No smiles: predictions lack {sorted(needed - set(pred))}.</p>'
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    pred = _market(pred)
    protocols = _protocol_order(pred["protocol"])
    forecast = [p for p in protocols if p.startswith("forecast")]
    protocol = forecast[0] if forecast else protocols[0] if protocols else None
    pred = pred[pred["protocol"] == protocol]
    chosen = _chosen_snapshots(inputs, pred) if len(pred) else []
    if not chosen:
        return (
            '<p class="missing">No smiles: no labelled snapshot has predictions '
            f"({html.escape(inputs.notes.get('regimes.parquet', 'regimes.parquet empty'))}).</p>"
        )
    titles, panels = [], []
    for why, snap in chosen:
        quotes = pred[(pred["underlying"] == snap["underlying"]) & (pred["ts"] == snap["ts"])]
        expiries = quotes.groupby("expiry")["t"].first()
        expiry = (expiries - 30 / DAYS_PER_YEAR).abs().idxmin()
        quotes = quotes[quotes["expiry"] == expiry]
        days = float(expiries[expiry]) * DAYS_PER_YEAR
        atm = f", ATM 30d {snap['atm_30d'] * 100:.0f}%" if pd.notna(snap.get("atm_30d")) else ""
        titles.append(
            f"{why}: {snap['underlying']} {pd.Timestamp(snap['ts']):%Y-%m-%d %H:%M} "
            f"({snap.get('regime', '-')}{atm}), expiry {days:.0f} d"
        )
        panels.append(quotes)
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=titles)
    for col, quotes in enumerate(panels, start=1):
        market = quotes.drop_duplicates("instrument").sort_values("k")
        mid = market["mid_iv"] * 100
        two_sided = {"bid_iv", "ask_iv"} <= set(market)
        fig.add_trace(
            go.Scatter(
                x=market["k"],
                y=mid,
                mode="markers",
                name="market mid, bid-ask bars",
                legendgroup="market",
                showlegend=col == 1,
                marker={"color": "black", "size": 5},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": market["ask_iv"] * 100 - mid,
                    "arrayminus": mid - market["bid_iv"] * 100,
                    "color": "#888",
                }
                if two_sided
                else None,
                text=market.get("instrument"),
                hovertemplate="%{text}<br>k %{x:.3f}: mid %{y:.1f}%<extra></extra>",
            ),
            1,
            col,
        )
        for engine in [e for e in inputs.engines if e in set(quotes["engine"])]:
            line = quotes[quotes["engine"] == engine].drop_duplicates("k").sort_values("k")
            fig.add_trace(
                go.Scatter(
                    x=line["k"],
                    y=line["model_iv"] * 100,
                    mode="lines",
                    name=engine,
                    legendgroup=engine,
                    showlegend=col == 1,
                    line={"color": inputs.engine_colour(engine)},
                ),
                1,
                col,
            )
        fig.update_xaxes(title_text="k = ln(K/F)", row=1, col=col)
    fig.update_yaxes(title_text="implied vol (%)", row=1, col=1)
    fig.update_layout(height=480, margin={"t": 70})
    fig.update_annotations(font_size=12)
    return (
        _note(
            f"Protocol <code>{html.escape(str(protocol))}</code>, market scenario: each engine's "
            "implied vol against the quotes' mid vol, with bars from the bid to the ask vol, on "
            "the expiry nearest 30 days."
        )
        + "\n"
        + _figure_html(fig, "smiles")
    )


# -- 6. hedging -------------------------------------------------------------------------------


def _delta_names(inputs: _Inputs, steps: pd.DataFrame) -> list[str]:
    present = [str(c).removeprefix("delta_") for c in steps if str(c).startswith("delta_")]
    engines = [e for e in inputs.engines if e in present]
    learned = [d for d in LEARNED if d in present]  # [protocols] greeks
    return ["bs", *engines, *learned] if "bs" in present else [*engines, *learned]


def _hedging(inputs: _Inputs) -> str:
    steps = inputs.hedging
    if steps is None or steps.empty:
        return inputs.missing("hedging.parquet", "No hedging backtest")
    needed = {"d_value", "d_forward", "regime"}
    if not needed <= set(steps):
        return f'<p class="missing">No hedging: steps lack {sorted(needed - set(steps))}.</p>'
    import plotly.graph_objects as go

    steps = _market(steps)
    deltas = _delta_names(inputs, steps)
    if steps.empty or not deltas:
        return '<p class="missing">No hedging: no market-scenario steps with deltas.</p>'
    regimes = inputs.sort_regimes(steps["regime"])
    fig = go.Figure()
    table = []
    reach = 0.0  # the widest whisker, for the axis
    for name in deltas:
        # the hedge error of a delta column in bp of the forward (volguard.lab.hedging)
        err = (
            (steps["d_value"] - steps[f"delta_{name}"] * steps["d_forward"])
            / steps["forward"]
            * 1e4
        )
        # the boxes drawn from their quartiles and 1.5 IQR whiskers: a real study has
        # hundreds of thousands of steps, too many to embed (the tails are in the table)
        by_regime = err.groupby(steps["regime"])
        q1, median, q3 = (by_regime.quantile(q).reindex(regimes) for q in (0.25, 0.5, 0.75))
        lower = pd.concat([by_regime.min().reindex(regimes), q1 - 1.5 * (q3 - q1)], axis=1)
        upper = pd.concat([by_regime.max().reindex(regimes), q3 + 1.5 * (q3 - q1)], axis=1)
        reach = max(reach, float(np.nanmax(np.abs([lower.max(axis=1), upper.min(axis=1)]))))
        fig.add_trace(
            go.Box(
                x=regimes,
                q1=q1.tolist(),
                median=median.tolist(),
                q3=q3.tolist(),
                lowerfence=lower.max(axis=1).tolist(),
                upperfence=upper.min(axis=1).tolist(),
                name="Black-76 (bs)" if name == "bs" else GREEKS.get(name, name),
                offsetgroup=name,
                legendgroup=name,
                marker_color=inputs.engine_colour(name),
            )
        )
    for regime in regimes:
        group = steps[steps["regime"] == regime]
        present = [d for d in deltas if group[f"delta_{d}"].notna().any()]  # learned: later
        summary = hedge_summary(group, present)
        table.append(summary.assign(regime=regime))
    summary = pd.concat(table, ignore_index=True)
    fig.update_xaxes(categoryorder="array", categoryarray=regimes)
    fig.update_layout(
        boxmode="group",
        height=480,
        yaxis_title="hedge error (bp of the forward per option and step)",
    )
    if np.isfinite(reach) and reach > 0:
        fig.update_yaxes(range=[-1.1 * reach, 1.1 * reach])
    head = (
        "<tr><th>regime</th><th>delta</th><th>steps</th><th>sd (bp)</th>"
        "<th>CVaR95 (bp)</th><th>var. reduction vs BS</th></tr>"
    )
    rows = "\n".join(
        f"<tr><td>{_format(r.regime, 's')}</td>"
        f"<td>{_format(GREEKS.get(str(r.delta), str(r.delta)), 's')}</td>"
        f'<td class="num">{_format(r.n, "int")}</td>'
        f'<td class="num">{_format(r.hedge_err_std_bp, ".2f")}</td>'
        f'<td class="num">{_format(r.hedge_err_cvar95_bp, ".2f")}</td>'
        f'<td class="num">{_format(r.reduction_vs_bs, "pct")}</td></tr>'
        for r in summary.itertuples(index=False)
    )
    return (
        _note(
            "Hedge error of one option over one step, <code>d_value - delta * d_forward</code> "
            "in basis points of the forward (comparable across underlyings), market scenario, per "
            "regime and delta: Black-76 at the quote's vol (bs), each engine's sticky-strike "
            "delta and, with [protocols] greeks, the learned deltas (docs/greeks.md). CVaR95: the "
            "mean of the "
            "worst 5% after futures costs, as a loss. Boxes: quartiles, whiskers 1.5 IQR beyond "
            "them (or to the extreme error); the tails are in the CVaR column."
        )
        + "\n"
        + _figure_html(fig, "hedging")
        + f'\n<table id="hedging-table">\n<thead>{head}</thead>\n<tbody>\n{rows}\n</tbody>\n'
        "</table>"
    )


def _policy(inputs: _Inputs) -> str:
    rows = inputs.policy
    if rows is None or rows.empty:
        return (
            '<p class="missing">No learned hedging: the study has no policy_hedging protocol.</p>'
        )
    import plotly.graph_objects as go

    checks = rows[rows["engine"].astype(str).str.startswith("check:")]
    scores = rows[~rows.index.isin(checks.index)]
    figures = []
    for source, group in scores.groupby("scenario", sort=False):
        if group.reindex(columns=["pnl_q25_bp"]).isna().all().all():
            continue  # no P&L distribution (one-step hedges of real options)
        regimes = list(dict.fromkeys(group["regime"]))
        fig = go.Figure()
        for i, (strategy, g) in enumerate(group.groupby("engine", sort=False)):
            g = g.set_index("regime").reindex(regimes)
            # boxes from the reported percentiles: whiskers at the 5th and 95th
            fig.add_trace(
                go.Box(
                    x=regimes,
                    q1=g["pnl_q25_bp"].tolist(),
                    median=g["pnl_q50_bp"].tolist(),
                    q3=g["pnl_q75_bp"].tolist(),
                    lowerfence=g["pnl_q05_bp"].tolist(),
                    upperfence=g["pnl_q95_bp"].tolist(),
                    name=str(strategy),
                    offsetgroup=str(strategy),
                    marker_color=ENGINE_COLOURS[i % len(ENGINE_COLOURS)],
                )
            )
        fig.update_layout(
            boxmode="group",
            height=420,
            title=f"{source} paths",
            yaxis_title="terminal P&L (bp of notional)",
        )
        figures.append(_figure_html(fig, f"policy-{source}"))
    head = (
        "<tr><th>paths</th><th>regime</th><th>strategy</th><th>n</th><th>P&amp;L sd (bp)</th>"
        "<th>CVaR95 (bp) [95% CI]</th><th>mean cost (bp)</th><th>turnover</th></tr>"
    )
    body = "\n".join(
        f"<tr><td>{_format(r.scenario, 's')}</td><td>{_format(r.regime, 's')}</td>"
        f"<td>{_format(r.engine, 's')}</td>"
        f'<td class="num">{_format(r.n, "int")}</td>'
        f'<td class="num">{_format(r.pnl_std_bp, ".1f")}</td>'
        f'<td class="num">{_format(r.cvar95_bp, ".1f")} '
        f"[{_format(getattr(r, 'cvar95_bp_lo', None), '.1f')}, "
        f"{_format(getattr(r, 'cvar95_bp_hi', None), '.1f')}]</td>"
        f'<td class="num">{_format(r.mean_cost_bp, ".2f")}</td>'
        f'<td class="num">{_format(r.turnover, ".2f")}</td></tr>'
        for r in scores.itertuples(index=False)
    )
    verdicts = "\n".join(
        f"<tr><td>{_format(str(r.engine).removeprefix('check:'), 's')}</td>"
        f"<td>{_format(r.regime, 's')}</td><td>{_format(r.versus, 's')}</td>"
        f'<td class="num">{_format(r.gap_bp, ".1f")} '
        f"[{_format(r.gap_lo, '.1f')}, {_format(r.gap_hi, '.1f')}]</td>"
        f"<td>{'passed' if bool(r.passed) else 'not passed'}</td></tr>"
        for r in checks.itertuples(index=False)
    )
    return (
        _note(
            "Hedging policies (docs/hedging.md) trained on simulated paths and scored per regime "
            "against the baselines: the terminal P&amp;L of a hedged short option in basis points "
            "of notional (boxes: quartiles, whiskers at the 5th and 95th percentiles), and its "
            "risk with a bootstrap interval (deribit rows: one-step hedges of real options, "
            "bp of the forward per option and step). Checks: out_of_regime is the gated "
            "ensemble's CVaR95 minus the named baseline's (negative: the policy is better, "
            "passed within the tolerance); in_regime is Black-76's minus the gated ensemble's "
            "(positive: the policy is better)."
        )
        + "\n"
        + "\n".join(figures)
        + f'\n<div class="scroll"><table id="policy-table">\n<thead>{head}</thead>\n'
        f"<tbody>\n{body}\n</tbody>\n</table></div>\n"
        + '<table id="policy-checks"><thead><tr><th>check</th><th>regime</th><th>versus</th>'
        f"<th>gap (bp) [95% CI]</th><th>result</th></tr></thead>\n<tbody>\n{verdicts}\n"
        "</tbody>\n</table>"
    )


# -- 7. timeline ------------------------------------------------------------------------------


def _timeline(inputs: _Inputs) -> str:
    regimes = inputs.regimes
    if regimes is None or regimes.empty:
        return inputs.missing("regimes.parquet", "No regime timeline")
    needed = {"underlying", "ts", "atm_30d", "regime"}
    if not needed <= set(regimes):
        return f'<p class="missing">No timeline: regimes lack {sorted(needed - set(regimes))}.</p>'
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    underlyings = [str(u) for u in pd.unique(regimes["underlying"])]
    fig = make_subplots(
        rows=len(underlyings),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[f"{u}: 30-day ATM vol (%) and index (USD)" for u in underlyings],
        specs=[[{"secondary_y": True}] for _ in underlyings],
        vertical_spacing=0.08,
    )
    shown: set[str] = set()
    for row, underlying in enumerate(underlyings, start=1):
        frame = regimes[regimes["underlying"] == underlying].sort_values("ts")
        label = pd.Series(
            ["unlabelled" if pd.isna(r) else str(r) for r in frame["regime"]], index=frame.index
        )
        stamps = frame["ts"].tolist()
        starts = [i for i in range(len(stamps)) if i == 0 or label.iloc[i] != label.iloc[i - 1]]
        for first, stop in zip(starts, [*starts[1:], len(stamps) - 1], strict=True):
            regime = str(label.iloc[first])
            fig.add_vrect(
                x0=stamps[first],
                x1=stamps[stop],
                fillcolor=inputs.regime_colour(regime),
                opacity=0.12,
                line_width=0,
                layer="below",
                row=row,
                col=1,
                exclude_empty_subplots=False,
            )
        fig.add_trace(
            go.Scatter(
                x=frame["ts"],
                y=frame["atm_30d"] * 100,
                mode="lines",
                line={"color": "#444"},
                name="ATM 30d (%)",
                legendgroup="atm",
                showlegend=row == 1,
            ),
            row,
            1,
        )
        for regime in inputs.sort_regimes(label):
            at = frame[label == regime]
            fig.add_trace(
                go.Scatter(
                    x=at["ts"],
                    y=at["atm_30d"] * 100,
                    mode="markers",
                    marker={"color": inputs.regime_colour(regime), "size": 6},
                    name=f"regime: {regime}",
                    legendgroup=f"regime-{regime}",
                    showlegend=regime not in shown,
                ),
                row,
                1,
            )
            shown.add(regime)
        if "index_price" in frame:
            fig.add_trace(
                go.Scatter(
                    x=frame["ts"],
                    y=frame["index_price"],
                    mode="lines",
                    line={"color": "#1f77b4", "dash": "dot"},
                    name="index (USD)",
                    legendgroup="index",
                    showlegend=row == 1,
                ),
                row,
                1,
                secondary_y=True,
            )
        fig.update_yaxes(title_text="ATM 30d (%)", row=row, col=1, secondary_y=False)
        fig.update_yaxes(title_text="index (USD)", row=row, col=1, secondary_y=True)
    fig.update_layout(height=340 * len(underlyings) + 80, hovermode="x unified")
    return (
        _note("Regime labels of the study (shaded) over the market they were read from.")
        + "\n"
        + _figure_html(fig, "timeline")
    )


# -- 8. stress --------------------------------------------------------------------------------


def _heatmap(frame: pd.DataFrame, value: str, engines: list[str], columns: list[str]) -> Any:
    import plotly.graph_objects as go

    grid = frame.pivot_table(index="engine", columns="column", values=value, aggfunc="first")
    grid = grid.reindex(index=[e for e in engines if e in grid.index], columns=columns)
    text = [[_format(v, ".2f") for v in row] for row in grid.to_numpy()]
    return go.Heatmap(
        z=grid.to_numpy(),
        x=list(grid.columns),
        y=list(grid.index),
        text=text,
        texttemplate="%{text}",
        colorscale="Reds",
        showscale=False,
        hovertemplate="%{y}<br>%{x}<br>%{z:.2f}<extra></extra>",
    )


def _stress(inputs: _Inputs) -> str:
    card = inputs.card
    if card is None or card.empty:
        return inputs.missing("scorecard.parquet", "No stress results")
    stressed = card[card["scenario"] != MARKET]
    if stressed.empty:
        return (
            '<p class="missing">No stress results: the study has no <code>[stress]</code> '
            "scenarios.</p>"
        )
    from plotly.subplots import make_subplots

    scenarios = [str(s) for s in pd.unique(stressed["scenario"])]
    every = (inputs.about or {}).get("study", {}).get("stress", {}).get("every", 1)

    def label(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(column=frame["scenario"].astype(str) + " / " + frame["regime"])

    panels: list[tuple[str, pd.DataFrame, str]] = []
    for protocol in _protocol_order(stressed["protocol"]):
        part = stressed[stressed["protocol"] == protocol]
        # the market baseline of the same question: the nowcast itself, or for the shock the
        # forecast of unstressed snapshots
        kind = "forecast" if protocol == "shock" else protocol
        base = card[(card["scenario"] == MARKET) & (card["protocol"].str.startswith(kind))]
        base_name = str(base["protocol"].iloc[0]) if len(base) else ""
        base = base[base["protocol"] == base_name]
        title = f"{protocol}: IV RMSE (vol pts)" + (
            f"; market: {base_name}" if base_name and base_name != protocol else ""
        )
        panels.append((title, label(pd.concat([base, part])), "iv_rmse_vol_pts"))
    if "hedge_err_std_bp" in card and stressed["hedge_err_std_bp"].notna().any():
        hedge = card.drop_duplicates(["engine", "regime", "scenario"])
        panels.append(("hedge error sd (bp of the forward)", label(hedge), "hedge_err_std_bp"))
    fig = make_subplots(rows=len(panels), cols=1, subplot_titles=[p[0] for p in panels])
    for row, (_, frame, value) in enumerate(panels, start=1):
        regimes = inputs.sort_regimes(frame["regime"])
        columns = [
            f"{s} / {r}"
            for s in [MARKET, *scenarios]
            for r in regimes
            if f"{s} / {r}" in set(frame["column"])
        ]
        fig.add_trace(_heatmap(frame, value, inputs.engines, columns), row, 1)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=230 * len(panels) + 60, margin={"t": 60})
    return (
        _note(
            "Per engine, scenario and regime of the stressed snapshot. Nowcast: fitted and "
            "scored on the stressed quotes; shock: fitted before the stress, scored on the "
            "stressed quotes (its market column is the unstressed forecast); hedge error sd of "
            "the step across the stress. Market columns: every snapshot; stressed ones: "
            f"every {html.escape(str(every))} snapshot(s). Darker is worse within a panel."
        )
        + "\n"
        + _figure_html(fig, "stress")
    )
