"""A real PostgreSQL server on loopback for the test session, and a fresh database per test.

The server is Debian's (or any) PostgreSQL found in /usr/lib/postgresql/*/bin or on PATH:
`initdb` refuses to run as root, so under root the cluster belongs to the `postgres` user and
its commands run through `runuser`. It is tuned for tests (no fsync), listens on 127.0.0.1 at a
free port, and asks for the password of the role the connector logs in as (scram), like a real
server. Where PostgreSQL is not installed, the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from connector.state import Location, PostgresAddress, StateStore

ROLE, PASSWORD = "connector", "test-password-of-the-connector"


def find_bin() -> Path | None:
    """The folder of PostgreSQL's server programs, if installed."""
    given = os.environ.get("PG_BIN")
    candidates = [Path(given)] if given else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).parent)
    return next((c for c in candidates if (c / "initdb").exists()), None)


@dataclass
class PostgresServer:
    """A running server: make fresh databases on it."""

    port: int
    socket_dir: Path
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    def admin(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection (over the server's socket)."""
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user="postgres",
            dbname=database,
            autocommit=True,
        )

    def url(self, database: str) -> str:
        """The URL of a database, for the connector's role (no password in it)."""
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database owned by the connector's role; its name."""
        name = f"store_{os.getpid()}_{next(self._numbers)}"
        with self.admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}" OWNER {ROLE} TEMPLATE template0')
        return name

    def new_address(self) -> PostgresAddress:
        """Where a fresh state store is: a new database, with the role's password."""
        return PostgresAddress(self.url(self.new_database()), password=PASSWORD)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server() -> tuple[PostgresServer, Path] | str:
    """Start a server in a new folder: the server and its folder, or why it cannot run."""
    bin_dir = find_bin()
    if bin_dir is None:
        return "PostgreSQL is not installed (no initdb; set PG_BIN): PostgreSQL cases skipped"
    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="scim-connector-pg-"))
    data = folder / "data"
    run_as: list[str] = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(folder, "postgres", "postgres")
    port = _free_port()
    password_file = folder / "pw"
    password_file.write_text("unused-superuser-password\n")
    if as_root:
        shutil.chown(password_file, "postgres", "postgres")
    try:
        subprocess.run(
            [
                *run_as,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                f"--pwfile={password_file}",
            ],
            check=True,
            capture_output=True,
        )
        options = (
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            [
                *run_as,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(folder / "server.log"),
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        output = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(folder, ignore_errors=True)
        return f"PostgreSQL could not start: {exc} {output.decode(errors='replace')[-500:]}"
    server = PostgresServer(port, folder)
    with server.admin() as admin:
        admin.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
    return server, folder


def stop_server(folder: Path) -> None:
    """Stop the server started in `folder` and remove it."""
    bin_dir = find_bin()
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if bin_dir is not None:
        subprocess.run(
            [
                *run_as,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(folder / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            check=False,
            capture_output=True,
        )
    shutil.rmtree(folder, ignore_errors=True)


PASSWORD_ENV = "SCIM_TEST_STATE_PASSWORD"  # the fixture sets it to the role's password


@dataclass(eq=False)  # one per test; hashable, so a dataclass field may default to SQLITE
class StateBackend:
    """Where the connectors a test configures keep their state: SQLite files (the default),
    or one fresh PostgreSQL database per connector folder."""

    name: str = "sqlite"
    server: PostgresServer | None = None
    secret_file: str = "state.secret"  # PostgreSQL: its secret (made if missing)
    _databases: dict[Path, str] = field(default_factory=dict)

    def toml(self, directory: Path, *, secret: bool = True) -> str:
        """The keys of `[state]` for a connector configured in `directory` (`secret`: with a
        secret file for PostgreSQL, where it must be given; SQLite generates one)."""
        if self.server is None:
            return 'path = "state.db"\n'
        database = self._databases.get(directory)
        if database is None:
            database = self._databases[directory] = self.server.new_database()
        lines = f'url = "{self.server.url(database)}"\npassword_env = "{PASSWORD_ENV}"\n'
        if secret:
            secret_file = directory / self.secret_file
            if not secret_file.exists():
                secret_file.write_text("a state secret for the tests, 32 bytes or so\n")
                secret_file.chmod(0o600)
            lines += f'secret_file = "{self.secret_file}"\n'
        return lines

    def location(self, directory: Path) -> Location:
        """Where the store of the connector configured in `directory` is."""
        if self.server is None:
            return directory / "state.db"
        self.toml(directory, secret=False)
        return PostgresAddress(self.server.url(self._databases[directory]), password=PASSWORD)

    def query(
        self, directory: Path, sql: str, parameters: Sequence[object] = ()
    ) -> list[tuple[Any, ...]]:
        """The rows of one read-only statement (`?` parameters, SQL both databases speak) on
        the store of the connector in `directory`, through the store's own connection."""
        store = StateStore.open_read_only(self.location(directory))
        assert store is not None, f"no state store for {directory}"
        try:
            return [tuple(row) for row in store._db.execute(sql, parameters).fetchall()]
        finally:
            store.close()

    def stored_text(self, directory: Path) -> str:
        """Everything the store of the connector in `directory` holds, as text to search: the
        SQLite files' bytes, or every row of every table of the PostgreSQL database."""
        if self.server is None:
            files = sorted(directory.glob("state.db*"))
            return b"".join(path.read_bytes() for path in files).decode("latin-1")
        with self.server.admin(self._databases[directory]) as admin:
            tables = admin.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            ).fetchall()
            rows = [
                str(row[0])
                for (table,) in tables
                for row in admin.execute(f'SELECT t::text FROM "{table}" t').fetchall()
            ]
        return "\n".join(rows)

    def lose(self, directory: Path) -> None:
        """The store of the connector in `directory` is lost: every table gone."""
        if self.server is None:
            for name in ("state.db", "state.db-wal", "state.db-shm"):
                (directory / name).unlink(missing_ok=True)
            return
        with self.server.admin(self._databases[directory]) as admin:
            admin.execute(f"DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION {ROLE}")


SQLITE = StateBackend()

_current: list[StateBackend] = []  # the backend of the running test, set by `state_backend`


def current_backend() -> StateBackend:
    """Where the running test's connectors keep their state: the backend the `state_backend`
    fixture chose for it (a module opts in with `pytest.mark.usefixtures("state_backend")`),
    or SQLite for a test that did not ask."""
    return _current[-1] if _current else SQLITE


@contextmanager
def backend_in_use(backend: StateBackend) -> Iterator[StateBackend]:
    """Make `backend` the running test's (`current_backend`) while the block runs."""
    _current.append(backend)
    try:
        yield backend
    finally:
        _current.remove(backend)


def state_toml(directory: Path, *, secret: bool = True) -> str:
    """The `[state]` keys of a connector configured in `directory`, on the test's backend."""
    return current_backend().toml(directory, secret=secret)


def state_location(directory: Path) -> Location:
    """Where the store of the connector configured in `directory` is, on the test's backend."""
    return current_backend().location(directory)
