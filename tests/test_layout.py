"""The code's layout rules that no other test checks: one file name per module, and the layers' direction."""
from __future__ import annotations

import ast
from collections import defaultdict

from tests.helpers import REPO_ROOT

SRC = REPO_ROOT / "src"


def _modules() -> list:
    return sorted(path for path in SRC.rglob("*.py") if "__pycache__" not in path.parts)


def test_no_two_modules_share_a_file_name():
    by_name = defaultdict(list)
    for path in _modules():
        if path.name != "__init__.py":
            by_name[path.name].append(path.relative_to(REPO_ROOT).as_posix())
    shared = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert not shared, f"modules that share a file name: {shared}"


def _imported_packages(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _upward_imports(package: str, upper: tuple[str, ...]) -> dict[str, list[str]]:
    """Per module of ``src/<package>``: what it imports from tests, benchmarks or the ``upper`` packages."""
    offenders = {}
    for path in (SRC / package).rglob("*.py"):
        upward = {name for name in _imported_packages(path)
                  if name.split(".")[0] in ("tests", "benchmarks") or name.startswith(upper)}
        if upward:
            offenders[path.relative_to(REPO_ROOT).as_posix()] = sorted(upward)
    return offenders


def test_the_library_imports_neither_the_service_nor_the_stages_nor_tests():
    """``src/recsys`` is the bottom layer: stages, the service and the Spark engine import it, never the reverse."""
    offenders = _upward_imports("recsys", ("src.service", "src.stages", "src.spark_engine"))
    assert not offenders, f"library modules importing upper layers: {offenders}"


def test_the_spark_engine_imports_neither_the_service_nor_the_stages_nor_tests():
    """``src/spark_engine`` sits on ``src/recsys``: the stages import it, it imports no stage."""
    offenders = _upward_imports("spark_engine", ("src.service", "src.stages"))
    assert not offenders, f"Spark engine modules importing upper layers: {offenders}"
