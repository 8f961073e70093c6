"""Several organisations in one `serve` (a folder of configurations), over real HTTP.

Four organisations, each with its own HR file, target, webhook secret and state store (SQLite
files, or schemas of one PostgreSQL database): gent and brugge on scim2-server tenants, kortrijk
on a target that answers 503 to every request, for ever, and mechelen with an HR export that
lacks a required column. The service is `scim-connector serve`
in a subprocess; the test waits on conditions, never on the clock.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner

from connector import cli
from connector.service.webhook import signed_headers
from connector.state import Location, PostgresAddress, StateStore
from tests.factories import GENT, HR_FIELDS, hr_row, write_csv
from tests.faultproxy import Fault, FaultKind, FaultProxy, fault_proxy
from tests.integration.conftest import ScimServer, ScimTenants, _free_port
from tests.integration.serving import serve_process, wait_for
from tests.integration.test_rights import Rights, person
from tests.postgres import PASSWORD, PASSWORD_ENV, PostgresServer, StateBackend

pytestmark = pytest.mark.integration

PEOPLE = 3
SERVING = ("brugge", "gent")  # the organisations whose targets answer
FAILING = "kortrijk"  # the organisation whose target answers 503 for ever
BAD_EXPORT = "mechelen"  # the organisation whose HR export cannot be used
FAST = 60.0  # seconds within which an organisation with a working target is done


@dataclass
class Org:
    """One organisation's configuration, files and target."""

    name: str
    folder: Path  # its HR file, secrets and SQLite store
    base_url: str
    secret: str
    server: ScimServer | None = None  # None: the failing target
    proxy: FaultProxy | None = None  # the failing target

    def users(self) -> dict[str, dict[str, Any]]:
        assert self.server is not None
        answer = httpx2.get(f"{self.server.base_url}/Users", params={"count": 1000}, timeout=10)
        return {user["userName"]: user for user in answer.json().get("Resources", [])}


def write_config(config_dir: Path, org: Org, state: str) -> None:
    """`<name>.toml` in the folder of configurations; its files in its own folder."""
    org.folder.mkdir(parents=True, exist_ok=True)
    write_csv(org.folder / "hr.csv", [hr_row(n) for n in range(1, PEOPLE + 1)], fields=HR_FIELDS)
    (org.folder / "webhook.secret").write_text(org.secret + "\n", encoding="utf-8")
    retry = ""
    if org.server is None:  # keeps retrying the 503s for the whole test
        retry = "[target.retry]\nattempts = 50\nmax_seconds = 600\nmax_wait_seconds = 10\n"
    (config_dir / f"{org.name}.toml").write_text(
        f"""
[source]
path = "{org.folder / "hr.csv"}"

[target]
base_url = "{org.base_url}"

[target.auth]
method = "none"
{retry}
[state]
{state}
[service]
listen = "127.0.0.1:{{port}}"
webhook_secret_file = "{org.folder / "webhook.secret"}"
schedule = ""
midnight_sync = true
ready_max_failed_age_seconds = 0
shutdown_grace_seconds = 1

[logging]
format = "json"
""",
        encoding="utf-8",
    )


def state_keys(org: Org, backend: StateBackend, database: str | None) -> str:
    """The `[state]` keys of an organisation: its own SQLite file, or its own schema."""
    if backend.server is None or database is None:
        return f'path = "{org.folder / "state.db"}"\n'
    org.folder.mkdir(parents=True, exist_ok=True)
    secret = org.folder / "state.secret"
    secret.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
    secret.chmod(0o600)
    return (
        f'path = "{org.folder / "state.db"}"\n'
        f'url = "{backend.server.url(database)}"\npassword_env = "{PASSWORD_ENV}"\n'
        f'schema = "{org.name}"\nsecret_file = "{secret}"\n'
    )


def location(org: Org, backend: StateBackend, database: str | None) -> Location:
    if backend.server is None or database is None:
        return org.folder / "state.db"
    return PostgresAddress(backend.server.url(database), password=PASSWORD, schema=org.name)


def event_body(event_id: str, employee_id: str) -> bytes:
    event = {
        "event_id": event_id,
        "type": "employee.updated",
        "organisation_code": GENT,
        "employee_id": employee_id,
    }
    return json.dumps(event).encode()


@contextmanager
def serving(config_dir: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`scim-connector serve --config <folder>` in a subprocess, up when yielded."""
    port = _free_port()
    for config in config_dir.glob("*.toml"):
        config.write_text(config.read_text().replace("{port}", str(port)))
    with serve_process(config_dir, port, log) as (process, base):
        yield process, base


def post(base: str, organisation: str, secret: str, body: bytes) -> httpx2.Response:
    """An HR event to an organisation's webhook, signed with `secret`."""
    headers = {"Content-Type": "application/json", **signed_headers(secret, body, time.time())}
    return httpx2.post(
        f"{base}/hr/events/{organisation}", content=body, headers=headers, timeout=10
    )


Series = tuple[str, frozenset[tuple[str, str]]]


def metrics(base: str) -> dict[Series, float]:
    """The service's series: (name, labels) -> value."""
    values = {}
    for line in httpx2.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            name, _, labels = series.partition("{")
            pairs = re.findall(r'(\w+)="([^"]*)"', labels)
            values[name, frozenset(pairs)] = float(value)
    return values


def series(name: str, **labels: str) -> Series:
    return name, frozenset(labels.items())


def log_lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture
def organisations(
    scim_tenants: ScimTenants,
    state_backend: StateBackend,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Path, dict[str, Org], StateBackend, str | None]]:
    """Four organisations configured in `tmp_path/configs`: kortrijk's target answers 503,
    mechelen's HR export lacks a required column."""
    database = None
    if state_backend.server is not None:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        database = server.new_database()  # one database; a schema per organisation
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    unavailable = Fault(FaultKind.UNAVAILABLE, seconds=5)  # with Retry-After: 5
    with fault_proxy("http://127.0.0.1:9", lambda method, path, index: unavailable) as proxy:
        orgs = {}
        for name in (*SERVING, BAD_EXPORT):
            server = scim_tenants.new()
            orgs[name] = Org(name, tmp_path / name, server.base_url, secrets.token_hex(32), server)
        orgs[FAILING] = Org(
            FAILING,
            tmp_path / FAILING,
            proxy.base_url("/scim/v2"),
            secrets.token_hex(32),
            proxy=proxy,
        )
        for org in orgs.values():
            write_config(config_dir, org, state_keys(org, state_backend, database))
        # mechelen's export lost a column the contract requires: every run of it stops.
        bad = [{k: v for k, v in hr_row(n).items() if k != "national_id"} for n in (1, 2)]
        write_csv(orgs[BAD_EXPORT].folder / "hr.csv", bad, fields=list(bad[0]))
        yield config_dir, orgs, state_backend, database


def test_an_organisation_whose_target_answers_503_for_ever_delays_none_of_the_others(
    organisations: tuple[Path, dict[str, Org], StateBackend, str | None], tmp_path: Path
) -> None:
    config_dir, orgs, backend, database = organisations
    log = tmp_path / "serve.log"
    with serving(config_dir, log) as (process, base):
        # Each organisation's catch-up full sync starts at once; kortrijk's keeps retrying.
        for name in SERVING:
            wait_for(f"{name}'s users", lambda n=name: len(orgs[n].users()) == PEOPLE, FAST)
        # Their webhooks work meanwhile, each signed with its own organisation's secret.
        for name in SERVING:
            answer = post(base, name, orgs[name].secret, event_body(f"{name}-1", "E0001"))
            assert answer.status_code == 202, answer.text
        for name in SERVING:
            ok = series("scim_connector_events_processed_total", organisation=name, outcome="ok")
            wait_for(f"{name}'s event", lambda key=ok: metrics(base).get(key) == 1, FAST)

        # kortrijk's sync is still running (retrying), and it is where the trouble shows.
        seen = metrics(base)
        assert seen[series("scim_connector_sync_running", organisation=FAILING)] == 1
        assert seen[series("scim_connector_sync_running", organisation="gent")] == 0
        assert seen[series("process_resident_memory_bytes")] > 0  # the process's, once
        for name in SERVING:
            runs = series(
                "scim_connector_runs_total", organisation=name, command="sync", outcome="ok"
            )
            assert seen[runs] == 1
        failing = orgs[FAILING].proxy
        assert failing is not None
        wait_for("kortrijk's target to be asked again", lambda: len(failing.seen) >= 2, FAST)
        assert metrics(base)[series("scim_connector_sync_running", organisation=FAILING)] == 1

        # mechelen's bad export stops its own runs only, and shows in its own readiness.
        error = series(
            "scim_connector_runs_total", organisation=BAD_EXPORT, command="sync", outcome="error"
        )
        wait_for("mechelen's failed run", lambda: metrics(base).get(error, 0) >= 1, FAST)
        assert orgs[BAD_EXPORT].users() == {}
        ready = httpx2.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text  # one organisation's trouble takes none out
        statuses = {name: o["status"] for name, o in ready.json()["organisations"].items()}
        assert statuses["gent"] == statuses["brugge"] == "ready"
        assert statuses[BAD_EXPORT] == "degraded"
        assert httpx2.get(f"{base}/readyz/{BAD_EXPORT}", timeout=10).status_code == 503
        assert httpx2.get(f"{base}/readyz/gent", timeout=10).status_code == 200

        # Each webhook takes its own organisation's signature only; unknown names are 404.
        assert (
            post(base, "gent", orgs["brugge"].secret, event_body("x", "E0002")).status_code == 401
        )
        for path in ("/hr/events", "/hr/events/nowhere"):
            answer = httpx2.post(f"{base}{path}", content=b"{}", timeout=10)
            assert answer.status_code == 404 and "gent" in answer.json()["reason"]
        assert httpx2.get(f"{base}/readyz/nowhere", timeout=10).status_code == 404
        paths = httpx2.get(f"{base}/openapi.json", timeout=10).json()["paths"]
        assert "/hr/events/{organisation}" in paths and "/hr/events" not in paths

        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0

    # Each organisation's state is its own: gent's store knows gent's event, not brugge's.
    store = StateStore.open_read_only(location(orgs["gent"], backend, database))
    assert store is not None
    try:
        assert store.event("gent-1") is not None
        assert store.event("brugge-1") is None
    finally:
        store.close()
    lines = log_lines(log)
    for name in (*SERVING, FAILING, BAD_EXPORT):
        assert any(line.get("organisation") == name for line in lines), name
    processed = [line for line in lines if line.get("event") == "event.processed"]
    assert sorted(line["organisation"] for line in processed) == sorted(SERVING)


def test_a_store_migrated_into_a_schema_of_its_own_leaves_the_others_alone(
    scim_tenants: ScimTenants,
    postgres_server: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    rights = Rights(scim_tenants.new(), tmp_path, [person(n) for n in (1, 2)])
    first = rights.sync(dt.date(2026, 12, 1))
    assert first.counts["create"] == 2
    database = postgres_server.new_database()
    url = postgres_server.url(database)
    arguments = ["state", "migrate", "--to", url, "--password-env", PASSWORD_ENV]

    result = CliRunner().invoke(
        cli.app, [*arguments, "--schema", "gent", "--config", str(rights.write())]
    )

    assert result.exit_code == 0, result.output
    assert 'schema = "gent"' in result.output
    assert f'password_env = "{PASSWORD_ENV}"' in result.output  # the variable it was given
    with postgres_server.admin(database) as admin:
        schemas = {s for (s,) in admin.execute("SELECT DISTINCT schemaname FROM pg_tables")}
    assert "gent" in schemas and "public" not in schemas  # nothing in the default schema
    store = StateStore.open(PostgresAddress(url, password=PASSWORD, schema="gent"))
    try:
        assert [run.run_id for run in store.runs()] == [first.run_id]
    finally:
        store.close()
    # another organisation's store in the same database starts empty, in its own schema
    other = StateStore.open(PostgresAddress(url, password=PASSWORD, schema="brugge"))
    try:
        assert other.runs() == []
    finally:
        other.close()


def pg_org(config_dir: Path, org: Org, url: str, schema: str | None) -> None:
    """An organisation on PostgreSQL at `url` (and `schema`, if given)."""
    org.folder.mkdir(parents=True, exist_ok=True)
    secret = org.folder / "state.secret"
    secret.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
    secret.chmod(0o600)
    state = (
        f'path = "{org.folder / "state.db"}"\nurl = "{url}"\npassword_env = "{PASSWORD_ENV}"\n'
        f'secret_file = "{secret}"\n' + (f'schema = "{schema}"\n' if schema else "")
    )
    write_config(config_dir, org, state)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("127.0.0.1", "gent"), ("localhost", "gent")),  # one database, two host names
        (("127.0.0.1", None), ("127.0.0.1", "public")),  # the default schema, and named
    ],
)
def test_two_organisations_reaching_one_store_by_different_addresses_are_refused(
    postgres_server: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    first: tuple[str, str | None],
    second: tuple[str, str | None],
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    url = postgres_server.url(postgres_server.new_database())
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    for (host, schema), name in zip((first, second), ("gent", "kortrijk"), strict=True):
        org = Org(name, tmp_path / name, "http://127.0.0.1:9/v2", secrets.token_hex(32))
        pg_org(config_dir, org, url.replace("127.0.0.1", host), schema)
    port = _free_port()
    for config in config_dir.glob("*.toml"):
        config.write_text(config.read_text().replace("{port}", str(port)))

    result = CliRunner().invoke(cli.app, ["serve", "--config", str(config_dir)])

    assert result.exit_code == 2, result.output
    assert "state.url: gent.toml and kortrijk.toml reach the same state store" in " ".join(
        result.output.split()
    )


def test_an_organisation_whose_database_is_down_at_start_is_started_once_it_answers(
    scim_tenants: ScimTenants,
    postgres_server: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    orgs = {}
    for name in ("gent", "kortrijk"):
        server = scim_tenants.new()
        orgs[name] = Org(name, tmp_path / name, server.base_url, secrets.token_hex(32), server)
    write_config(config_dir, orgs["gent"], state_keys(orgs["gent"], StateBackend(), None))
    missing = f"later_{secrets.token_hex(4)}"  # the database kortrijk names does not exist yet
    pg_org(config_dir, orgs["kortrijk"], postgres_server.url(missing), None)
    log = tmp_path / "serve.log"

    with serving(config_dir, log) as (process, base):
        wait_for("gent's users", lambda: len(orgs["gent"].users()) == PEOPLE, FAST)
        ready = httpx2.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["organisations"]["kortrijk"]["status"] == "not_ready"
        assert httpx2.get(f"{base}/readyz/kortrijk", timeout=10).status_code == 503
        assert httpx2.get(f"{base}/healthz", timeout=10).status_code == 200  # no restart helps
        refused = post(base, "kortrijk", orgs["kortrijk"].secret, event_body("k-1", "E0001"))
        assert refused.status_code == 503  # not stored: the HR system sends it again

        with postgres_server.admin() as admin:  # the database comes up
            admin.execute(f'CREATE DATABASE "{missing}" OWNER connector TEMPLATE template0')

        wait_for("kortrijk's users", lambda: len(orgs["kortrijk"].users()) == PEOPLE, FAST)
        kortrijk = lambda: httpx2.get(f"{base}/readyz/kortrijk", timeout=10).status_code == 200  # noqa: E731
        wait_for("kortrijk to be ready", kortrijk, FAST)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    events = [
        line.get("event") for line in log_lines(log) if line.get("organisation") == "kortrijk"
    ]
    assert "service.organisation_waiting" in events and "service.organisation_started" in events
