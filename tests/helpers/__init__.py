"""Plain helpers and hand-made data for the tests, one module per subject; the fixtures built on them are
in ``tests/conftest.py``.

``raw``: tiny raw tables and stage runs; ``synthetic``: the generated dataset and the models fit on it;
``bundles``: the tiny hand-made serving bundle (with the course's three cases) and random ones;
``service``: settings and the real server process; ``dvc_project``: a tiny git + DVC copy of the project.
"""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
