"""The schema of a study file: every key of every section and every engine setting, typed.

:func:`check_study` runs when the file is read, before any work: an unknown key or a value of
the wrong type ends in one :class:`~volguard.errors.ConfigError` line naming the file, the
section and key, what was expected and, for a misspelt key, the nearest valid name. Rules that
tie keys together (one data source, a training regime that exists) stay in
:meth:`volguard.lab.study.Study.from_toml`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from volguard.errors import ConfigError
from volguard.lab.splits import NowcastSplit
from volguard.models.greeks import SpotVolBeta
from volguard.models.quotes import WEIGHTINGS
from volguard.models.registry import ENGINES, NAMED
from volguard.sim.stress_library import LIBRARY

Time = str | dt.datetime | dt.date
Table = dict[str, Any]

SECTIONS: dict[str, Any] = {
    "name": str,
    "seed": int,
    "data": {
        "simulate": str,
        "days": float,
        "freq": str,
        "seed": int,
        "underlyings": list[str],
        "underlying": str,
        "store": str,
        "dataset": str,
        "truth": str,
        "start": Time,
        "end": Time,
    },
    "regimes": {
        "method": Literal["truth", "rules", "hmm", "ranges"],
        "in_regime": str,
        "ranges": dict[str, list[Time]],
    },
    "engines": Table,  # checked against each engine's own settings (_engine_schema)
    "protocols": {
        "nowcast": Table | list[Table],
        "forecast": {"horizon": int},
        "baselines": bool,
        "hedging": bool | Table,
        "greeks": typing.get_type_hints(SpotVolBeta.__init__),
        "policy_hedging": Table,  # its own reader names unknown keys
    },
    "training": {"share": float, "regime": str, "retrain_every": int, "validation": str},
    "uncertainty": {
        "level": float,
        "method": Literal["aci", "split"],
        "window": int,
        "gamma": float,
        "score": Literal["abs", "half_spread"],
    },
    "stress": {
        "scenarios": list[Literal[tuple(LIBRARY)]],  # type: ignore[misc]
        "every": int,
        "adversarial": {
            "engine": Literal[tuple(ENGINES)],
            "objective": Literal["iv_rmse", "price_rmse", "hedge_rmse"],
            "maxiter": int,
            "popsize": int,
        },
    },
}
NOWCAST = typing.get_type_hints(NowcastSplit)
HEDGING = {"price": Literal["mid", "mark"]}
SUPPLIED = {"self", "snapshots", "model", "validation", "seed", "return"}
"""Engine arguments the study supplies itself (not settings of a study file)."""
VALUES: dict[str, Any] = {
    "weighting": Literal[WEIGHTINGS],
    "members": list[Literal[tuple(ENGINES)]],  # type: ignore[misc]
    "base": Literal[tuple(ENGINES)],
    "prior": Literal[tuple(ENGINES)],
    "member_settings": Table | list[Table],
    "base_settings": Table,
    "prior_settings": Table,
}
"""Settings whose values are names, checked beyond the engines' own ``str`` annotations."""


def check_study(doc: Mapping[str, Any], path: str | Path) -> None:
    """Check every key and type of a parsed study file against the schema.

    Raises
    ------
    ConfigError
        At the first unknown key or wrongly typed value (see the module docstring).

    Examples
    --------
    >>> check_study({"data": {"dayz": 2}}, "s.toml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    volguard.errors.ConfigError: s.toml: [data] dayz: unknown key (did you mean 'days'?); ...
    """
    _check_table(doc, SECTIONS, str(path), "")
    protocols = doc.get("protocols", {})
    nowcast = protocols.get("nowcast", [])
    for i, split in enumerate([nowcast] if isinstance(nowcast, dict) else nowcast):
        _check_table(split, NOWCAST, str(path), f"[protocols] nowcast[{i}].")
    if isinstance(protocols.get("hedging"), dict):
        _check_table(protocols["hedging"], HEDGING, str(path), "[protocols] hedging.")
    for name, settings in doc.get("engines", {}).items():
        where = f"[engines] {name}"
        if not isinstance(settings, dict):
            raise ConfigError(f"{path}: {where}: expected a table of settings, got {settings!r}")
        base = settings.get("engine", name)
        if base not in ENGINES:
            raise ConfigError(
                f"{path}: {where}: {base!r} is not an engine{_nearest(str(base), ENGINES)}; "
                f"expected one of {', '.join(sorted(ENGINES))}"
            )
        _check_table(settings, engine_schema(base), str(path), f"{where}.")


def engine_schema(name: str) -> dict[str, Any]:
    """The settings a study may give engine ``name`` and their types: its constructor's and,
    for a learned engine, its trainer's, less what the study supplies, plus ``engine``.

    Examples
    --------
    >>> sorted(engine_schema("sabr"))
    ['beta', 'engine', 'weighting']
    """
    cls = ENGINES[name]
    sources: list[Callable[..., Any]] = [cls.__init__]
    if getattr(cls, "needs_training", False):
        sources.append(cls.trainer)
    schema: dict[str, Any] = {"engine": str}
    for source in sources:
        hints = typing.get_type_hints(source)
        for arg in inspect.signature(source).parameters:
            if arg not in SUPPLIED:
                schema[arg] = VALUES.get(arg, hints.get(arg, Any))
                if arg in NAMED:  # engines by name, and those engines' own settings
                    schema[NAMED[arg]] = VALUES[NAMED[arg]]
    return schema


def _check_table(table: Any, schema: Mapping[str, Any], path: str, where: str) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {where.rstrip('.')}: expected a table, got {table!r}")
    for key, value in table.items():
        section = f"[{key}]" if not where else f"{where}{key}"
        if key not in schema:
            raise ConfigError(
                f"{path}: {section}: unknown key{_nearest(key, schema)}; expected one of "
                f"{', '.join(sorted(schema))}"
            )
        expected = schema[key]
        if isinstance(expected, dict):
            _check_table(value, expected, path, f"[{key}] " if not where else f"{where}{key}.")
        elif not _fits(value, expected):
            raise ConfigError(
                f"{path}: {section}: expected {_describe(expected)}, got {value!r}"
                f" ({type(value).__name__})"
            )


def _nearest(key: str, names: Mapping[str, Any] | Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.0)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fits(value: Any, hint: Any) -> bool:
    """Whether a TOML value has type ``hint`` (an int is a float; a bool is no number)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if origin is Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (dict, Mapping) or hint is dict:
        return isinstance(value, dict) and all(_fits(v, args[1]) for v in value.values() if args)
    if origin in (list, tuple, Sequence):
        return isinstance(value, list) and all(_fits(v, args[0]) for v in value if args)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a type a TOML file cannot hold; the engine checks it


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple, Sequence):
        return f"a list of {_describe(args[0])}" if args else "a list"
    if origin in (dict, Mapping) or hint is dict:
        return "a table"
    if hint is type(None):
        return "nothing (leave it out)"
    if hint is dt.datetime or hint is dt.date:
        return "a date"
    return getattr(hint, "__name__", str(hint))
