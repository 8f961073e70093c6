"""Several `scim-connector serve` replicas on one PostgreSQL state store (issue 17).

Two real `serve` processes share a database on the session's PostgreSQL server and one
scim2-server tenant. HR events are signed and sent to both in turn, as a load balancer would;
one replica is killed with SIGKILL part-way and its share goes to the other from then on.
Skipped, with the reason, where PostgreSQL is not installed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest

from connector.service.webhook import signed_headers
from tests.factories import GENT, HR_FIELDS, hr_row, write_csv
from tests.integration.conftest import ScimTenants, _free_port
from tests.integration.serving import serve_process, wait_for
from tests.postgres import PASSWORD, PASSWORD_ENV, PostgresServer

pytestmark = pytest.mark.integration

SECRET = "9bFlIkpYt5HfavHYMD5hzcS7hsPRxCcQPDRMQYnrLx4="
RIGHT = "Premiezoeker Gebruiker"
KNOWN, JOINERS = range(1, 21), range(21, 31)  # synced before the events; new with them
EVENTS = 500
LEASE_SECONDS = 3


def write_config(directory: Path, base_url: str, url: str, rows: list[dict[str, str]]) -> Path:
    write_csv(directory / "hr.csv", rows, fields=HR_FIELDS)
    (directory / "webhook.secret").write_text(SECRET + "\n", encoding="utf-8")
    (directory / "state.secret").write_text("a state secret shared by the replicas\n")
    config = directory / "connector.toml"
    config.write_text(
        f"""
[source]
path = "hr.csv"

[target]
base_url = "{base_url}"

[state]
url = "{url}"
password_env = "{PASSWORD_ENV}"
secret_file = "state.secret"

[service]
webhook_secret_file = "webhook.secret"
schedule = "* * * * *"
midnight_sync = true
event_lease_seconds = {LEASE_SECONDS}
shutdown_grace_seconds = 5

[safety]
max_creates_percent = false
max_grants_percent = false

[logging]
format = "json"
""",
        encoding="utf-8",
    )
    return config


@contextmanager
def replica(config: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """One `serve` process on `config`, on a port of its own; up (healthy) when yielded."""
    port = _free_port()
    env = {
        **os.environ,
        PASSWORD_ENV: PASSWORD,
        "SCIM_CONNECTOR_SERVICE__LISTEN": f"127.0.0.1:{port}",
    }
    with serve_process(config, port, log, env) as (process, base):
        yield process, base


def post_event(http: httpx2.Client, base: str, n: int, employee: int) -> int:
    body = json.dumps(
        {
            "event_id": f"ev-{n:04d}",
            "type": "employee.updated",
            "organisation_code": GENT,
            "employee_id": f"E{employee:04d}",
        }
    ).encode()
    headers = {"Content-Type": "application/json", **signed_headers(SECRET, body, time.time())}
    return http.post(f"{base}/hr/events", content=body, headers=headers).status_code


def scalar(db: psycopg.Connection[Any], sql: str) -> Any:
    row = db.execute(sql).fetchone()
    assert row is not None
    return row[0]


def log_events(log: Path, name: str) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == name:
                found.append(entry)
    return found


def test_two_replicas_process_every_event_once_in_effect_though_one_is_killed_part_way(
    postgres_server: PostgresServer, scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    tenant = scim_tenants.new()
    database = postgres_server.new_database()
    rows = [hr_row(n, rights=RIGHT) for n in KNOWN]
    config = write_config(tmp_path, tenant.base_url, postgres_server.url(database), rows)
    logs = [tmp_path / "replica-a.log", tmp_path / "replica-b.log"]
    db = psycopg.connect(postgres_server.url(database), password=PASSWORD, autocommit=True)
    http = httpx2.Client(timeout=30)
    with ExitStack() as replicas:
        (first, first_base) = replicas.enter_context(replica(config, logs[0]))
        (second, second_base) = replicas.enter_context(replica(config, logs[1]))
        # Both start without a full sync today: the midnight catch-up runs on one of them.
        wait_for(
            "the catch-up sync",
            lambda: scalar(db, "SELECT count(*) FROM runs WHERE status = 'done'") >= 1,
        )
        write_csv(tmp_path / "hr.csv", rows + [hr_row(n, rights=RIGHT) for n in JOINERS])
        started = time.monotonic()
        people = [*KNOWN, *JOINERS]
        bases = [first_base, second_base]
        held: list[str] = []  # the events the second replica had claimed when it was killed
        for n in range(EVENTS):
            if not held and n >= EVENTS // 2:
                # Frozen first, so that what it holds cannot change between the look and the
                # kill (it might otherwise finish a claimed event in between).
                os.kill(second.pid, signal.SIGSTOP)
                held = [
                    event_id
                    for (event_id,) in db.execute(
                        "SELECT event_id FROM inbox WHERE processed_at IS NULL AND claim LIKE %s",
                        (f"%:{second.pid}:%",),
                    )
                ]
                if held:
                    os.kill(second.pid, signal.SIGKILL)  # in the middle of its work
                    second.wait()
                else:
                    os.kill(second.pid, signal.SIGCONT)
            base = first_base if held else bases[n % 2]
            assert post_event(http, base, n, people[n % len(people)]) == 202
        assert held, "the second replica never held a claim to be killed with"
        wait_for(
            "every event to be processed",
            lambda: scalar(db, "SELECT count(*) FROM inbox WHERE processed_at IS NULL") == 0,
            timeout=90,
        )
        elapsed = time.monotonic() - started
        assert first.poll() is None
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0

    assert scalar(db, "SELECT count(*) FROM inbox") == EVENTS
    outcomes = dict(db.execute("SELECT outcome, count(*) FROM inbox GROUP BY outcome").fetchall())
    assert outcomes == {"ok": EVENTS}
    # Both replicas took events; what the killed one held was taken over after its lease.
    assert all(log_events(log, "event.processing") for log in logs)
    survivor_runs = {entry["run_id"] for entry in log_events(logs[0], "event.processing")}
    for event_id in held:
        run_id = scalar(db, f"SELECT run_id FROM inbox WHERE event_id = '{event_id}'")
        assert run_id in survivor_runs, event_id

    # No person created twice, no membership granted twice: in the journal and in the target.
    creates = Counter(
        key
        for (key,) in db.execute(
            "SELECT person_key FROM journal WHERE kind = 'create' AND phase = 'done'"
        )
    )
    assert set(creates.values()) == {1}  # nobody created twice
    # A create the killed replica sent but could not record is found and linked by the
    # survivor (read back, or adopted on its externalId), not created again: every person is
    # managed once, whoever recorded it.
    assert len(creates) <= len(KNOWN) + len(JOINERS)
    assert scalar(db, "SELECT count(*) FROM users") == len(people)
    users = http.get(f"{tenant.base_url}/Users", params={"count": 1000}).json()["Resources"]
    names = Counter(user["userName"] for user in users)
    assert len(names) == len(people) and set(names.values()) == {1}
    groups = http.get(f"{tenant.base_url}/Groups", params={"count": 1000}).json()["Resources"]
    assert [group["displayName"] for group in groups] == [RIGHT]
    members = Counter(member["value"] for member in groups[0].get("members", []))
    assert len(members) == len(people) and set(members.values()) == {1}

    # Schedules fired once, not once per replica: one full sync to its end per slot done (a
    # slot the killed replica held is run by the survivor; one still held at the SIGTERM is
    # handed back, not done).
    slots = [slot for (slot,) in db.execute("SELECT slot FROM schedule_runs WHERE done_at > ''")]
    ended = scalar(
        db, "SELECT count(*) FROM runs WHERE command = 'sync' AND status IN ('done', 'failed')"
    )
    assert any(slot.startswith("midnight:") for slot in slots)
    assert ended == len(slots), (slots, ended)
    started_logs = [e for log in logs for e in log_events(log, "sync.started")]
    started = len([e for e in started_logs if e.get("command") == "sync"])
    # Beyond those, only syncs cut short: by the kill, or by the SIGTERM (perhaps unrecorded).
    cut_short = scalar(db, "SELECT count(*) FROM runs WHERE command = 'sync'") - ended
    assert ended <= started <= ended + cut_short + 1, (started, ended, cut_short)
    assert elapsed < 60, f"{EVENTS} events took {elapsed:.0f} s"
    db.close()
    http.close()


def test_readiness_says_not_ready_while_the_database_cannot_be_reached_and_recovers(
    postgres_server: PostgresServer, scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    database = postgres_server.new_database()
    rows = [hr_row(n) for n in KNOWN]
    url = postgres_server.url(database)
    config = write_config(tmp_path, scim_tenants.new().base_url, url, rows)
    http = httpx2.Client(timeout=30)
    with replica(config, tmp_path / "serve.log") as (process, base):
        wait_for("ready", lambda: http.get(f"{base}/readyz").status_code == 200)
        with postgres_server.admin() as admin:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )
        asked = time.monotonic()
        answer = http.get(f"{base}/readyz")
        assert time.monotonic() - asked < 10  # a bounded wait, not a hanging probe
        assert answer.status_code == 503
        assert "the state store does not answer" in answer.json()["reasons"]
        assert http.get(f"{base}/healthz").status_code == 200  # alive: no restart needed
        with postgres_server.admin() as admin:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        wait_for("ready again", lambda: http.get(f"{base}/readyz").status_code == 200)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    http.close()
