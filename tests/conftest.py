"""The suite's fixtures, built on the plain helpers of ``tests/helpers/``.

What is expensive and read-only (the generated dataset, the models fit on it, the tiny serving bundle
on disk) is built once per run through ``tmp_path_factory``; what a test may change (raw tables,
event stores, servers) is built per test, and stores and servers are closed when the test ends. One
PostgreSQL server serves the session (each test that needs it takes a fresh database); tests that stop
the database start a server of their own.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from src.recsys.serving.bundle_reader import ServingBundle
from src.service.app import create_app
from src.service.store import SqliteListenStore
from tests.helpers import dvc_project, synthetic
from tests.helpers.bundles import tiny_bundle
from tests.helpers.postgres import PostgresServer, require_postgres
from tests.helpers.stores import BACKENDS, StoreBackend
from tests.helpers.raw import tiny_raw_tables, write_raw
from tests.helpers.server_process import ServerProcess
from tests.helpers.service import service_process, settings_for


SLOW_FIXTURES = {"start_service", "built_project"}  # a real server process; the tiny pipeline's `dvc repro`


def pytest_collection_modifyitems(config, items):
    """A test on a real server or the repro'd project must be marked ``slow``, so ``-m "not slow"`` stays quick."""
    unmarked = [item.nodeid for item in items if item.get_closest_marker("slow") is None
                and SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))]
    if unmarked:
        raise pytest.UsageError(f"tests using {sorted(SLOW_FIXTURES)} must be marked slow: {unmarked}")


# ---------------------------------------------------------------- raw data


@pytest.fixture
def raw_tables() -> dict[str, pa.Table]:
    """The three raw files of a tiny valid dataset (``helpers.raw``), as arrow tables keyed by file name."""
    return tiny_raw_tables()


@pytest.fixture
def raw_dir(tmp_path, raw_tables) -> Path:
    return write_raw(tmp_path / "raw", raw_tables)


# ---------------------------------------------------------------- the tiny pipeline, repro'd and committed


@pytest.fixture(scope="session")
def built_project(tmp_path_factory) -> tuple[dvc_project.Project, tuple[str, ...]]:
    """The tiny project after its first ``dvc repro`` and the stages it ran: one repro for the e2e and
    sharing tests (the e2e tests change it in place; the sharing tests copy it and reset to its commit)."""
    return dvc_project.build_project(tmp_path_factory.mktemp("e2e"))


# ---------------------------------------------------------------- Spark (the tests of src/spark_engine)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One local[2] Spark session for the whole run (UI off, 2 shuffle partitions). No skip when pyspark is
    missing: the import fails and so do the Spark tests (requirements-dev.txt installs it)."""
    from src.spark_engine.spark_session import spark_session
    from src.spark_engine.spark_settings import SparkSettings

    scratch = tmp_path_factory.mktemp("spark")
    with spark_session(SparkSettings(master="local[2]", driver_memory="1g", executor_memory="1g",
                                     shuffle_partitions=2, local_dir=str(scratch / "local"),
                                     checkpoint_dir=str(scratch / "checkpoints")), "tests") as session:
        yield session


# ---------------------------------------------------------------- the generated dataset and its models (read-only)


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> synthetic.Generated:
    return synthetic.generate(tmp_path_factory.mktemp("generated"))


@pytest.fixture(scope="session")
def train_matrix(generated):
    return synthetic.train_matrix_of(generated)


@pytest.fixture(scope="session")
def als_model(train_matrix):
    return synthetic.fit(train_matrix)


@pytest.fixture(scope="session")
def als_recommendations(als_model, train_matrix):
    return synthetic.recommend_als(als_model, train_matrix)


@pytest.fixture(scope="session")
def evaluation_set(generated):
    return synthetic.evaluation_set_of(generated)


@pytest.fixture(scope="session")
def ranking_setup(generated):
    return synthetic.ranking_setup_of(generated)


# ---------------------------------------------------------------- the service


@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory) -> Path:
    """The tiny bundle (``helpers.bundles``) saved once; tests map it read-only."""
    folder = tmp_path_factory.mktemp("tiny") / "bundle"
    tiny_bundle(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_mapped(tiny_bundle_dir) -> ServingBundle:
    return ServingBundle.open(tiny_bundle_dir)


@pytest.fixture
def tiny(tmp_path, tiny_mapped):
    """An in-process client of the app on the tiny bundle, with a fresh event store."""
    with TestClient(create_app(settings_for(tmp_path), tiny_mapped)) as client:
        yield client


@pytest.fixture
def open_store(tmp_path):
    """``open_store(name="events.sqlite", **options)``: a SQLite listen store in the test's folder, closed at the end."""
    stores: list[SqliteListenStore] = []

    def open_(name: str = "events.sqlite", **options) -> SqliteListenStore:
        stores.append(SqliteListenStore(tmp_path / name, **options))
        return stores[-1]

    yield open_
    for store in stores:
        store.close()


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the whole session (tests take a fresh database each); stopped at the end."""
    server = PostgresServer(require_postgres()).start()
    yield server
    server.close()


@pytest.fixture
def postgres_outage_server():
    """A PostgreSQL server of the test's own, for tests that stop and start it (an outage)."""
    server = PostgresServer(require_postgres()).start()
    yield server
    server.close()


@pytest.fixture
def run():
    """``run(coroutine)`` on one event loop for the whole test (a PostgreSQL pool belongs to the loop it was made on)."""
    with asyncio.Runner() as runner:
        yield runner.run


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path, run) -> StoreBackend:
    """Each store behaviour test runs against SQLite and against a real PostgreSQL (a fresh database)."""
    server = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    backend = StoreBackend(request.param, tmp_path, run, server)
    yield backend
    backend.close_all()


@pytest.fixture
def start_service():
    """``start_service(base, env=None)``: a started ``python -m src.service`` for workdir ``base``, stopped at the end."""
    servers: list[ServerProcess] = []

    def start(base: Path, env: dict[str, str] | None = None) -> ServerProcess:
        servers.append(service_process(base, env))
        return servers[-1].start()

    yield start
    for server in servers:
        server.stop()
