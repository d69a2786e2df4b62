"""Layer rule: kernels import nothing of volguard except errors and _typing (and themselves)."""

from __future__ import annotations

import ast
from pathlib import Path

KERNELS = Path(__file__).resolve().parents[2] / "src" / "volguard" / "kernels"
ALLOWED = ("volguard.errors", "volguard._typing", "volguard.kernels")


def test_kernels_only_import_allowed_volguard_modules() -> None:
    offenders = []
    for path in KERNELS.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.startswith("volguard") and not name.startswith(ALLOWED):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
