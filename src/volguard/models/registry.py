"""Engine names -> classes; names feed the CLI and configuration files, not the core."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from volguard.models.base import SurfaceEngine
from volguard.models.conformal import ConformalSurface
from volguard.models.ensemble import EnsembleSurface
from volguard.models.gp import GPSurface
from volguard.models.hybrid import HybridSurface
from volguard.models.learned.gbm import GBMSurface
from volguard.models.learned.nn import NNSurface
from volguard.models.parametric.black76_flat import Black76Flat
from volguard.models.parametric.heston import Bates, Heston
from volguard.models.parametric.sabr import SABR
from volguard.models.parametric.ssvi import ESSVI, SSVI
from volguard.models.parametric.svi import SVI
from volguard.models.parametric.svi_plain import PlainSVI
from volguard.models.parametric.svi_surface import SVISurface

ENGINES: dict[str, type[SurfaceEngine]] = {
    cls.name: cls
    for cls in (
        Black76Flat,
        SVI,
        PlainSVI,
        SVISurface,
        SSVI,
        ESSVI,
        SABR,
        Heston,
        Bates,
        GBMSurface,
        NNSurface,
        HybridSurface,
        GPSurface,
    )
}
ENGINES[EnsembleSurface.name] = EnsembleSurface  # combines engine instances
ENGINES[ConformalSurface.name] = ConformalSurface  # wraps one with intervals

NAMED: dict[str, str] = {
    "members": "member_settings",
    "base": "base_settings",
    "prior": "prior_settings",
}
"""Settings that configuration files give as engine names, and the key of those engines' own
settings: :func:`resolve` turns them into engine instances."""


def resolve(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` of a configuration file (names) as an engine's or trainer's arguments
    (instances): ``members = ["sabr", "svi"]`` with ``member_settings`` (one mapping per
    member, or name -> mapping) becomes ``[("sabr", SABR(...)), ("svi", SVI(...))]`` (repeats
    labelled ``name#2``); ``base``/``base_settings`` and ``prior``/``prior_settings`` become
    one engine each.

    Raises
    ------
    ValueError
        If a name is not registered or the member settings do not match the members.

    Examples
    --------
    >>> resolve({"members": ["sabr", "sabr"], "member_settings": {"sabr": {"beta": 0.5}}})
    {'members': [('sabr', SABR(beta=0.5)), ('sabr#2', SABR(beta=0.5))]}
    """
    out = dict(settings)
    for key, own_key in NAMED.items():
        own = out.pop(own_key, None)
        if key not in out or not isinstance(out[key], str | list | tuple):
            if own is not None:
                raise ValueError(f"{own_key} needs {key} as engine names")
            continue
        if key != "members":
            out[key] = make_engine(str(out[key]), **(own or {}))
            continue
        names = [str(n) for n in out[key]]
        if own is not None and not isinstance(own, Mapping) and len(own) != len(names):
            raise ValueError(
                f"member_settings has {len(own)} entries for {len(names)} members; give one "
                "mapping per member or a mapping name -> settings"
            )
        seen: Counter[str] = Counter()
        pairs = []
        for i, name in enumerate(names):
            seen[name] += 1
            mine = (own or {}).get(name, {}) if isinstance(own, Mapping | None) else own[i]
            label = name if seen[name] == 1 else f"{name}#{seen[name]}"
            pairs.append((label, make_engine(name, **mine)))
        out[key] = pairs
    return out


def make_engine(name: str, **settings: Any) -> SurfaceEngine:
    """A new engine by registered name, its settings as a configuration file gives them
    (:func:`resolve`).

    Raises
    ------
    ValueError
        If ``name`` is not registered.

    Examples
    --------
    >>> make_engine("svi", weighting="spread").get_params()
    {'weighting': 'spread'}
    >>> make_engine("conformal", base="svi", base_settings={"weighting": "none"}).base
    SVI(weighting='none')
    """
    if name not in ENGINES:
        raise ValueError(f"engine {name!r} is unknown; expected one of {sorted(ENGINES)}")
    return ENGINES[name](**resolve(settings))
