"""`engine.name: spark` from the committed local repro: `dvc repro` reruns exactly the stages the switch touches,
and they write the same files (every output hash in dvc.lock unchanged), so their declared metrics are the
same numbers and nothing downstream reruns."""
from __future__ import annotations

import shutil

import pytest

from tests.helpers.dvc_project import Project, lock_md5s

pytestmark = pytest.mark.slow

SWITCHED = ["clean", "eda", "played_next", "popular", "split"]  # the stages that declare engine.name


def metric_files(project: Project) -> dict[str, bytes]:
    return {path.relative_to(project.root).as_posix(): path.read_bytes()
            for path in sorted((project.root / "metrics").rglob("*")) if path.is_file()}


def test_engine_spark_reproduces_the_local_outputs_and_metrics(built_project, tmp_path):
    built, _ = built_project
    shutil.copytree(built.root, tmp_path / "project", symlinks=True)
    project = Project(tmp_path / "project", tmp_path / "dvc-site-cache")
    project.git("reset", "-q", "--hard")  # the committed local repro, whatever the e2e tests changed since
    project.dvc("checkout", "--force")
    outputs, metrics = lock_md5s((project.root / "dvc.lock").read_text()), metric_files(project)
    local_metrics = project.dvc("metrics", "show", "--json").stdout

    def on_spark(params):  # only the switch: engine.spark's settings are read (and declared) by als too
        params["engine"]["name"] = "spark"

    project.set_params(on_spark)
    ran, log = project.repro()
    assert sorted(ran) == SWITCHED, log
    assert lock_md5s((project.root / "dvc.lock").read_text()) == outputs
    assert metric_files(project) == metrics
    assert project.dvc("metrics", "show", "--json").stdout == local_metrics
    assert project.status() == {}
