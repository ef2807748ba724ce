"""A temporary git + DVC copy of this project at a tiny scale.

``build_project`` copies what a fresh clone holds (plus work in progress), makes it tiny, runs
``dvc repro`` and commits the result; ``tests/conftest.py`` builds it once per run (the session fixture
``built_project``), so every test file that needs a repro'd pipeline shares one. Tests that change it
(``test_pipeline_e2e``) work on it in place; tests that need the committed state (``test_sharing``) copy
it and reset the copy to its commit.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers import REPO_ROOT

SCALE = 0.002
CHUNK_USERS = 500
TIMEOUT = 600
SKIP_PARTS = {"tests", "benchmarks", "data", "models", "reports", "metrics"}  # outputs and test code
SKIP_FILES = {"dvc.lock"}
RUNNING = re.compile(r"Running stage '([^']+)'")
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
                "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"}


def project_files() -> list[str]:
    """Git-tracked files plus untracked ones that are not ignored: what a fresh clone plus work in progress holds."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO_ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return [f for f in listed if f and f not in SKIP_FILES and f.split("/")[0] not in SKIP_PARTS
            and (REPO_ROOT / f).is_file()]


class Project:
    def __init__(self, root: Path, site_cache: Path):
        self.root = root
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        self.env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(site_cache), "PATH": path,
                    "PYTHONDONTWRITEBYTECODE": "1", **GIT_IDENTITY}
        self.env.pop("PYTHONPATH", None)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(args, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=TIMEOUT)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "dvc", *args, check=check)

    def status(self) -> dict:
        """``dvc status --json``: stage -> what changed; ``{}`` when everything is up to date."""
        return json.loads(self.dvc("status", "--json").stdout or "{}")

    def git(self, *args: str) -> str:
        return self.run("git", *args).stdout.strip()

    def repro(self, *args: str) -> tuple[list[str], str]:
        result = self.dvc("repro", *args)
        output = result.stdout + result.stderr
        return RUNNING.findall(output), output

    def set_params(self, update) -> None:
        params = yaml.safe_load((self.root / "params.yaml").read_text())
        update(params)
        (self.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def descendants(self, stage: str) -> set[str]:
        edges = re.findall(r'"([^"]+)"\s*->\s*"([^"]+)"', self.dvc("dag", "--dot").stdout)
        found, frontier = set(), {stage}
        while frontier:
            frontier = {b for a, b in edges if a in frontier} - found
            found |= frontier
        return found


def lock_md5s(lock_text: str) -> dict[str, str]:
    """Output path -> md5 recorded in a ``dvc.lock``'s text."""
    lock = yaml.safe_load(lock_text)
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}


def build_project(base: Path) -> tuple[Project, tuple[str, ...]]:
    """The tiny project in ``base`` after its first ``dvc repro`` (committed as HEAD), and the stages it ran."""
    root = base / "project"
    for name in project_files():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    project = Project(root, base / "dvc-site-cache")

    def tiny(params):
        params["generate"]["scale"] = SCALE
        params["generate"]["chunk_users"] = CHUNK_USERS
        params["data"]["raw_dir"] = "data/synthetic"

    project.set_params(tiny)
    project.run("git", "init", "-q", "-b", "main")
    if not (root / ".dvc" / "config").exists():
        project.dvc("init", "-q")
    project.dvc("config", "core.analytics", "false")
    ran, _ = project.repro()
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "tiny pipeline, first repro")
    return project, tuple(ran)
