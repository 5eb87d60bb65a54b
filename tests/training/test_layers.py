"""The package layout holds: each stage of training/ imports only the stages before it, the desktop imports
only public names, and the top level stays small (docs/architecture.md)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STAGES = ("core", "data", "model", "inference", "evaluation", "engine")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports (module level and inside functions), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def _stage_files():
    for stage in STAGES:
        for path in sorted((REPO / "training" / stage).rglob("*.py")):
            yield stage, path


def test_no_stage_imports_a_later_one() -> None:
    upward = []
    for stage, path in _stage_files():
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] != "training" or len(parts) < 2:
                continue
            target = parts[1]
            if target == "cli" or (target in STAGES and STAGES.index(target) > STAGES.index(stage)):
                upward.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not upward, "\n".join(upward)


def test_the_desktop_imports_only_public_names() -> None:
    private = []
    for path in sorted((REPO / "desktop").glob("*.py")):
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] == "training" and len(parts) > 2:
                private.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not private, "\n".join(private)


@pytest.mark.parametrize("stage", STAGES)
def test_every_public_name_resolves(stage: str) -> None:
    """A public table that names a moved or renamed function fails here, not in the app."""
    package = importlib.import_module(f"training.{stage}")
    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert not missing, f"training.{stage} lists {missing}"


def test_the_top_level_is_small() -> None:
    modules = sorted(p.name for p in (REPO / "training").glob("*.py"))
    assert len(modules) <= 12, modules
    assert {p.name for p in (REPO / "training").iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(STAGES)
