"""A change reruns only what it touches: the module holding a config class is a dependency only of the
stages that read that config and of the stages downstream of them (DVC's own view of dvc.yaml).

A config class in a module every stage declares (as all of them once lived in ``src/recsys/config.py``)
would rerun the whole pipeline whenever one stage gained a setting; this fails on that. The e2e test
checks the same with ``dvc status`` on a built pipeline for one stage.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path

import networkx as nx
import pytest
from dvc.repo import Repo

from src.recsys.config import Config
from tests.helpers import REPO_ROOT


@pytest.fixture(scope="module")
def pipeline():
    """(stage name -> declared source deps, stage name -> names of the stages downstream of it)."""
    with Repo(str(REPO_ROOT)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        deps = {stage.addressing: [str(Path(dep.def_path)) for dep in stage.deps if dep.def_path.startswith("src/")]
                for stage in graph.nodes}
        downstream = {stage.addressing: {s.addressing for s in nx.ancestors(graph, stage)} for stage in graph.nodes}
    return deps, downstream


def config_classes(config: type[Config]) -> set[type[Config]]:
    """A stage's config class and every section class nested in it."""
    found = {config}
    for field in dataclasses.fields(config):
        if "config" in field.metadata:
            found |= config_classes(field.metadata["config"])
    return found


def readers() -> dict[type[Config], set[str]]:
    """Every config class with the stages whose config holds it."""
    found: dict[type[Config], set[str]] = {}
    for path in sorted((REPO_ROOT / "src" / "stages").glob("[!_]*.py")):
        config = importlib.import_module(f"src.stages.{path.stem}").main.config
        for cls in config_classes(config) if config else ():
            found.setdefault(cls, set()).add(path.stem)
    return found


def declaring(deps: dict[str, list[str]], module: str) -> set[str]:
    return {stage for stage, paths in deps.items() if any(module == p or module.startswith(p + "/") for p in paths)}


READERS = readers()


@pytest.mark.parametrize("cls", sorted(READERS, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_a_config_module_reruns_only_its_readers_and_their_downstream(pipeline, cls):
    deps, downstream = pipeline
    module = str(Path(inspect.getsourcefile(cls)).relative_to(REPO_ROOT))
    allowed = READERS[cls].union(*(downstream[s] for s in READERS[cls]))
    assert READERS[cls] <= declaring(deps, module), f"{module} holds {cls.__name__} but its readers do not declare it"
    assert declaring(deps, module) - allowed == set(), f"editing {module} ({cls.__name__}) reruns unrelated stages"


def test_each_stage_config_lives_in_a_module_of_its_own_stage_or_logic(pipeline):
    """No stage's own config class sits in a module that more than its own stage and downstream declare:
    in particular not in the shared ``config`` machinery every stage imports."""
    deps, _ = pipeline
    every_stage = set(deps)
    for cls in READERS:
        module = str(Path(inspect.getsourcefile(cls)).relative_to(REPO_ROOT))
        assert declaring(deps, module) != every_stage, f"{cls.__name__} in {module}, a dependency of every stage"
