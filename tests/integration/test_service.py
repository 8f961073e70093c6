"""`serve` over real HTTP: the HR webhook, health, metrics, restarts and shutdown.

The service runs either in this process (uvicorn on a loopback port, in a thread: fast, for the
webhook's behaviour) or as `scim-connector serve` in a subprocess (for SIGKILL, SIGTERM and the
schemathesis run). The target is scim2-server on loopback, a fresh tenant per test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx2
import hypothesis
import pytest
import schemathesis
import uvicorn
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette

from connector import jobs
from connector.config import load_config
from connector.report import Report
from connector.service.app import Service, create_app
from connector.service.webhook import signed_headers
from connector.state import InboxEvent, Location, StateStore, sync_lock
from tests.factories import GENT, HR_FIELDS, format_nn, hr_row, make_nn, write_csv
from tests.faultproxy import Gate, fault_proxy
from tests.integration.conftest import ScimServer, ScimTenants, _free_port
from tests.postgres import StateBackend, current_backend

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("state_backend")]

SECRET = "9bFlIkpYt5HfavHYMD5hzcS7hsPRxCcQPDRMQYnrLx4="  # as `openssl rand -base64 32` prints
REPO = Path(__file__).parents[2]
T = TypeVar("T")


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/Brussels")).date()


@dataclass
class Setup:
    """A connector configured against a fresh SCIM tenant, with an HR file to edit."""

    server: ScimServer
    directory: Path
    rows: list[dict[str, str]]
    service: dict[str, Any] = field(default_factory=dict)  # extra [service] keys
    target_extra: str = ""
    base_url: str = ""  # the target as the connector reaches it (default: the server itself)
    port: int = 0
    http: httpx2.Client = field(default_factory=lambda: httpx2.Client(timeout=10))
    state: StateBackend = field(default_factory=current_backend)  # where it keeps its state

    @property
    def config_path(self) -> Path:
        return self.directory / "connector.toml"

    @property
    def state_location(self) -> Location:
        return self.state.location(self.directory)

    def write(self) -> None:
        write_csv(self.directory / "hr.csv", self.rows, fields=HR_FIELDS)
        (self.directory / "webhook.secret").write_text(SECRET + "\n", encoding="utf-8")
        service = {
            "listen": f"127.0.0.1:{self.port or 8000}",
            "webhook_secret_file": "webhook.secret",
            "schedule": "",
            "midnight_sync": False,
            "shutdown_grace_seconds": 30,
        }
        service.update(self.service)
        service_toml = "\n".join(f"{key} = {json.dumps(value)}" for key, value in service.items())
        self.config_path.write_text(
            f"""
[source]
path = "hr.csv"

[target]
base_url = "{self.base_url or self.server.base_url}"
{self.target_extra}

[target.auth]
method = "none"

[state]
{self.state.toml(self.directory)}
[service]
{service_toml}

[logging]
format = "json"
""",
            encoding="utf-8",
        )

    def end(self, n: int, day: dt.date) -> None:
        """Give person `n` (1-based) an end date in the HR file."""
        self.rows[n - 1]["end_date"] = day.isoformat()
        self.write()

    def sync(self) -> Report:
        self.write()
        return asyncio.run(jobs.sync(load_config(self.config_path), jobs.new_run_id(), today()))

    def users(self) -> dict[str, dict[str, Any]]:
        answer = self.http.get(f"{self.server.base_url}/Users", params={"count": 1000})
        return {user["userName"]: user for user in answer.json().get("Resources", [])}

    def store(self) -> StateStore:
        store = StateStore.open_read_only(self.state_location)
        assert store is not None
        return store

    def event(self, event_id: str) -> InboxEvent | None:
        store = self.store()
        try:
            return store.event(event_id)
        finally:
            store.close()

    def inbox_size(self) -> int:
        (count,) = self.state.query(self.directory, "SELECT count(*) FROM inbox")
        return int(count[0])

    def runs(self, command: str | None = None) -> list[tuple[str, str, str]]:
        """(run_id, command, status) of every run, oldest first."""
        rows = self.state.query(
            self.directory, "SELECT run_id, command, status FROM runs ORDER BY started_at"
        )
        return [(row[0], row[1], row[2]) for row in rows if command is None or row[1] == command]


@pytest.fixture
def setup(scim_tenants: ScimTenants, tmp_path: Path) -> Setup:
    made = Setup(scim_tenants.new(), tmp_path, [hr_row(n) for n in (1, 2, 3)])
    made.write()
    return made


def event_body(event_id: str, employee_id: str, kind: str = "terminated", **extra: Any) -> bytes:
    event = {
        "event_id": event_id,
        "type": f"employee.{kind}",
        "organisation_code": GENT,
        "employee_id": employee_id,
        **extra,
    }
    return json.dumps(event).encode()


@dataclass
class Client:
    """HTTP to a running service."""

    base: str
    http: httpx2.Client = field(default_factory=lambda: httpx2.Client(timeout=10))

    def post(
        self,
        body: bytes,
        *,
        secret: str = SECRET,
        at: float | None = None,
        headers: dict[str, str] | None = None,
        content: Any = None,
    ) -> httpx2.Response:
        sent = {"Content-Type": "application/json"}
        sent.update(signed_headers(secret, body, time.time() if at is None else at))
        sent.update(headers or {})
        return self.http.post(
            f"{self.base}/hr/events", content=body if content is None else content, headers=sent
        )

    def event(self, event_id: str, employee_id: str, kind: str = "terminated") -> httpx2.Response:
        return self.post(event_body(event_id, employee_id, kind))

    def get(self, path: str) -> httpx2.Response:
        return self.http.get(f"{self.base}{path}")

    def metrics(self) -> dict[str, float]:
        values = {}
        for line in self.get("/metrics").text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def processed(setup: Setup, event_id: str, timeout: float = 30.0) -> InboxEvent:
    def done() -> InboxEvent | None:
        event = setup.event(event_id)
        return event if event is not None and event.processed_at is not None else None

    return wait_for(f"event {event_id} to be processed", done, timeout)


@contextmanager
def in_thread(setup: Setup, tune: Callable[[Service], None] | None = None) -> Iterator[Client]:
    """The service of `setup` on uvicorn in a thread of this process, on a free loopback port."""
    settings = load_config(setup.config_path)
    app: Starlette = create_app(settings, webhook_secret=settings.service.resolve_webhook_secret())
    if tune is not None:
        tune(app.state.service)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for("the service to start", lambda: server.started or not thread.is_alive(), 20)
    assert server.started, "the service did not start"
    try:
        yield Client(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()
        assert not thread.is_alive(), "the service did not stop"


# ---------------------------------------------------------------------------- the webhook


def test_a_signed_termination_event_deactivates_the_employee_in_the_target(setup: Setup) -> None:
    assert setup.sync().exit_code == 0
    setup.end(1, today() - dt.timedelta(days=1))
    with in_thread(setup) as client:
        answer = client.event("ev-1", "E0001")
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"status": "accepted", "event_id": "ev-1"}
        event = processed(setup, "ev-1")
    assert event.outcome == "ok" and event.run_id is not None
    users = setup.users()
    assert users["person1@gent.be"]["active"] is False
    assert users["person2@gent.be"]["active"] is True
    assert users["person3@gent.be"]["active"] is True
    assert setup.runs("event") == [(event.run_id, "event", "done")]
    store = setup.store()
    trail = [(e.kind, e.phase) for e in store.history(run_id=event.run_id)]
    store.close()
    assert trail == [("deactivate", "intent"), ("deactivate", "done")]


def test_an_event_ends_ok_when_only_other_peoples_rows_are_bad(setup: Setup) -> None:
    assert setup.sync().exit_code == 0
    setup.rows[2]["email"] = "not an address"  # person 3's row is rejected from now on
    setup.end(1, today() - dt.timedelta(days=1))
    with in_thread(setup) as client:
        assert client.event("ev-1", "E0001").status_code == 202
        first = processed(setup, "ev-1")
        rejected_rows = client.metrics()["scim_connector_rejected_rows"]
        assert client.event("ev-2", "E0003", kind="updated").status_code == 202
        own = processed(setup, "ev-2")
    assert first.outcome == "ok"  # person 3's row is not person 1's business
    assert setup.users()["person1@gent.be"]["active"] is False
    assert rejected_rows == 1  # the gauge still counts the input's rejected rows
    assert own.outcome == "partial"  # person 3's event: their own row is rejected
    assert [status for _, _, status in setup.runs("event")] == ["done", "done"]


def test_bad_signature_stale_timestamp_and_oversized_body_are_refused_and_change_nothing(
    setup: Setup,
) -> None:
    setup.service["max_body_bytes"] = 2048
    assert setup.sync().exit_code == 0
    setup.end(1, today() - dt.timedelta(days=1))
    body = event_body("ev-1", "E0001")
    big = event_body("ev-2", "E0001", record={"note": "x" * 4000})
    with in_thread(setup) as client:
        answers = {
            "wrong secret": client.post(body, secret="not the secret"),
            "stale": client.post(body, at=time.time() - 301),
            "future": client.post(body, at=time.time() + 301),
            "unsigned": client.post(body, headers={"X-Scim-Connector-Signature": ""}),
            "signature of another body": client.post(
                body, headers=signed_headers(SECRET, body + b" ", time.time())
            ),
            "too large": client.post(big),
            "too large, chunked": client.post(big, content=iter([big[:1500], big[1500:]])),
            "not JSON": client.post(b"{not json"),
            "no employee id": client.post(event_body("ev-3", "")),
        }
        statuses = {what: answer.status_code for what, answer in answers.items()}
        assert statuses == {
            "wrong secret": 401,
            "stale": 401,
            "future": 401,
            "unsigned": 401,
            "signature of another body": 401,
            "too large": 413,
            "too large, chunked": 413,
            "not JSON": 400,
            "no employee id": 400,
        }
        assert answers["not JSON"].json() == {
            "error": "bad_request",
            "reason": "body: is not valid JSON",
        }
        assert "employee_id" in answers["no employee id"].json()["reason"]
        assert answers["stale"].json()["error"] == "unauthorized"
        metrics = client.metrics()
    assert setup.inbox_size() == 0
    assert [command for _, command, _ in setup.runs()] == ["sync"]
    assert setup.users()["person1@gent.be"]["active"] is True
    assert metrics['scim_connector_webhook_requests_total{outcome="unauthorized"}'] == 5
    assert metrics['scim_connector_webhook_requests_total{outcome="too_large"}'] == 2
    assert metrics['scim_connector_webhook_requests_total{outcome="bad_request"}'] == 2
    assert metrics['scim_connector_webhook_requests_total{outcome="accepted"}'] == 0


def test_a_duplicate_event_is_answered_200_and_processed_once(setup: Setup) -> None:
    assert setup.sync().exit_code == 0
    setup.end(1, today() - dt.timedelta(days=1))
    nn = make_nn(dt.date(1985, 7, 30), serial=1)  # person 1's
    record = {"national_id": nn, "end_date": setup.rows[0]["end_date"], "fte": 1}
    other_number = {**record, "national_id": make_nn(dt.date(1985, 7, 30), serial=3)}
    with in_thread(setup) as client:
        first = client.post(event_body("ev-1", "E0001", record=record))
        again_at_once = client.post(event_body("ev-1", "E0001", record=record))
        processed(setup, "ev-1")
        respelled = {"fte": 1.0, "end_date": record["end_date"], "national_id": nn}
        again_later = client.post(event_body("ev-1", "E0001", record=respelled))
        reused = client.post(event_body("ev-1", "E0002", record=record))
        # Another record under the same id is another event, even one whose stored (masked)
        # form is the same: a different national number of the same birth date.
        other_record = client.post(event_body("ev-1", "E0001", record=other_number))
        no_record = client.event("ev-1", "E0001")
        ok_runs = 'scim_connector_runs_total{command="event",outcome="ok"}'
        wait_for("the run to be counted", lambda: client.metrics().get(ok_runs) == 1)
        metrics = client.metrics()
    assert [first.status_code, again_at_once.status_code, again_later.status_code] == [
        202,
        200,
        200,
    ]
    assert again_later.json() == {"status": "duplicate", "event_id": "ev-1"}
    assert [reused.status_code, other_record.status_code, no_record.status_code] == [409] * 3
    assert other_record.json()["error"] == "conflict"
    assert nn not in other_record.text
    assert len(setup.runs("event")) == 1
    assert setup.inbox_size() == 1
    assert metrics['scim_connector_runs_total{command="event",outcome="ok"}'] == 1
    assert metrics['scim_connector_webhook_requests_total{outcome="duplicate"}'] == 2
    assert metrics['scim_connector_webhook_requests_total{outcome="conflict"}'] == 3


def test_metrics_show_runs_operations_events_and_the_queue(setup: Setup) -> None:
    assert setup.sync().exit_code == 0
    setup.end(1, today() - dt.timedelta(days=1))
    setup.rows[1]["family_name"] = "Renamed"
    setup.write()
    before = time.time()
    with in_thread(setup) as client:
        assert client.post(event_body("ev-0", "E0001"), secret="wrong").status_code == 401
        assert client.event("ev-1", "E0001").status_code == 202
        assert client.event("ev-2", "E0002", "updated").status_code == 202
        assert client.event("ev-3", "E9999", "created").status_code == 202
        for event_id in ("ev-1", "ev-2", "ev-3"):
            processed(setup, event_id)
        events = 'scim_connector_events_processed_total{outcome="unknown_employee"}'
        wait_for("the events to be counted", lambda: client.metrics().get(events) == 1)
        wait_for(
            "the queue to be empty", lambda: client.metrics()["scim_connector_inbox_pending"] == 0
        )
        metrics = client.metrics()
        text = client.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain")
    expected = {
        'scim_connector_runs_total{command="event",outcome="ok"}': 2,
        'scim_connector_runs_total{command="event",outcome="error"}': 0,
        'scim_connector_runs_total{command="sync",outcome="ok"}': 0,
        'scim_connector_operations_total{kind="deactivate",outcome="done"}': 1,
        'scim_connector_operations_total{kind="update",outcome="done"}': 1,
        'scim_connector_operations_total{kind="create",outcome="done"}': 0,
        'scim_connector_operations_total{kind="update",outcome="failed"}': 0,
        'scim_connector_events_processed_total{outcome="ok"}': 2,
        'scim_connector_events_processed_total{outcome="unknown_employee"}': 1,
        'scim_connector_webhook_requests_total{outcome="accepted"}': 3,
        'scim_connector_webhook_requests_total{outcome="unauthorized"}': 1,
        "scim_connector_inbox_pending": 0,
        "scim_connector_rejected_rows": 0,
        "scim_connector_retries_total": 0,
        "scim_connector_sync_running": 0,
    }
    assert {name: metrics[name] for name in expected} == expected
    assert metrics["scim_connector_last_success_timestamp_seconds"] >= before
    assert setup.event("ev-3") is not None
    assert setup.event("ev-3").outcome == "unknown_employee"  # type: ignore[union-attr]


def test_an_event_waits_while_another_process_holds_the_lock(setup: Setup) -> None:
    assert setup.sync().exit_code == 0
    setup.end(1, today() - dt.timedelta(days=1))

    def quick(service: Service) -> None:
        service.runner.lock_poll_seconds = 0.1

    with in_thread(setup, quick) as client:
        with sync_lock(setup.state_location):  # a CLI sync, say
            assert client.event("ev-1", "E0001").status_code == 202
            time.sleep(1.0)
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            assert time.monotonic() - started < 1.0  # the event loop is not blocked
            assert client.metrics()["scim_connector_inbox_pending"] == 1
            event = setup.event("ev-1")
            assert event is not None and event.processed_at is None
        assert processed(setup, "ev-1").outcome == "ok"
    assert setup.users()["person1@gent.be"]["active"] is False


def test_readiness_fails_while_syncs_fail_and_recovers(setup: Setup) -> None:
    setup.service["ready_max_failed_age_seconds"] = 0
    assert setup.sync().exit_code == 0
    hr_file = setup.directory / "hr.csv"

    def quick(service: Service) -> None:
        service.runner.event_retry_seconds = (0.3, 0.3)

    with in_thread(setup, quick) as client:
        assert client.get("/readyz").json() == {"status": "ready"}
        hr_file.rename(hr_file.with_suffix(".away"))
        assert client.event("ev-1", "E0001", "updated").status_code == 202
        not_ready = wait_for(
            "readiness to fail", lambda: (r := client.get("/readyz")).status_code == 503 and r
        )
        assert not_ready.json()["status"] == "not_ready"
        assert "hr.csv" in not_ready.json()["reasons"][0]
        assert client.get("/healthz").status_code == 200
        event = setup.event("ev-1")
        assert event is not None and event.processed_at is None
        hr_file.with_suffix(".away").rename(hr_file)
        assert processed(setup, "ev-1").outcome == "ok"
        assert client.get("/readyz").status_code == 200
        metrics = client.metrics()
    assert metrics['scim_connector_runs_total{command="event",outcome="error"}'] >= 1
    stored = setup.event("ev-1")
    assert stored is not None and stored.attempts >= 1


def test_the_openapi_description_is_published_and_the_webhook_has_no_server_errors(
    setup: Setup, tmp_path: Path
) -> None:
    # In a subprocess: CPython 3.11 before 3.11.8 may raise "AST constructor recursion depth
    # mismatch" when two threads parse Python source at once (Hypothesis here, pydantic's
    # docstring extraction in the service's sync thread).
    setup.service["shutdown_grace_seconds"] = 0
    with serve(setup, tmp_path / "serve.log"):
        client = Client(f"http://127.0.0.1:{setup.port}")
        document = client.get("/openapi.json").json()
        assert document["openapi"].startswith("3.1")
        post = document["paths"]["/hr/events"]["post"]
        headers = {p["name"] for p in post["parameters"]}
        assert headers == {"X-Scim-Connector-Timestamp", "X-Scim-Connector-Signature"}
        schema = schemathesis.openapi.from_url(f"{client.base}/openapi.json")
        operation = schema["/hr/events"]["POST"]
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )
        checks = [
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
        statuses: Counter[int] = Counter()

        @hypothesis.settings(
            max_examples=40,
            deadline=None,
            database=None,
            derandomize=True,  # the same cases every run: the assertions below always hold
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        @hypothesis.given(case=cases, sign=st.booleans())
        def webhook_answers_without_server_errors(case: Any, sign: bool) -> None:
            body = _serialised(case.body)
            sent = {
                name: value
                for name, value in (case.headers or {}).items()
                if isinstance(value, str) and value.isascii() and value.isprintable()
            }
            if sign:
                sent.update(signed_headers(SECRET, body, time.time()))
            sent["Content-Type"] = "application/json"
            response = client.http.post(f"{client.base}/hr/events", content=body, headers=sent)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=checks, headers=sent)

        webhook_answers_without_server_errors()
        # Whatever the generated cases were: a signed event, an unsigned one, a bad body.
        for body, signed in ((event_body("ev-x", "E0001"), True), (b"{}", False), (b"[", True)):
            sent = signed_headers(SECRET, body, time.time()) if signed else {}
            sent["Content-Type"] = "application/json"
            answer = client.http.post(f"{client.base}/hr/events", content=body, headers=sent)
            statuses[answer.status_code] += 1
    assert not [status for status in statuses if status >= 500]
    assert {202, 400, 401} <= set(statuses), statuses


def _serialised(body: Any) -> bytes:
    """A generated body as sent: JSON, or raw bytes as generated (negative cases), or nothing."""
    if body is None or isinstance(body, NotSet):
        return b""
    if isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


# ---------------------------------------------------------------------------- the process


@contextmanager
def serve(setup: Setup, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`scim-connector serve` in a subprocess, stderr (its JSON log) to `log`; up when yielded."""
    setup.port = _free_port()
    setup.write()
    command = [sys.executable, "-m", "connector", "serve", "--config", str(setup.config_path)]
    with log.open("ab") as output:
        process = subprocess.Popen(command, cwd=REPO, stdout=output, stderr=output)
    client = Client(f"http://127.0.0.1:{setup.port}")

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            return client.get("/healthz").status_code == 200
        except httpx2.TransportError:
            return False

    try:
        wait_for("serve to answer /healthz", up, 30)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def log_lines(log: Path) -> list[dict[str, Any]]:
    lines = []
    for line in log.read_text(encoding="utf-8").splitlines():
        assert line.startswith("{"), f"not a JSON log line: {line!r}"
        lines.append(json.loads(line))
    return lines


def assert_no_national_numbers(setup: Setup, text: str) -> None:
    for row in setup.rows:
        digits = row["national_id"].replace(".", "").replace("-", "")
        assert digits not in text and format_nn(digits) not in text


def test_an_event_accepted_just_before_a_kill_is_processed_after_a_restart(
    setup: Setup, tmp_path: Path
) -> None:
    # On PostgreSQL the restarted service is a replica taking over what a dead one claimed,
    # once its lease ran out (on SQLite, the only service on the store releases it at start).
    setup.service["event_lease_seconds"] = 2
    assert setup.sync().exit_code == 0
    setup.end(1, today() - dt.timedelta(days=1))
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with sync_lock(setup.state_location), serve(setup, first_log) as process:
        client = Client(f"http://127.0.0.1:{setup.port}")
        answer = client.post(
            event_body("ev-1", "E0001", record={"national_id": setup.rows[0]["national_id"]})
        )
        assert answer.status_code == 202
        wait_for(
            "the worker to wait for the lock", lambda: "waiting_for_lock" in first_log.read_text()
        )
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    event = setup.event("ev-1")
    assert event is not None and event.processed_at is None
    assert setup.users()["person1@gent.be"]["active"] is True

    with serve(setup, second_log) as process:
        event = processed(setup, "ev-1")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    assert event.outcome == "ok"
    assert setup.users()["person1@gent.be"]["active"] is False

    lines = [line for line in log_lines(second_log) if "logger" not in line]  # not uvicorn's
    names = [line["event"] for line in lines]
    start, end = names.index("event.processing"), names.index("event.processed")
    for line in lines[start : end + 1]:
        assert line["event_id"] == "ev-1" and line["run_id"] == event.run_id, line
    for log in (first_log, second_log):
        assert_no_national_numbers(setup, log.read_text(encoding="utf-8"))
    assert event.record is not None
    assert_no_national_numbers(setup, json.dumps(event.record))


PEOPLE = 60


def unmatched_intents(setup: Setup, run_id: str) -> list[tuple[str, str]]:
    """The (person key, kind) of every journalled 'intent' with no later 'done' or 'failed'."""
    open_intents: Counter[tuple[str, str]] = Counter()
    rows = setup.state.query(
        setup.directory,
        "SELECT person_key, kind, phase FROM journal WHERE run_id = ? ORDER BY id",
        (run_id,),
    )
    for person, kind, phase in rows:
        if phase == "intent":
            open_intents[(person, kind)] += 1
        elif phase in ("done", "failed") and open_intents[(person, kind)] > 0:
            open_intents[(person, kind)] -= 1
    return list(open_intents.elements())


def assert_consistent(setup: Setup, *, in_flight_allowed: int) -> tuple[str, str]:
    """What "consistent" means after a stop, and the (run id, status) of the run:

    1. no run is left 'running': it ended ('done' or 'failed') or was recorded 'interrupted';
    2. every 'intent' in the journal has a later 'done' or 'failed' for the same person and
       kind, except, for an interrupted run, the operations in flight when it was interrupted
       (at most `in_flight_allowed`: `target.concurrency`), each of a different person;
    3. everyone the state store records exists in the target under the SCIM id it records.
    """
    runs = setup.runs()
    assert len(runs) == 1
    run_id, _, status = runs[0]
    assert status in ("done", "failed", "interrupted")
    unmatched = unmatched_intents(setup, run_id)
    assert len(unmatched) <= (in_flight_allowed if status == "interrupted" else 0), unmatched
    assert len({person for person, _ in unmatched}) == len(unmatched)
    store = setup.store()
    known = store.load_known()
    store.close()
    target_ids = {user["id"] for user in setup.users().values()}
    assert {user.scim_id for user in known.users.values()} <= target_ids
    return run_id, status


@pytest.fixture
def many(scim_tenants: ScimTenants, tmp_path: Path) -> Setup:
    made = Setup(
        scim_tenants.new(),
        tmp_path,
        [hr_row(n) for n in range(1, PEOPLE + 1)],
        service={"midnight_sync": True},  # no full sync ran today: serve starts one at once
        # One create at a time (one POST each, no Bulk), so that a stop lands part-way.
        target_extra="concurrency = 1\n[target.capabilities]\nbulk = false",
    )
    made.write()
    return made


HELD_AT = 11  # the first sync's 11th user create waits at the proxy until the test lets it go


@contextmanager
def held_first_sync(setup: Setup, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], Gate]]:
    """`serve` whose first sync is held in its 11th user create, 10 users made, at the proxy.

    The test does what it wants at that known point and opens the gate; no timing is involved.
    Runs after it reach the server directly.
    """
    gate = Gate(HELD_AT, r"^POST \S*/Users$")
    server = urlsplit(setup.server.base_url)
    with fault_proxy(f"{server.scheme}://{server.netloc}", gate.plan) as proxy:
        setup.base_url = proxy.base_url(server.path)
        try:
            with serve(setup, log) as process:
                wait_for("the sync to reach the held create", gate.held.is_set, 60)
                assert len(setup.users()) == HELD_AT - 1
                yield process, gate
        finally:
            gate.open()
            setup.base_url = ""  # later runs go straight to the server


def in_log(log: Path, event: str) -> Callable[[], bool]:
    return lambda: f'"event": "{event}"' in log.read_text(encoding="utf-8")


def test_sigterm_during_a_sync_lets_it_finish_and_leaves_a_consistent_state(
    many: Setup, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with held_first_sync(many, log) as (process, gate):
        process.send_signal(signal.SIGTERM)
        wait_for("the service to start stopping", in_log(log, "service.stopping"))
        gate.open()
        assert process.wait(60) == 0
    _, status = assert_consistent(many, in_flight_allowed=0)
    assert status == "done"
    assert len(many.users()) == PEOPLE
    assert sum(many.sync().counts.values()) == 0
    names = [line["event"] for line in log_lines(log)]
    assert (
        names.index("service.stopping")
        < names.index("sync.finished")
        < names.index("service.stopped")
    )


def test_sigterm_with_no_grace_interrupts_the_sync_consistently_and_the_next_run_converges(
    many: Setup, tmp_path: Path
) -> None:
    many.service["shutdown_grace_seconds"] = 0
    log = tmp_path / "serve.log"
    with held_first_sync(many, log) as (process, gate):
        process.send_signal(signal.SIGTERM)
        wait_for("the sync to be interrupted", in_log(log, "service.interrupting_sync"))
        assert process.wait(60) == 0
        gate.open()  # the held create reaches the server after the service is gone
    _, status = assert_consistent(many, in_flight_allowed=1)
    assert status == "interrupted"
    assert len(many.users()) < PEOPLE
    assert many.sync().exit_code == 0
    users = many.users()
    assert len(users) == PEOPLE
    assert len({user["externalId"] for user in users.values()}) == PEOPLE  # no duplicates
    assert sum(many.sync().counts.values()) == 0
