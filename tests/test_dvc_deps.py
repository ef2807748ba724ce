"""dvc.yaml declares exactly the code each stage runs: every project module a stage imports
(transitively) is a dependency, and no declared source file is one it does not import.

One module is not a code dependency: ``src/recsys/paths.py``, the registry of artifact paths. It holds no
logic, only the paths ``dvc.yaml`` declares as each stage's deps and outs, and DVC already reruns a stage
whose declared paths change. Declaring it would rerun all twelve stages whenever a new stage adds its
output path. Instead, every path a stage module reads or writes must be one its dvc.yaml entry declares.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from src.recsys import paths
from tests.helpers import REPO_ROOT

PACKAGE_MARKERS = {"src/__init__.py", "src/recsys/__init__.py", "src/spark_engine/__init__.py"}
STAGES_PACKAGE = "src/stages/__init__.py"  # runs before every stage: pins the BLAS kernels
PATH_REGISTRY = "src/recsys/paths.py"  # mirrored by dvc.yaml's deps and outs (module docstring)


def within(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies inside it."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


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
    seen, todo = set(), [REPO_ROOT / "src" / "stages" / f"{stage}.py", REPO_ROOT / STAGES_PACKAGE]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(imported_files(path))
    return {str(path.relative_to(REPO_ROOT)) for path in seen} - PACKAGE_MARKERS - {PATH_REGISTRY}


def path_constants_used(path: Path) -> set[str]:
    """Names of ``paths`` constants a module refers to: ``paths.TRAIN`` or ``from ...paths import TRAIN``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "paths":
            found.add(node.attr)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").endswith("paths"):
            found.update(alias.name for alias in node.names)
    return found


def declared_paths(stage: str) -> list[str]:
    entries = STAGES[stage].get("deps", []) + STAGES[stage].get("outs", []) + STAGES[stage].get("metrics", [])
    return [next(iter(entry)) if isinstance(entry, dict) else entry for entry in entries]


STAGES = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_declares_exactly_the_code_it_runs(stage):
    deps = [dep for dep in STAGES[stage]["deps"] if dep.startswith("src/")]
    code = stage_code(stage)
    assert sorted(p for p in code if not any(within(p, d) for d in deps)) == [], "imported but not declared"
    assert [d for d in deps if not any(within(p, d) for p in code)] == [], "declared but not imported"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_reads_and_writes_only_declared_paths(stage):
    """Each registry path a stage module uses is one of its declared deps or outs, inside a declared folder,
    or a folder holding declared files: so paths.py cannot change what a stage reads or writes unnoticed."""
    declared = [d for d in declared_paths(stage) if not d.startswith("src/")]
    used = {name: str(getattr(paths, name)) for name in path_constants_used(REPO_ROOT / "src" / "stages" / f"{stage}.py")}
    assert {name: path for name, path in used.items()
            if not any(within(path, d) or within(d, path) for d in declared)} == {}


def test_every_registry_path_is_used_by_a_stage_and_declared():
    registry = {name: str(value) for name, value in vars(paths).items() if isinstance(value, Path)}
    used = {registry[n] for s in STAGES for n in path_constants_used(REPO_ROOT / "src" / "stages" / f"{s}.py")}
    declared = {d for s in STAGES for d in declared_paths(s)}
    # a registry path is used itself or is the folder of used ones; it is declared, inside a declared folder,
    # or the folder of declared paths
    assert sorted(n for n, path in registry.items() if not any(within(u, path) for u in used)) == [], \
        "paths nobody reads or writes"
    assert sorted(n for n, path in registry.items()
                  if not any(within(path, d) or within(d, path) for d in declared)) == [], "paths dvc.yaml lacks"
