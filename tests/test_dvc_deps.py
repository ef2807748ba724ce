"""dvc.yaml declares exactly the code each stage runs: every project module a stage imports
(transitively) is a dependency, and no declared source file is one it does not import."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO_ROOT

PACKAGE_MARKERS = {"src/__init__.py", "src/recsys/__init__.py", "src/stages/__init__.py"}


def module_file(name: str) -> Path | None:
    path = REPO_ROOT.joinpath(*name.split("."))
    if path.with_suffix(".py").exists():
        return path.with_suffix(".py")
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    return None


def imported_files(path: Path) -> set[Path]:
    """Project files imported by ``path`` (absolute `src...` and relative imports)."""
    package = list(path.relative_to(REPO_ROOT).parent.parts)
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            if name.startswith("src"):
                names.add(name)
                names.update(f"{name}.{alias.name}" for alias in node.names)
    return {found for found in map(module_file, names) if found}


def stage_code(stage: str) -> set[str]:
    seen, todo = set(), [REPO_ROOT / "src" / "stages" / f"{stage}.py"]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(imported_files(path))
    return {str(path.relative_to(REPO_ROOT)) for path in seen} - PACKAGE_MARKERS


STAGES = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_declares_exactly_the_code_it_runs(stage):
    deps = [dep for dep in STAGES[stage]["deps"] if dep.startswith("src/")]
    code = stage_code(stage)

    def covers(dep: str, path: str) -> bool:
        return path == dep or path.startswith(dep.rstrip("/") + "/")

    assert sorted(p for p in code if not any(covers(d, p) for d in deps)) == [], "imported but not declared"
    assert [d for d in deps if not any(covers(d, p) for p in code)] == [], "declared but not imported"
