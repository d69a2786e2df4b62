"""Named stress scenarios, and more of them from TOML files.

The library (:data:`LIBRARY`, name -> :class:`~volguard.sim.stress.StressScenario`) feeds the
CLI and configuration files; parameters are those of the transforms in :mod:`volguard.sim.stress`.

=================  ============================================================================
name               transforms (parameters)
=================  ============================================================================
crunch-mild        crunch (spread_mult 2, wing_cut 2.0 per sqrt-year, bid_drop 0.1)
crunch-severe      crunch (spread_mult 5, wing_cut 0.8 per sqrt-year, bid_drop 0.5)
vol-up-20          vol_shock (level +0.2, term_decay 0: every ATM vol +20 %)
vol-crush          vol_shock (level -0.35, term_decay 0.5: the front crushed most)
skew-twist         skew_twist (amount +0.5: put wing x1.5, call wing x0.5)
corr-flip          corr_flip (strength 1: rho -> -rho)
jump-down-15       jump (size ln 0.85, beta 0.5: half sticky-strike)
stale-30pct        stale (fraction 0.3)
basis-dislocation  basis (shift -0.03, term_decay 1, lag 0.5)
crash-combo        jump (ln 0.8, beta 1), vol_shock (+0.6, decay 0.5), skew_twist (+0.4),
                   crunch (spread_mult 3, wing_cut 1.2, bid_drop 0.3), stale (0.2)
=================  ============================================================================

A TOML file holds one or more scenarios::

    [[scenario]]
    name = "weekend-gap"
    description = "BTC gaps down 8 % over a weekend; half the book is stale"

    [[scenario.transform]]
    kind = "jump"
    size = -0.083
    beta = 0.5

    [[scenario.transform]]
    kind = "stale"
    fraction = 0.5

``src/volguard/sim/scenarios/`` has examples (:data:`EXAMPLES`).
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from volguard.errors import ConfigError
from volguard.sim.stress import (
    TRANSFORMS,
    BasisDislocation,
    CorrelationFlip,
    Jump,
    LiquidityCrunch,
    SkewTwist,
    StaleQuotes,
    StressScenario,
    Transform,
    VolShock,
)

_DOWN_15 = math.log(0.85)
_DOWN_20 = math.log(0.8)

LIBRARY: dict[str, StressScenario] = {
    s.name: s
    for s in (
        StressScenario(
            "crunch-mild",
            (LiquidityCrunch(spread_mult=2.0, wing_cut=2.0, bid_drop=0.1),),
            "spreads doubled, far wings gone, one bid in ten pulled",
        ),
        StressScenario(
            "crunch-severe",
            (LiquidityCrunch(spread_mult=5.0, wing_cut=0.8, bid_drop=0.5),),
            "spreads x5, only |k| <= 0.8 sqrt(t) quoted, half the bids pulled",
        ),
        StressScenario("vol-up-20", (VolShock(level=0.2),), "every ATM vol up 20 % (relative)"),
        StressScenario(
            "vol-crush",
            (VolShock(level=-0.35, term_decay=0.5),),
            "post-event crush: front forward vols -35 %, less further out",
        ),
        StressScenario("skew-twist", (SkewTwist(amount=0.5),), "put wing x1.5, call wing x0.5"),
        StressScenario(
            "corr-flip", (CorrelationFlip(strength=1.0),), "spot-vol correlation reversed"
        ),
        StressScenario(
            "jump-down-15",
            (Jump(size=_DOWN_15, beta=0.5),),
            "spot and forwards -15 %, ATM vol halfway to sticky-strike",
        ),
        StressScenario("stale-30pct", (StaleQuotes(fraction=0.3),), "30 % of quotes at old prices"),
        StressScenario(
            "basis-dislocation",
            (BasisDislocation(shift=-0.03, term_decay=1.0, lag=0.5),),
            "front forwards -3 % against spot; the quoted forwards show half of it",
        ),
        StressScenario(
            "crash-combo",
            (
                Jump(size=_DOWN_20, beta=1.0),
                VolShock(level=0.6, term_decay=0.5),
                SkewTwist(amount=0.4),
                LiquidityCrunch(spread_mult=3.0, wing_cut=1.2, bid_drop=0.3),
                StaleQuotes(fraction=0.2),
            ),
            "-20 % crash: sticky-strike vols, front vols +60 %, steeper puts, thin stale book",
        ),
    )
}
"""The named scenarios (table in the module docstring)."""

EXAMPLES = "scenarios"
"""Package folder of the example TOML scenario files."""


def example_path(name: str = "examples.toml") -> Path:
    """Path of an example scenario file shipped with volguard.

    Examples
    --------
    >>> sorted(load_scenario_toml(example_path()))
    ['short-squeeze', 'weekend-gap']
    """
    return Path(str(resources.files("volguard.sim").joinpath(EXAMPLES, name)))


def load_scenario_toml(path: str | Path) -> dict[str, StressScenario]:
    """Scenarios defined in a TOML file (format in the module docstring), by name.

    Raises
    ------
    ConfigError
        If the file cannot be read or parsed, or a scenario or transform breaks a rule; the
        message names the file, the key and what was expected.
    """
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the scenario file ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    entries = doc.get("scenario")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected one or more [[scenario]] tables")
    out: dict[str, StressScenario] = {}
    for i, entry in enumerate(entries):
        where = f"{path}: scenario[{i}]"
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: key 'name' expected a non-empty string, got {name!r}")
        if name in out:
            raise ConfigError(f"{where}: name {name!r} is defined twice")
        description = entry.get("description", "")
        unknown = set(entry) - {"name", "description", "transform"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown keys {sorted(unknown)}; expected name, description, transform"
            )
        transforms = entry.get("transform", [])
        if not isinstance(transforms, list):
            raise ConfigError(f"{where}: key 'transform' expected [[scenario.transform]] tables")
        try:
            built = tuple(
                _transform(f"{where} ({name}).transform[{j}]", t) for j, t in enumerate(transforms)
            )
            out[name] = StressScenario(name, built, str(description))
        except ConfigError as exc:
            if str(exc).startswith(str(path)):
                raise
            raise ConfigError(f"{where} ({name}): {exc}") from exc
    return out


def _transform(where: str, table: dict[str, Any]) -> Transform:
    kind = table.get("kind")
    cls = TRANSFORMS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ConfigError(f"{where}: key 'kind' expected one of {sorted(TRANSFORMS)}, got {kind!r}")
    params = {k: v for k, v in table.items() if k != "kind"}
    unknown = set(params) - set(cls.bounds)
    if unknown:
        raise ConfigError(
            f"{where}: unknown keys {sorted(unknown)} for kind {kind!r}; "
            f"expected {sorted(cls.bounds)}"
        )
    try:
        return cls(**params)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
