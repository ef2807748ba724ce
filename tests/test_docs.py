"""The docs site builds with ``mkdocs build --strict`` (no broken link, no page left out of the nav)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from tests.helpers import REPO_ROOT as ROOT

DOCS = ROOT / "docs"


def _nav_pages(nav) -> set[str]:
    pages: set[str] = set()
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            pages |= _nav_pages(value)
        else:
            pages.add(value)
    return pages


def _mkdocs() -> list[str]:
    """The docs tools come with requirements-dev.txt (scripts/test.sh installs it): missing, the test fails."""
    return [sys.executable, "-m", "mkdocs"]


def _config() -> dict:
    # mkdocs.yml may hold !!python/name tags (pymdownx's mermaid fence): read it without resolving them
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    return yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)


def test_every_page_is_in_the_nav():
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    nav = _nav_pages(_config()["nav"])
    assert pages == nav, f"in docs/ but not in the nav: {sorted(pages - nav)}; in the nav but missing: {sorted(nav - pages)}"


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    command = _mkdocs() + ["build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    for page in _nav_pages(_config()["nav"]):
        built = tmp_path / "site" / ("index.html" if page == "index.md" else page.removesuffix(".md") + "/index.html")
        assert built.is_file(), f"{page} was not built"
