"""The layer rule of STYLE.md: a package imports only packages above it in the data flow."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "volguard"

ORDER = [
    "errors",
    "_typing",
    "kernels",
    "market",
    "data",
    "arbitrage",
    "models",
    "sim",
    "lab",
    "guard",
    "report",
    "cli",
]
EXTRA_FORBIDDEN = {"guard": {"lab"}}
"""Pairs the order alone would allow but STYLE.md forbids (the guard never imports the lab)."""


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "volguard" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in ORDER else None


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _violations(src: Path = SRC) -> list[str]:
    bad = []
    for path in sorted(src.rglob("*.py")):
        own = _layer("volguard." + ".".join(path.relative_to(src).with_suffix("").parts))
        if own is None:
            continue
        for module in _imports(path):
            other = _layer(module)
            if other is None or other == own:
                continue
            if ORDER.index(other) > ORDER.index(own) or other in EXTRA_FORBIDDEN.get(own, set()):
                bad.append(f"{path.relative_to(src)} ({own}) imports {module} ({other})")
    return bad


def test_every_layer_imports_only_layers_above_it() -> None:
    assert _violations() == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / "bad.py").write_text("import volguard.data.store\n")
    (tmp_path / "guard").mkdir()
    (tmp_path / "guard" / "bad.py").write_text("from volguard.lab import splits\n")
    assert _violations(tmp_path) == [
        "guard/bad.py (guard) imports volguard.lab (lab)",
        "guard/bad.py (guard) imports volguard.lab.splits (lab)",
        "kernels/bad.py (kernels) imports volguard.data.store (data)",
    ]
