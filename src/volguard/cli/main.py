"""The ``volguard`` command line: ``demo``, ``ingest``, ``fetch ...``, ``data ...``, ``fit``,
``simulate``, ``sim ...``, ``stress``, ``adversarial``, ``guard ...``, ``serve``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from volguard import __version__
from volguard.cli._common import (
    OneLineGroup,
    check_out,
    check_store,
    check_time,
    err,
    fail,
    number,
    out,
    progress,
    records,
    run,
)
from volguard.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from volguard.data.ingest import IngestSummary
    from volguard.guard.runtime import Guard
    from volguard.models import SurfaceEngine

# The registries' names, spelt out so that --help needs no numerical import
# (tests/cli/test_registries.py holds them equal to the registries).
FORMATS: tuple[str, ...] = ("csv", "deribit-api", "deribit-snapshot", "optionsdx", "quotes")
FORMATS += ("tardis", "tardis-smiles")
FIT_ENGINES: tuple[str, ...] = ("black76-flat", "svi", "svi-plain", "svi-surface", "ssvi")
FIT_ENGINES += ("essvi", "sabr", "heston", "bates", "gp", "ensemble", "conformal")
"""The engines ``fit`` can fit from one snapshot (the learned ones need a study's training)."""
LEARNED = ("gbm", "nn", "hybrid")
PRESET_NAMES = ("calm-2026-01", "crash-2026-02", "markov", "calm-then-crash")
SCENARIO_NAMES: tuple[str, ...] = ("crunch-mild", "crunch-severe", "vol-up-20", "vol-crush")
SCENARIO_NAMES += ("skew-twist", "corr-flip", "jump-down-15", "stale-30pct")
SCENARIO_NAMES += ("basis-dislocation", "crash-combo")


def _version(value: bool) -> None:
    if value:
        out.print(f"volguard {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=OneLineGroup,
    help="volguard: crypto option pricing engines that know how far they can be trusted.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """volguard: crypto option pricing engines that know how far they can be trusted."""


data_app = typer.Typer(help="Inspect a quote store.", no_args_is_help=True)
app.add_typer(data_app, name="data")
fetch_app = typer.Typer(
    help="Download raw market data (Tardis.dev samples, Deribit chains).", no_args_is_help=True
)
app.add_typer(fetch_app, name="fetch")
sim_app = typer.Typer(help="Calibrate the market simulator to real data.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")
guard_app = typer.Typer(help="Run the guard over quotes.", no_args_is_help=True)
app.add_typer(guard_app, name="guard")

StoreOpt = Annotated[Path, typer.Option("--store", help="Quote store folder.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output folder.")]
DEFAULT_DATA = Path(os.environ.get("VOLGUARD_DATA", "../shared/data"))
PACKAGED_PRESETS = Path(__file__).resolve().parents[1] / "sim" / "presets"
UnderlyingOpt = Annotated[str, typer.Option(help="BTC, ETH, ...")]
AtOpt = Annotated[
    str, typer.Option(help="Time (ISO 8601, UTC); the nearest snapshot within a day is used.")
]
FromOpt = Annotated[str | None, typer.Option("--from", help="First time (ISO 8601, UTC).")]
ToOpt = Annotated[
    str | None,
    typer.Option("--to", help="Last time (ISO 8601, UTC), inclusive: a date alone keeps its day."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _expand(patterns: list[str]) -> list[Path]:
    """Expand globs the shell left alone; a pattern matching nothing is kept (and fails loudly)."""
    import glob

    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if any(ch in pattern for ch in "*?[") else []
        paths.extend(Path(m) for m in matches or [pattern])
    return paths


def _engine(name: str, option: str = "ENGINE", **settings: Any) -> SurfaceEngine:
    """A registered engine that a single snapshot can fit, or a one-line error."""
    if name not in FIT_ENGINES:
        learned = (
            " (it needs training: use it in a study)" if name in ("gbm", "nn", "hybrid") else ""
        )
        raise fail(
            f"{option}: engine {name!r} is unknown{learned}; expected one of "
            f"{', '.join(FIT_ENGINES)}"
        )
    from volguard.models import make_engine

    return make_engine(name, **settings)


def _print_ingest(summary: IngestSummary, as_json: bool) -> None:
    from rich.table import Table

    if as_json:
        out.print_json(data=summary.to_dict())
        return
    table = Table(title="ingest", show_header=False)
    for key in ("files_read", "files_skipped", "rows_read", "rows_clean", "rows_quarantined"):
        table.add_row(key, f"{getattr(summary, key):,}")
    for reason, n in summary.quarantine_by_reason.items():
        table.add_row(f"  quarantined: {reason}", f"{n:,}")
    for flag, n in summary.flags.items():
        table.add_row(f"  flagged (kept): {flag}", f"{n:,}")
    out.print(table)


@app.command("ingest")
def ingest_command(
    files: Annotated[list[str], typer.Argument(help="Input files (globs fine).")],
    fmt: Annotated[str, typer.Option("--format", help=f"One of: {', '.join(FORMATS)}.")],
    store: StoreOpt,
    mapping: Annotated[
        Path | None, typer.Option(help="Column mapping (TOML) for --format csv.")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Parallel parser processes.")] = min(
        2, os.cpu_count() or 1
    ),
    as_json: JsonOpt = False,
) -> None:
    """Ingest option-quote files into a store; bad rows go to quarantine with a reason."""
    paths = _expand(files)
    if fmt not in FORMATS:
        raise fail(f"--format: format {fmt!r} is unknown; expected one of {', '.join(FORMATS)}")
    if store.exists() and not store.is_dir():
        raise fail(f"--store {store}: a file, not a store folder")
    check_out(store, "--store")

    def action() -> IngestSummary:
        from volguard.data.ingest import ingest
        from volguard.data.loaders.mapped_csv import make_mapped_csv_loader
        from volguard.data.store import open_store

        loader = make_mapped_csv_loader(mapping) if mapping is not None else None
        quotes = open_store(store)
        with progress(len(paths), f"ingest {fmt}", enabled=not as_json) as advance:
            return ingest(quotes, paths, fmt, loader=loader, workers=workers, progress=advance)

    _print_ingest(run(action), as_json)


@data_app.command("summary")
def summary_command(store: StoreOpt, as_json: JsonOpt = False) -> None:
    """Per underlying and date: snapshots, quotes, expiries, one-sided and quarantined rows."""
    from volguard.data.store import open_store

    frame = run(lambda: open_store(check_store(store)).summary())
    if as_json:
        out.print_json(data=records(frame))
        return
    from rich import box
    from rich.table import Table

    table = Table(title=f"store {store}", box=box.SIMPLE, show_edge=False, collapse_padding=True)
    for column in frame.columns:
        table.add_column(
            column,
            justify="left" if column in ("underlying", "date") else "right",
            no_wrap=True,
            min_width=len(column),
        )
    for row in frame.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    out.print(table)


@data_app.command("snapshot")
def snapshot_command(
    store: StoreOpt,
    underlying: UnderlyingOpt,
    at: AtOpt,
    as_json: JsonOpt = False,
) -> None:
    """The snapshot nearest a time: forward and quote counts per expiry."""
    from volguard.data.store import open_store

    when = check_time(at, "--at")
    snap = run(lambda: open_store(check_store(store)).snapshot_at(underlying.upper(), when))
    per_expiry = (
        snap.quotes.groupby("expiry")
        .agg(
            forward=("forward", "median"),
            quotes=("strike", "size"),
            strikes=("strike", "nunique"),
            median_mark_iv=("mark_iv", "median"),
        )
        .reset_index()
    )
    if as_json:
        out.print_json(
            data={
                "underlying": snap.underlying,
                "ts": snap.ts.isoformat(),
                "expiries": records(per_expiry),
            }
        )
        return
    from rich.table import Table

    table = Table(title=repr(snap))
    for column in per_expiry.columns:
        table.add_column(column, justify="right")
    for row in per_expiry.itertuples(index=False):
        table.add_row(
            f"{row.expiry:%Y-%m-%d %H:%M}",
            f"{row.forward:,.2f}",
            str(row.quotes),
            str(row.strikes),
            f"{row.median_mark_iv:.4f}",
        )
    out.print(table)


@fetch_app.command("tardis")
def fetch_tardis_command(
    day: Annotated[str, typer.Option(help="The 1st of a month, YYYY-MM-01 (free sample days).")],
    dest: Annotated[Path, typer.Option(help="Folder to write into.")] = Path("data/raw"),
    base_url: Annotated[str, typer.Option(help="Tardis datasets base URL.")] = (
        "https://datasets.tardis.dev/v1"
    ),
    thin_every: Annotated[
        float,
        typer.Option(
            help="Keep the last update per option every N seconds (0: keep the whole ~2 GB file)."
        ),
    ] = 3600.0,
) -> None:
    """Download Tardis.dev's free Deribit options_chain day file (thinned to hourly by default)."""
    from volguard.data.fetch import fetch_tardis_sample
    from volguard.data.loaders.tardis_chain import thin_options_chain

    check_out(dest, "--dest")
    raw = run(lambda: fetch_tardis_sample(day, dest, base_url=base_url))
    if thin_every <= 0:
        out.print(f"wrote {raw}")
        return
    thin_path = raw.with_name(raw.name.replace(".csv.gz", f".every{int(thin_every)}s.csv.gz"))
    result = run(lambda: thin_options_chain(raw, thin_path, every_s=thin_every))
    raw.unlink()
    out.print(
        f"wrote {result.path}: {result.rows_out:,} of {result.rows_in:,} rows kept "
        f"(last update per option every {thin_every:g} s)"
    )


@fetch_app.command("deribit")
def fetch_deribit_command(
    currency: Annotated[str, typer.Option(help="BTC, ETH, ...")] = "BTC",
    dest: Annotated[Path, typer.Option(help="Folder to write into.")] = Path("data/raw"),
    base_url: Annotated[str, typer.Option(help="Deribit API base URL.")] = (
        "https://www.deribit.com/api/v2"
    ),
) -> None:
    """Snapshot Deribit's live option chain over the public REST API (format deribit-api)."""
    from volguard.data.fetch import fetch_deribit_chain

    check_out(dest, "--dest")
    path = run(lambda: fetch_deribit_chain(currency.upper(), dest, base_url=base_url))
    out.print(f"wrote {path}")


@app.command("demo")
def demo_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("runs/demo"),
    days: Annotated[float, typer.Option(min=0.5, help="Days simulated.")] = 40.0,
    seed: Annotated[int, typer.Option(help="Seed of the simulation.")] = 0,
    wide: Annotated[bool, typer.Option("--wide", help="Every scorecard column.")] = False,
) -> None:
    """Simulate 30 calm days, a 7-day crash and what follows (BTC and ETH, the calibrated
    presets), ingest the quotes into a store, score five engines across the regimes labelled
    from the market (a study on the store's BTC snapshots), and write the report (no data
    needed)."""
    check_out(out_dir)

    def action() -> tuple[dict[str, IngestSummary], pd.DataFrame]:
        from volguard.data.ingest import build_store
        from volguard.lab.study import Study, run_study
        from volguard.sim import preset, simulate

        result = simulate(preset("calm-then-crash"), days=days, freq="6h", seed=seed)
        quotes, truth = result.write(out_dir / "sim")[:2]
        summaries = build_store(out_dir / "store", [("quotes", quotes)])
        study = Study(
            name="demo",
            data={"store": str(out_dir / "store"), "underlying": "BTC", "truth": str(truth)},
            engines={name: {} for name in ("black76-flat", "svi", "ssvi", "essvi", "sabr")},
            protocols={
                "nowcast": {"mode": "wings"},
                "forecast": {"horizon": 1},
                "hedging": True,
                "greeks": {},  # the learned deltas beside the engines' (docs/greeks.md)
            },
            regimes={"method": "rules", "in_regime": "calm"},
            stress={"scenarios": ["vol-up-20", "crash-combo"], "every": 10},
            seed=seed,
        )
        return summaries, run_study(study, out_dir / "study", workers=min(2, os.cpu_count() or 1))

    summaries, card = run(action)
    from volguard.data.files import write_atomic
    from volguard.data.store import open_store
    from volguard.report.store_report import store_report_json, store_report_markdown
    from volguard.report.study_html import write_study_report
    from volguard.report.study_report import scorecard_markdown

    for fmt, summary in summaries.items():
        out.rule(f"ingest {fmt}")
        _print_ingest(summary, as_json=False)
    contents = open_store(out_dir / "store").summary()
    write_atomic(out_dir / "summary.json", store_report_json(summaries, contents))
    text = store_report_markdown(summaries, contents) + "\n" + scorecard_markdown(card)
    report = write_atomic(out_dir / "report.md", text)
    _print_scorecard(card, out_dir / "study" / "scorecard.csv", wide)
    out.print(f"report: {report}")
    out.print(f"report: {write_study_report(out_dir / 'study')}")


@app.command("fit")
def fit_command(
    engine: Annotated[str, typer.Argument(help=f"One of: {', '.join(FIT_ENGINES)}.")],
    store: StoreOpt,
    underlying: UnderlyingOpt,
    at: AtOpt,
    out_dir: OutOpt,
    weighting: Annotated[str, typer.Option(help="vega, spread, open_interest or none.")] = "vega",
    grid: Annotated[str, typer.Option(help="Surface k grid START:STOP:STEP.")] = "-1.5:1.0:0.01",
) -> None:
    """Fit an engine to one snapshot; write params.json, fit.json and surface.parquet."""
    if weighting not in ("vega", "spread", "open_interest", "none"):
        raise fail(f"--weighting {weighting!r}: expected vega, spread, open_interest or none")
    k = _grid(grid)
    when = check_time(at, "--at")
    check_store(store)
    check_out(out_dir)
    model = _engine(engine, weighting=weighting)

    def action() -> tuple[SurfaceEngine, list[Path], float]:
        from volguard.cli.warmup import compile_timer
        from volguard.data.store import open_store
        from volguard.models.base import FIT_ERRORS
        from volguard.report.fit_report import write_fit

        snap = open_store(store).snapshot_at(underlying.upper(), when)
        with compile_timer(err) as compile_s:
            try:
                model.fit(snap)
            except FIT_ERRORS as exc:  # a failed fit, said in one line
                raise fail(f"{engine} cannot fit {snap!r}: {exc}") from exc
        return model, write_fit(model, out_dir, k), compile_s[0] * 1e3

    model, paths, compile_ms = run(action)
    from rich.table import Table

    summary = model.result_.summary()
    summary["fit_ms"] -= compile_ms  # the engine's clock ran through the compilation too
    table = Table(
        title=f"{engine} on {underlying.upper()} at {model.ts_.isoformat()}", show_header=False
    )
    keys = ("n_quotes", "rmse_vol_pts", "mae_half_spreads", "inside_spread_pct", "fit_ms")
    for key in (*keys, "converged", "fallback"):
        value = summary[key]
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    if compile_ms > 0:
        table.add_row("compile_ms (first run only)", f"{compile_ms:.0f}")
    arb = model.result_.arbitrage
    table.add_row(
        "arbitrage (butterfly / calendar / bounds)",
        f"{arb.butterfly_count} / {arb.calendar_count} / {arb.bounds_count}",
    )
    out.print(table)
    for warning in model.result_.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    out.print("wrote " + ", ".join(str(p) for p in paths))


def _grid(grid: str) -> Any:
    """``START:STOP:STEP`` as the k grid, or a one-line error."""
    import numpy as np

    try:
        start, stop, step = (float(x) for x in grid.split(":"))
    except ValueError as exc:
        raise fail(f"--grid {grid!r}: expected START:STOP:STEP, three numbers") from exc
    if not (step > 0 and stop > start) or (stop - start) / step > 100_000:
        raise fail(f"--grid {grid!r}: expected START < STOP and 0 < STEP, at most 1e5 points")
    return np.round(np.arange(start, stop + step / 2, step), 10)


@app.command("warmup")
def warmup_command() -> None:
    """Compile every numerical kernel now (12-23 s once per install), so that no later command
    pays it."""
    from volguard.cli.warmup import warm_all

    seconds = warm_all(err)
    out.print(
        f"compiled the numerical kernels in {seconds:.1f} s"
        if seconds > 0
        else "the numerical kernels were already compiled"
    )


@app.command("simulate")
def simulate_command(
    scenario: Annotated[
        str, typer.Argument(help=f"A preset ({', '.join(PRESET_NAMES)}) or a scenario TOML file.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (replaced).")],
    days: Annotated[float, typer.Option(help="Length of the run, days.")] = 7.0,
    freq: Annotated[str, typer.Option(help="Snapshot interval (pandas offset: 1h, 15min).")] = "1h",
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
) -> None:
    """Simulate a regime-switching market: quotes, truth and path as Parquet in --out."""
    check_out(out_dir)

    def action() -> tuple[Any, list[Path]]:
        from volguard.sim import load_scenario, simulate

        try:
            result = simulate(load_scenario(scenario), days, freq, seed)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        return result, result.write(out_dir)

    result, files = run(action)
    from rich import box
    from rich.table import Table

    table = Table(title=f"simulate {result.scenario.name} (seed {seed})", box=box.SIMPLE)
    for column in ("underlying", "snapshots", "quotes", "truth rows", "spot", "regimes"):
        table.add_column(column, justify="left" if column in ("underlying", "regimes") else "right")
    for name, path in result.path.groupby("underlying", sort=False):
        regimes = path["regime"].astype(str).value_counts(sort=False)
        table.add_row(
            str(name),
            f"{len(path):,}",
            f"{int((result.quotes['underlying'] == name).sum()):,}",
            f"{int((result.truth['underlying'] == name).sum()):,}",
            f"{path['spot'].iloc[0]:,.0f} -> {path['spot'].iloc[-1]:,.0f}",
            ", ".join(f"{r} {n}" for r, n in regimes.items() if n),
        )
    out.print(table)
    for path in files:
        out.print(f"wrote {path}")


@sim_app.command("calibrate")
def sim_calibrate_command(
    data: Annotated[
        Path, typer.Option(help="The shared data folder (deribit-svcj-snapshots, binance-...).")
    ] = DEFAULT_DATA,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder of regimes.json and liquidity.json.")
    ] = PACKAGED_PRESETS,
    per_window: Annotated[int, typer.Option(min=1, help="Snapshots fitted per regime window.")] = 8,
) -> None:
    """Fit the simulator's regimes and liquidity to the real Deribit windows and Binance returns."""
    snapshots = sorted((data / "deribit-svcj-snapshots" / "snapshots").glob("*.csv.gz"))
    if not snapshots:
        raise fail(f"--data {data}: no Deribit snapshots under it (deribit-svcj-snapshots)")
    check_out(out_dir)

    def action() -> list[Path]:
        import tempfile

        from volguard.data.files import write_atomic
        from volguard.data.ingest import build_store
        from volguard.data.store import open_store
        from volguard.sim.calibrate import calibrate, calibration_json
        from volguard.sim.liquidity_presets import fit_presets, liquidity_json

        with tempfile.TemporaryDirectory() as tmp:
            build_store(Path(tmp) / "store", [("deribit-snapshot", p) for p in snapshots])
            result = calibrate(
                open_store(Path(tmp) / "store"),
                data / "binance-btc-eth-hourly-2020-2024",
                per_window=per_window,
                progress=lambda line: err.print(line),
            )
        err.print("liquidity: fitting every window")
        liquidity = liquidity_json(fit_presets(data))
        return [
            write_atomic(out_dir / "regimes.json", calibration_json(result)),
            write_atomic(out_dir / "liquidity.json", liquidity),
        ]

    for path in run(action):
        out.print(f"wrote {path}")


def _stress_scenario(name: str) -> Any:
    """A library scenario by name, or ``FILE.toml`` (one scenario) / ``FILE.toml:NAME``."""
    from volguard.sim.stress_library import LIBRARY, load_scenario_toml

    if name in LIBRARY:
        return LIBRARY[name]
    path, _, wanted = name.partition(":")
    if not Path(path).is_file():
        raise ConfigError(
            f"{name}: not a library scenario ({', '.join(LIBRARY)}) nor a scenario TOML file"
        )
    found = load_scenario_toml(path)
    if wanted:
        if wanted not in found:
            raise ConfigError(f"{path}: no scenario {wanted!r}; it defines {sorted(found)}")
        return found[wanted]
    if len(found) != 1:
        raise ConfigError(f"{path} defines {sorted(found)}; pick one with {path}:NAME")
    return next(iter(found.values()))


@app.command("stress")
def stress_command(
    scenario: Annotated[
        str,
        typer.Argument(
            help=f"A library scenario ({', '.join(SCENARIO_NAMES)}) or FILE.toml[:NAME]."
        ),
    ],
    store: StoreOpt,
    underlying: UnderlyingOpt,
    at: AtOpt,
    out_dir: OutOpt,
    seed: Annotated[int, typer.Option(help="Seed of the quote transforms.")] = 0,
) -> None:
    """Stress a stored snapshot: stressed quotes, the true stressed surface, its arbitrage check."""
    when = check_time(at, "--at")
    check_store(store)
    check_out(out_dir)
    chosen = run(lambda: _stress_scenario(scenario))

    def action() -> tuple[Any, list[Path]]:
        import json

        from volguard.data.files import parquet_bytes, write_atomic
        from volguard.data.store import open_store
        from volguard.sim.stress import stress

        snap = open_store(store).snapshot_at(underlying.upper(), when)
        result = stress(snap, chosen, seed=seed)
        report = {
            "scenario": result.scenario.name,
            "params": result.scenario.params,
            "base_ts": str(snap.ts),
            "seed": seed,
            "arbitrage": result.arbitrage.to_dict(),
        }
        return result, [
            write_atomic(out_dir / "quotes.parquet", parquet_bytes(result.snapshot.quotes)),
            write_atomic(out_dir / "truth.parquet", parquet_bytes(result.truth)),
            write_atomic(out_dir / "stress.json", json.dumps(report, indent=2) + "\n"),
        ]

    result, files = run(action)
    truth = result.truth
    out.print(
        f"{result.scenario.name}: {int(truth['visible'].sum()):,} of {len(truth):,} quotes "
        f"visible, {int(truth['stale'].sum()):,} stale; static-arbitrage violations of the "
        f"stressed surface: {result.arbitrage.total}"
    )
    for path in files:
        out.print(f"wrote {path}")


OBJECTIVES = {"iv_rmse": "vol points", "price_rmse": "USD per unit of underlying"}
OBJECTIVES["hedge_rmse"] = "USD per unit of underlying"
"""The adversarial objectives and the unit of their error."""


@app.command("adversarial")
def adversarial_command(
    engine: Annotated[str, typer.Argument(help=f"One of: {', '.join(FIT_ENGINES)}.")],
    store: StoreOpt,
    underlying: UnderlyingOpt,
    at: AtOpt,
    out_dir: OutOpt,
    objective: Annotated[str, typer.Option(help="iv_rmse, price_rmse or hedge_rmse.")] = "iv_rmse",
    seed: Annotated[int, typer.Option(help="Seed of the search.")] = 0,
    maxiter: Annotated[int, typer.Option(min=1, help="Differential-evolution generations.")] = 8,
) -> None:
    """Search the stress box for the scenario that maximises an engine's error."""
    if objective not in OBJECTIVES:
        raise fail(f"--objective {objective!r}: expected one of {', '.join(OBJECTIVES)}")
    when = check_time(at, "--at")
    check_store(store)
    check_out(out_dir)
    model = _engine(engine)

    def action() -> tuple[Any, list[Path]]:
        import json

        from volguard.data.files import parquet_bytes, write_atomic
        from volguard.data.store import open_store
        from volguard.sim.adversarial import adversarial_search
        from volguard.sim.stress_library import LIBRARY

        snap = open_store(store).snapshot_at(underlying.upper(), when)
        result = adversarial_search(
            model,
            snap,
            objective=objective,  # type: ignore[arg-type]
            baselines=LIBRARY,
            seed=seed,
            maxiter=maxiter,
        )
        report = {
            "engine": engine,
            "objective": objective,
            "unit": OBJECTIVES[objective],
            "base_ts": str(snap.ts),
            "seed": seed,
            "worst_params": result.worst_params,
            "worst_error": result.worst_error,
            "baselines": result.baselines,
            "elapsed_s": result.elapsed_s,
        }
        return result, [
            write_atomic(out_dir / "path.parquet", parquet_bytes(result.path)),
            write_atomic(out_dir / "adversarial.json", json.dumps(report, indent=2) + "\n"),
        ]

    result, files = run(action)
    named, unit = result.worst_baseline, OBJECTIVES[objective]
    out.print(
        f"{engine}, {objective}: worst case found {result.worst_error:.4g} {unit} after "
        f"{len(result.path)} evaluations ({result.elapsed_s:.1f} s); worst named scenario: "
        + (f"{named[0]} {named[1]:.4g} {unit}" if named else "none")
    )
    for path in files:
        out.print(f"wrote {path}")


@app.command("study")
def study_command(
    config: Annotated[Path, typer.Argument(help="The study TOML file (docs/lab.md).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (its cache is reused).")],
    workers: Annotated[
        int, typer.Option(min=1, help="Processes (or Ray CPUs) running the cells.")
    ] = min(2, os.cpu_count() or 1),
    executor: Annotated[str, typer.Option(help="local (a process pool) or ray.")] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (auto, ray://host:10001).")
    ] = None,
    wide: Annotated[bool, typer.Option("--wide", help="Every scorecard column.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a study: every engine x protocol x regime x scenario to scorecard.csv, resumable
    (the terminal shows the unstressed market's rows)."""
    from volguard.lab.study import Study

    study = run(lambda: Study.from_toml(config))
    check_out(out_dir)

    def action() -> pd.DataFrame:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from volguard.lab.study import run_study

        columns = (TextColumn(f"study {study.name}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, TimeElapsedColumn(), console=err, transient=True) as bar:
            task = bar.add_task("cells", total=None)

            def advance(finished: int, total: int) -> None:
                bar.update(task, completed=finished, total=total)

            return run_study(
                study,
                out_dir,
                workers=workers,
                executor=executor,
                address=address,
                progress=advance,
            )

    card = run(action)
    if as_json:
        out.print_json(data=records(card))
        return
    from volguard.report.study_html import write_study_report

    _print_scorecard(card, out_dir / "scorecard.csv", wide)
    out.print(f"report: {write_study_report(out_dir)}")


SCORECARD = {  # column -> (header, shown in 80 columns)
    "engine": ("engine", True),
    "protocol": ("protocol", True),
    "regime": ("regime", True),
    "snap_iv_rmse_vol_pts": ("RMSE", True),
    "snap_inside_pct": ("inside%", False),
    "skill_naive": ("skill", True),
    "skill": ("vs all", False),
    "iv_rmse_vol_pts": ("pooled", False),
    "gen_gap": ("gap", True),
    "hedge_err_std_bp": ("hedge sd bp", True),
}


def _print_scorecard(card: pd.DataFrame, path: Path, wide: bool = False) -> None:
    from rich import box
    from rich.table import Table

    stressed = int((card["scenario"] != "market").sum())
    card = card[card["scenario"] == "market"]
    columns = [c for c, (_, narrow) in SCORECARD.items() if c in card and (wide or narrow)]
    table = Table(
        title=f"scorecard: {path}",
        caption="RMSE: median over snapshots, vol points, core quotes (docs/lab.md); skill: "
        "1 - RMSE / the best naive baseline's (vs all: with the venue's mark); gap: pooled RMSE "
        "over the in-regime one; hedge sd in bp of the forward"
        + ("" if wide else "; --wide: every column"),
        box=box.SIMPLE,
        collapse_padding=True,
        pad_edge=False,
    )
    for column in columns:
        left = column in ("engine", "protocol", "regime")
        table.add_column(
            SCORECARD[column][0], justify="left" if left else "right", no_wrap=True, overflow="fold"
        )
    for row in card[columns].itertuples(index=False):
        table.add_row(*(v if isinstance(v, str) else number(float(v)) for v in row))
    out.print(table)
    if stressed:
        out.print(f"{stressed} stressed rows (the scenario column) are in {path}")


@guard_app.command("replay")
def guard_replay_command(
    store: StoreOpt,
    underlying: UnderlyingOpt,
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder (resumed if it exists).")],
    engine: Annotated[str, typer.Option(help="Primary engine.")] = "ssvi",
    fallback: Annotated[str, typer.Option(help="Conservative fallback engine.")] = "black76-flat",
    start: FromOpt = None,
    end: ToOpt = None,
    warmup: Annotated[int, typer.Option(min=1, help="Snapshots that set the calm reference.")] = 10,
    speed: Annotated[
        float | None,
        typer.Option(min=0.0, help="Market seconds per wall second (default: flat out)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Start the run folder afresh, whatever made it.")
    ] = False,
) -> None:
    """Replay a store through the guard; write decisions.parquet, guarded.parquet, report.html.

    The audit log (decisions.jsonl) and a checkpoint live in the run folder: run the same
    command again after a crash and it resumes where the log ends. A run folder made with
    other settings is refused (--force starts it afresh); a later --to continues it.
    """
    first = check_time(start, "--from") if start is not None else None
    last = check_time(end, "--to", end=True) if end is not None else None
    check_store(store)
    check_out(out_dir)
    _engine(engine, "--engine")
    _engine(fallback, "--fallback")
    if speed == 0:
        raise fail("--speed: must be positive (leave it out to replay flat out)")

    def make_guard() -> Guard:
        from volguard.guard.runtime import Guard, GuardSettings

        return Guard(_engine(engine), _engine(fallback), GuardSettings(warmup=warmup))

    def action() -> list[Path]:
        from volguard.data.store import open_store
        from volguard.guard.replay import decisions_frame, guarded_frame, replay
        from volguard.report.guard_report import write_guard_outputs

        quotes = open_store(store)
        total = len(quotes.timestamps(underlying.upper()))
        with progress(total, "replay", enabled=err.is_terminal) as advance:
            summary = replay(
                quotes,
                underlying.upper(),
                make_guard,
                out_dir,
                first,
                last,
                speed,
                on_decision=lambda _d: advance(1),
                force=force,
            )
        if summary.resumed_from is not None:
            out.print(f"resumed after {summary.resumed_from.isoformat()}")
        decisions = decisions_frame(out_dir)
        title = f"guard replay: {underlying.upper()}, {engine} (fallback {fallback})"
        return write_guard_outputs(decisions, guarded_frame(out_dir), out_dir, title=title)

    paths = run(action)
    from rich import box
    from rich.table import Table

    from volguard.guard.replay import decisions_frame

    decisions = decisions_frame(out_dir)
    table = Table(title="guard decisions", box=box.SIMPLE)
    for column in ("ts", "previous", "state", "reason", "z", "p_stress"):
        table.add_column(column)
    moves = decisions[decisions["state"] != decisions["previous"]] if len(decisions) else decisions
    for row in moves.itertuples():
        table.add_row(
            f"{row.ts:%Y-%m-%d %H:%M}",
            str(row.previous),
            str(row.state),
            str(row.reason),
            number(row.z),
            number(row.p_stress),
        )
    out.print(table)
    out.print(f"{len(decisions)} decisions; wrote " + ", ".join(str(p) for p in paths))


@app.command("serve")
def serve_command(
    store: StoreOpt,
    underlying: UnderlyingOpt,
    engine: Annotated[str, typer.Option(help="Primary engine.")] = "ssvi",
    fallback: Annotated[str, typer.Option(help="Conservative fallback engine.")] = "black76-flat",
    start: FromOpt = None,
    end: ToOpt = None,
    speed: Annotated[
        float | None,
        typer.Option(min=0.0, help="Market seconds per wall second (default: flat out)."),
    ] = None,
    warmup: Annotated[int, typer.Option(min=1, help="Snapshots that set the calm reference.")] = 10,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="VOLGUARD_TOKEN",
            show_envvar=True,
            help="Bearer token every request but /health and /ready must carry.",
        ),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Allow a non-loopback --host without a token.")
    ] = False,
    max_body: Annotated[
        int, typer.Option(min=1, help="Request body limit, bytes (413 beyond).")
    ] = 1_000_000,
) -> None:
    """Serve the guard (POST /price, GET /health, GET /ready, GET /metrics, WS /stream) while
    the store is replayed into it in the background."""
    import ipaddress
    import socket

    first = check_time(start, "--from") if start is not None else None
    last = check_time(end, "--to", end=True) if end is not None else None
    check_store(store)
    primary, backup = _engine(engine, "--engine"), _engine(fallback, "--fallback")
    if speed == 0:
        raise fail("--speed: must be positive (leave it out to replay flat out)")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and token is None and not insecure:
        raise fail(
            f"--host {host}: not a loopback address; give --token (or VOLGUARD_TOKEN), or "
            "--insecure to serve it without one"
        )
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise fail(f"--host {host} --port {port}: cannot listen ({exc.strerror})") from exc
    import threading

    import uvicorn

    from volguard.data.events import ReplaySource
    from volguard.data.store import open_store
    from volguard.guard.runtime import Guard, GuardSettings
    from volguard.guard.service import GuardService, create_app

    quotes = run(lambda: open_store(store))
    if quotes.timestamps(underlying.upper()).empty:
        raise fail(f"--underlying {underlying.upper()}: no quotes of it in {store}")
    service = GuardService(Guard(primary, backup, GuardSettings(warmup=warmup)))
    source = ReplaySource(quotes, [underlying.upper()], first, last, speed)

    def feed() -> None:
        for snapshot in source:
            service.update(snapshot)

    threading.Thread(target=feed, name="guard-feed", daemon=True).start()
    err.print(
        f"volguard serve: http://{host}:{port} prices {underlying.upper()} from {store} "
        f"({engine}, fallback {fallback}; {'bearer token required' if token else 'no token'}); "
        "/ready answers 200 once the first snapshot is fitted",
        highlight=False,
    )
    app_ = create_app(service, token=token, max_body=max_body)
    uvicorn.run(app_, host=host, port=port, log_level="warning")
