"""Settings for the whole suite.

Property tests (hypothesis) run the same examples on every run (`derandomize`) and have no
per-example deadline: a test's outcome never depends on chance or on how busy the machine is.
`HYPOTHESIS_PROFILE=explore` draws fresh examples instead (and keeps what fails, to replay).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from connector.state import Location
from tests.postgres import (
    PASSWORD,
    PASSWORD_ENV,
    PostgresServer,
    StateBackend,
    backend_in_use,
    start_server,
    stop_server,
)

# A pytest-xdist worker's environment has COLUMNS=80 and LINES=24: the CLI's consoles, made when
# it is first imported, would keep that width whatever width a test gives its CliRunner.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)

settings.register_profile("deterministic", derandomize=True, deadline=None, database=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


# --- the state store on SQLite and on PostgreSQL ---------------------------------------------
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on loopback for the whole session (skipped where not installed)."""
    started = start_server()
    if isinstance(started, str):
        pytest.skip(started)
    server, folder = started
    try:
        yield server
    finally:
        stop_server(folder)


@pytest.fixture(params=BACKENDS)
def state_location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """Where a fresh state store is: a SQLite file, and (a second run) a PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "state.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_address()


@pytest.fixture(params=BACKENDS)
def state_backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StateBackend]:
    """Where the connectors a test configures keep their state: SQLite, and (a second run)
    PostgreSQL; `StateBackend.toml` gives their `[state]` keys. It is also the test's
    `current_backend()`, which the integration suites' config builders use: a module whose
    tests keep state runs them on both with `pytest.mark.usefixtures("state_backend")`."""
    if request.param == "sqlite":
        backend = StateBackend()
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
        backend = StateBackend("postgresql", server)
    with backend_in_use(backend):
        yield backend
