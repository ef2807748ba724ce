"""Sharing results through DVC: push from one clone, pull into a fresh one, switch versions.

Two clones, ``a`` and ``b``, with a bare git repo as their origin, use the project's own
``.dvc/config``: its default remote, ``~/.local/share/dvc-storage/recsys``, is then one folder they
share with no setup (HOME is a temporary folder here, so nothing reaches the real one). ``a`` starts
as a copy of the tiny repro'd project of the ``built_project`` fixture (reset to its commit), so no
second full repro runs here. The tests build on each other and run in file order.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
import yaml

from tests.helpers.dvc_project import Project, lock_md5s

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STORAGE = ".local/share/dvc-storage/recsys"  # .dvc/config: url = ~/.local/share/dvc-storage/recsys
NEVER_PUSHED = {"data/online/events.sqlite": b"SQLite format 3\0 listens", "reports/pr/report.md": b"# report",
                "catboost_info/learn_error.tsv": b"iter\tLogloss"}


@dataclass
class Clones:
    base: Path
    a: Project | None
    b: Project | None = None
    commits: list[str] = field(default_factory=list)

    @property
    def storage(self) -> Path:
        return self.base / "home" / STORAGE

    def project(self, name: str) -> Project:
        project = Project(self.base / name, self.base / "dvc-site-cache")
        project.env["HOME"] = str(self.base / "home")  # `~` in .dvc/config: the default remote is in here
        return project


@pytest.fixture(scope="module")
def clones(tmp_path_factory, built_project) -> Clones:
    built, _ = built_project
    base = tmp_path_factory.mktemp("sharing")
    shutil.copytree(built.root, base / "a", symlinks=True)
    clones = Clones(base, None)
    a = clones.a = clones.project("a")
    a.git("reset", "-q", "--hard")  # the committed first repro, whatever the e2e tests changed since
    a.dvc("checkout", "--force")
    a.run("git", "clone", "-q", "--bare", str(a.root), str(base / "origin.git"))
    a.git("remote", "add", "origin", str(base / "origin.git"))
    a.git("fetch", "-q", "origin")
    a.git("branch", "-q", "--set-upstream-to=origin/main")
    clones.commits.append(a.git("rev-parse", "HEAD"))
    return clones


# ---------------------------------------------------------------- hashes, computed without DVC


def md5_of(path: Path) -> str:
    """DVC's hash of an output: md5 of a file; of a folder, md5 of its sorted (md5, relpath) list plus '.dir'."""
    if path.is_file():
        return hashlib.md5(path.read_bytes()).hexdigest()
    entries = [{"md5": md5_of(file), "relpath": file.relative_to(path).as_posix()}
               for file in sorted(path.rglob("*")) if file.is_file()]
    entries.sort(key=lambda entry: entry["relpath"])
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"


def workspace_md5s(project: Project) -> dict[str, str]:
    return {path: md5_of(project.root / path) if (project.root / path).exists() else "missing"
            for path in lock_md5s((project.root / "dvc.lock").read_text())}


def cached_outs(project: Project) -> set[str]:
    """Outputs DVC caches (and pushes): everything under outs/metrics except ``cache: false``."""
    cached = set()
    for stage in yaml.safe_load((project.root / "dvc.yaml").read_text())["stages"].values():
        for entry in stage.get("outs", []) + stage.get("metrics", []):
            path, options = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
            if (options or {}).get("cache", True):
                cached.add(path)
    return cached


def remote_objects(storage: Path) -> set[str]:
    """The md5s a local DVC remote holds (files/md5/ab/cdef... is object abcdef...)."""
    return {f"{path.parent.name}{path.name}" for path in (storage / "files" / "md5").glob("*/*")}


def clone(clones: Clones, name: str) -> Project:
    clones.a.run("git", "clone", "-q", str(clones.base / "origin.git"), str(clones.base / name))
    return clones.project(name)


# ---------------------------------------------------------------- push, pull, versions


def test_push_stores_every_cached_output_and_nothing_else(clones):
    a = clones.a
    assert a.status() == {}
    for name, content in NEVER_PUSHED.items():  # the event store, a review report, a library's cache
        (a.root / name).parent.mkdir(parents=True, exist_ok=True)
        (a.root / name).write_bytes(content)
    assert a.dvc("remote", "list").stdout.split() == ["local", str(clones.storage), "(default)"]
    assert not clones.storage.exists()
    pushed = a.dvc("push")
    assert clones.storage.is_dir(), pushed.stdout

    outs = cached_outs(a)
    assert {"data/synthetic", "models/als.npz", "models/ranker.cbm", "models/serving", "reports/figures",
            "data/recommendations/recommendations.parquet"} <= outs
    expected = {md5_of(a.root / out) for out in outs}  # the objects: each output, and each file of a folder
    expected |= {md5_of(file) for out in outs if (a.root / out).is_dir() for file in (a.root / out).rglob("*")
                 if file.is_file()}
    stored = remote_objects(clones.storage)
    assert stored == expected
    assert {hashlib.md5(content).hexdigest() for content in NEVER_PUSHED.values()} & stored == set()
    assert "Everything is up to date" in a.dvc("push").stdout  # a second push sends nothing


def test_fresh_clone_pulls_every_output_and_reruns_nothing(clones):
    b = clones.b = clone(clones, "b")
    assert not (b.root / "models" / "serving").exists() and not (b.root / ".dvc" / "cache").exists()
    assert b.status() != {}  # nothing pulled yet: every cached output is missing
    b.dvc("pull")
    assert b.status() == {}
    ran, output = b.repro()
    assert ran == [] and "up to date" in output, output
    lock = lock_md5s((b.root / "dvc.lock").read_text())
    assert workspace_md5s(b) == lock
    assert workspace_md5s(b) == workspace_md5s(clones.a)


def test_serve_script_serves_the_pulled_bundle(clones):
    b = clones.b
    (b.root / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)  # serve.sh runs .venv/bin/python
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**b.env, "RECSYS_PORT": str(port), "RECSYS_EVENTS_DB": str(clones.base / "events.sqlite")}
    server = subprocess.Popen(["bash", "scripts/serve.sh"], cwd=b.root, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read().decode()
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.1)
        manifest = json.loads((clones.a.root / "models" / "serving" / "manifest.json").read_text())
        assert httpx.get(f"{url}/health").json()["bundle_version"] == manifest["version"]
        answer = httpx.get(f"{url}/users/0/recommendations", params={"k": 5}).json()
        assert len(answer["items"]) == 5 and answer["bundle_version"] == manifest["version"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    (b.root / ".venv").unlink()


def test_a_new_commit_travels_with_git_pull_and_dvc_pull(clones):
    a, b = clones.a, clones.b

    a.set_params(lambda params: params["rank"].update(n=20))  # new final lists and bundle; the models stay
    ran, output = a.repro()
    assert set(ran) == {"rank", "serving", "evaluate", "replay"}, output
    a.git("commit", "-q", "-am", "rank.n = 20")
    clones.commits.append(a.git("rev-parse", "HEAD"))
    a.dvc("push")
    a.git("push", "-q", "origin", "main")

    old, new = (lock_md5s(a.git("show", f"{commit}:dvc.lock")) for commit in clones.commits)
    assert {path for path in new if new[path] != old[path]} >= {
        "data/recommendations/recommendations.parquet", "models/serving", "metrics/evaluation_full.json"}

    b.git("pull", "-q")
    assert b.status() != {}  # the new lock's outputs are not in b yet
    b.dvc("pull")
    assert b.status() == {}
    ran, output = b.repro()
    assert ran == [], output
    assert workspace_md5s(b) == new


def test_checkout_of_the_older_commit_restores_its_outputs(clones):
    b = clones.b
    old_commit, new_commit = clones.commits
    b.git("checkout", "-q", old_commit)
    b.dvc("checkout")
    assert workspace_md5s(b) == lock_md5s(b.git("show", f"{old_commit}:dvc.lock"))
    assert b.status() == {}
    b.git("checkout", "-q", "main")
    b.dvc("checkout")
    assert b.git("rev-parse", "HEAD") == new_commit
    assert workspace_md5s(b) == lock_md5s(b.git("show", f"{new_commit}:dvc.lock"))


def test_raw_files_pinned_by_import_url_travel_and_update_as_a_commit(clones):
    """The real-data recipe on one file: the remote keeps every pinned version, even once the source has moved on."""
    a, b = clones.a, clones.b
    source = clones.base / "source" / "tracks.parquet"  # stands for https://storage.yandexcloud.net/.../tracks.parquet
    source.parent.mkdir()
    tracks = pq.read_table(a.root / "data" / "synthetic" / "tracks.parquet")
    pq.write_table(tracks, source)
    first = md5_of(source)
    (a.root / "data" / "raw").mkdir()  # import-url needs the folder
    a.dvc("import-url", str(source), "data/raw/tracks.parquet")
    a.git("add", "-A", "data/raw")
    a.git("commit", "-q", "-m", "pin raw tracks.parquet")
    pinned = a.git("rev-parse", "HEAD")
    a.dvc("push")  # each pinned version is pushed with its commit: `dvc push` sends the workspace's only

    pq.write_table(tracks.slice(0, tracks.num_rows // 2), source)  # the source publishes a new version
    second = md5_of(source)
    a.dvc("update", "data/raw/tracks.parquet.dvc")
    diff = a.git("diff", "data/raw/tracks.parquet.dvc").splitlines()  # a reviewable change: old md5 out, new in
    assert any(first in line for line in diff if line.startswith("-"))
    assert any(second in line for line in diff if line.startswith("+"))
    a.git("commit", "-q", "-am", "dvc update data/raw/tracks.parquet.dvc")
    a.dvc("push")
    a.git("push", "-q", "origin", "main")
    assert {first, second} <= remote_objects(clones.storage)

    shutil.rmtree(source.parent)  # from here on only the DVC remote has the files
    b.git("pull", "-q")
    b.dvc("pull", "data/raw/tracks.parquet.dvc")
    assert md5_of(b.root / "data" / "raw" / "tracks.parquet") == second
    b.git("checkout", "-q", pinned)
    b.dvc("pull", "data/raw/tracks.parquet.dvc")
    assert md5_of(b.root / "data" / "raw" / "tracks.parquet") == first
    b.git("checkout", "-q", "main")
    b.dvc("checkout")
    assert b.status() == {}


def test_experiments_travel_with_exp_push_and_exp_pull(clones):
    a, b = clones.a, clones.b
    ran = a.dvc("exp", "run", "-n", "top-n-7", "-S", "eda.top_n=7")
    assert "Running stage 'eda'" in ran.stdout + ran.stderr and "Running stage 'als'" not in ran.stdout
    figures = md5_of(a.root / "reports" / "figures")
    a.dvc("exp", "push", "origin", "top-n-7")
    assert figures in remote_objects(clones.storage)

    assert "top-n-7" not in b.dvc("exp", "list", "--name-only").stdout
    b.dvc("exp", "pull", "origin", "top-n-7")
    assert "top-n-7" in b.dvc("exp", "list", "--name-only").stdout.split()
    b.dvc("exp", "apply", "top-n-7")
    assert b.status() == {}  # its outputs came from the remote: nothing to rerun
    assert md5_of(b.root / "reports" / "figures") == figures
    assert len((b.root / "metrics" / "eda" / "top_tracks.csv").read_text().strip().splitlines()) == 1 + 7
