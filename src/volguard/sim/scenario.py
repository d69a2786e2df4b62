"""Simulation scenarios: the calibrated presets and TOML files built on them.

A scenario fixes the start (time, spot, variance, regime), the regimes' parameters, an
optional script of regimes with exact durations (followed before the Markov chain takes over),
an optional second asset and the listing rules. The presets come from the calibration stored
in the package (``sim/presets/regimes.json``, written by ``volguard sim calibrate``):

* ``calm-2026-01``: the calm regime of January 2026, held for the whole run;
* ``crash-2026-02``: the crash regime of 29 January - 6 February 2026, held for the whole run;
* ``markov``: starts calm, then regimes switch freely (the Markov chain of the regimes);
* ``calm-then-crash``: 30 days calm, 7 days crash, then the Markov chain; ETH alongside BTC.

A TOML scenario names a ``preset`` to start from and overrides any part of it::

    preset = "markov"
    start = 2026-03-01T00:00:00Z
    spot = 90000.0
    script = [["calm", 10], ["crash", 3]]

    [regimes.crash]
    rho = 0.3

    [second_asset]
    underlying = "ETH"
    spot = 3000.0
    vol_scale = 1.3
    corr = {calm = 0.8, crash = 0.9}
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from volguard.errors import ConfigError
from volguard.sim.listing import ListingRules
from volguard.sim.regimes import REGIME_NAMES, Regime


@dataclass(frozen=True)
class SecondAsset:
    """A second underlying driven by the same regimes and variance, scaled.

    Its variance is ``vol_scale**2`` times the first asset's, its log jumps ``vol_scale`` times
    (common jump times) and its price shocks correlate ``corr[regime]`` with the first's
    (see :meth:`Regime.scaled`).
    """

    underlying: str
    spot: float
    vol_scale: float
    corr: Mapping[str, float]

    def __post_init__(self) -> None:
        if not (self.spot > 0 and self.vol_scale > 0):
            raise ValueError(f"second asset {self.underlying}: spot and vol_scale must be > 0")
        for regime in REGIME_NAMES:
            c = self.corr.get(regime)
            if c is None or not -1 < c < 1:
                raise ValueError(
                    f"second asset {self.underlying}: corr needs every regime of {REGIME_NAMES} "
                    f"in (-1, 1), got {regime}: {c!r}"
                )


@dataclass(frozen=True)
class Scenario:
    """Everything :func:`volguard.sim.simulate` needs besides the length, frequency and seed.

    Parameters
    ----------
    name : str
    underlying : str
        ``BTC`` or ``ETH`` (names the instruments).
    start : pandas.Timestamp
        First snapshot time, UTC.
    spot : float
        Spot at ``start``, USD.
    v0 : float
        Variance at ``start``, 1/year.
    regimes : mapping of str to Regime
        Every regime of :data:`REGIME_NAMES`.
    script : tuple of (regime, days)
        Regimes followed for exactly these durations from ``start`` (``inf`` days: for the
        whole run); the Markov chain takes over at the end. Empty: the chain starts in
        ``initial_regime``.
    initial_regime : str
        First regime when ``script`` is empty.
    second_asset : SecondAsset or None
    listing : ListingRules
    listed_at_spot : float or None
        Spot at which the chain found at ``start`` was first listed (None: ``spot``). The crash
        preset lists it at the calm level before the crash, as the venue had: the real crash
        chain still carried the strikes opened 15 % higher, whose calls had no bid.
    step_minutes : float
        Step of the path simulation (snapshots fall on steps).
    """

    name: str
    underlying: str
    start: pd.Timestamp
    spot: float
    v0: float
    regimes: Mapping[str, Regime]
    script: tuple[tuple[str, float], ...] = ()
    initial_regime: str = "calm"
    second_asset: SecondAsset | None = None
    listing: ListingRules = field(default_factory=ListingRules)
    listed_at_spot: float | None = None
    step_minutes: float = 5.0

    def __post_init__(self) -> None:
        missing = sorted(set(REGIME_NAMES) - set(self.regimes))
        if missing:
            raise ValueError(f"scenario {self.name!r}: regimes {missing} are missing")
        for regime, days in self.script:
            if regime not in REGIME_NAMES or not days > 0:
                raise ValueError(
                    f"scenario {self.name!r}: script entries need a regime of {REGIME_NAMES} and "
                    f"days > 0, got [{regime!r}, {days!r}]"
                )
        if self.initial_regime not in REGIME_NAMES:
            raise ValueError(f"scenario {self.name!r}: initial_regime {self.initial_regime!r}")
        if not (self.spot > 0 and self.v0 > 0 and self.step_minutes > 0):
            raise ValueError(f"scenario {self.name!r}: spot, v0 and step_minutes must be > 0")


@cache
def calibration() -> dict[str, Any]:
    """The stored calibration (``sim/presets/regimes.json``), read once."""
    text = resources.files("volguard.sim").joinpath("presets/regimes.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def _regimes() -> dict[str, Regime]:
    return {name: Regime.from_dict(d) for name, d in calibration()["regimes"].items()}


def _eth(window: str) -> SecondAsset:
    windows = calibration()["windows"]
    corr = {"crash": windows["crash"]["eth_corr"], "plateau": windows["crash"]["eth_corr"]}
    return SecondAsset(
        underlying="ETH",
        spot=windows[window]["eth_spot"],
        vol_scale=windows[window]["eth_vol_scale"],
        corr={r: corr.get(r, windows["calm"]["eth_corr"]) for r in REGIME_NAMES},
    )


def preset(name: str) -> Scenario:
    """A preset scenario by name (:data:`PRESETS`).

    Examples
    --------
    >>> s = preset("crash-2026-02")
    >>> s.script, s.start.date().isoformat()
    ((('crash', inf),), '2026-01-29')
    """
    if name not in PRESETS:
        raise ValueError(f"preset {name!r} is unknown; expected one of {sorted(PRESETS)}")
    window, script, eth = PRESETS[name]
    w = calibration()["windows"][window]
    return Scenario(
        name=name,
        underlying="BTC",
        start=pd.Timestamp(w["window"][0], tz="UTC") + pd.Timedelta(hours=9),
        spot=w["spot"],
        v0=w["v0"],
        regimes=_regimes(),
        script=script,
        initial_regime=window,
        listed_at_spot=calibration()["windows"]["calm"]["spot"] if window == "crash" else None,
        second_asset=_eth(window) if eth else None,
    )


PRESETS: dict[str, tuple[str, tuple[tuple[str, float], ...], bool]] = {
    "calm-2026-01": ("calm", (("calm", math.inf),), False),
    "crash-2026-02": ("crash", (("crash", math.inf),), False),
    "markov": ("calm", (), False),
    "calm-then-crash": ("calm", (("calm", 30.0), ("crash", 7.0)), True),
}
"""Preset name -> (calibration window of the start, script, with ETH)."""


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A preset by name, or a TOML scenario file (see the module docstring).

    Raises
    ------
    ConfigError
        If the file cannot be read or a setting is unknown or invalid; the message names the
        file and the key.
    """
    if str(name_or_path) in PRESETS:
        return preset(str(name_or_path))
    path = Path(name_or_path)
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such scenario file, and not a preset name (presets: {sorted(PRESETS)})"
        )
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable TOML file: {exc}") from exc
    try:
        return scenario_from_dict(data, name=path.stem)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def scenario_from_dict(data: Mapping[str, Any], name: str) -> Scenario:
    """A scenario from the TOML table ``data`` (a ``preset`` plus overrides)."""
    base = preset(str(data.get("preset", "markov")))
    known = {"preset", "regimes", "second_asset", "listing", "start", "script"}
    known |= {f.name for f in fields(Scenario)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; expected some of {sorted(known)}")
    regimes = dict(base.regimes)
    for regime, overrides in data.get("regimes", {}).items():
        if regime not in regimes:
            raise ValueError(f"[regimes.{regime}] is not a regime; expected one of {REGIME_NAMES}")
        regimes[regime] = Regime.from_dict({**regimes[regime].to_dict(), **overrides})
    second = base.second_asset
    if "second_asset" in data:
        s = dict(data["second_asset"])
        s["corr"] = {r: s.get("corr", {}).get(r, s.get("corr_default", 0.8)) for r in REGIME_NAMES}
        s.pop("corr_default", None)
        second = SecondAsset(**s)
    listing = replace(base.listing, **data.get("listing", {}))
    simple = {
        k: data[k]
        for k in ("underlying", "spot", "v0", "initial_regime", "step_minutes", "listed_at_spot")
        if k in data
    }
    script = tuple((str(r), float(d)) for r, d in data.get("script", base.script))
    start = pd.Timestamp(data["start"]).tz_convert("UTC") if "start" in data else base.start
    return replace(
        base,
        name=name,
        regimes=regimes,
        second_asset=second,
        listing=listing,
        script=script,
        start=start,
        **simple,
    )
