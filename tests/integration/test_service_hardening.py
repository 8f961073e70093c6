"""`serve` against hostile networks and slow targets: bounded reads, bounded target calls and
runs, flat memory, one service per state store.

The service runs on real uvicorn on loopback (in a subprocess, or in this process for what a
test needs to look inside); the target is scim2-server, behind the fault proxy where it must
misbehave.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.factories import hr_row
from tests.integration.conftest import ScimTenants, _free_port
from tests.integration.test_service import REPO, Client, Setup, log_lines, serve

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(scim_tenants: ScimTenants, tmp_path: Path) -> Setup:
    made = Setup(scim_tenants.new(), tmp_path, [hr_row(n) for n in (1, 2, 3)])
    made.write()
    return made


def test_a_second_serve_on_the_same_state_store_refuses_to_start_with_exit_2(
    setup: Setup, tmp_path: Path
) -> None:
    with serve(setup, tmp_path / "first.log") as first:
        other = setup.config_path.with_name("other.toml")
        text = setup.config_path.read_text(encoding="utf-8")
        other.write_text(
            text.replace(f"127.0.0.1:{setup.port}", f"127.0.0.1:{_free_port()}"), encoding="utf-8"
        )
        second = subprocess.run(
            [sys.executable, "-m", "connector", "serve", "--config", str(other)],
            cwd=REPO,
            capture_output=True,
            timeout=60,
        )
        assert second.returncode == 2
        said = " ".join(second.stderr.decode().split())
        assert "another `scim-connector serve` is running on the state store" in said
        assert str(setup.state_path) in said
        assert "Traceback" not in said
        assert first.poll() is None
        assert Client(f"http://127.0.0.1:{setup.port}").get("/healthz").status_code == 200


# ---------------------------------------------------------------------------- slow clients

SLOW_LIMITS = {
    "webhook_concurrency": 3,
    "body_timeout_seconds": 2,
    "header_timeout_seconds": 2,
    "max_connections": 40,
}


def slow_body(port: int) -> socket.socket:
    """A connection that sends a webhook request's headers and one byte of its 200-byte body."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(
        b"POST /hr/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200\r\n\r\n{"
    )
    return conn


def answer_and_close(conn: socket.socket, timeout: float) -> tuple[bytes, float]:
    """What the server sends until it closes the connection, and when it closed (seconds)."""
    started = time.monotonic()
    conn.settimeout(timeout)
    received = b""
    try:
        while chunk := conn.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    finally:
        conn.close()
    return received, time.monotonic() - started


def healthz_seconds(port: int) -> float:
    started = time.monotonic()
    answer = httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert answer.status_code == 200
    return time.monotonic() - started


def events(log: Path, name: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(log) if line.get("event") == name]


def test_slow_webhook_bodies_beyond_the_limit_are_answered_and_healthz_stays_answered(
    setup: Setup, tmp_path: Path
) -> None:
    setup.service.update(SLOW_LIMITS)
    log = tmp_path / "serve.log"
    with serve(setup, log):
        started = time.monotonic()
        slow = [slow_body(setup.port) for _ in range(12)]  # four times webhook_concurrency
        assert max(healthz_seconds(setup.port) for _ in range(5)) < 1.0
        answers = [answer_and_close(conn, 10) for conn in slow]
        statuses = Counter(int(raw.split(b" ", 2)[1]) for raw, _ in answers)
        assert statuses == {503: 9, 408: 3}
        busy = [seconds for raw, seconds in answers if b" 503 " in raw[:20]]
        assert max(busy) < 1.5  # refused before their body, not held
        assert time.monotonic() - started < 2 + 3  # the slow ones end at the body deadline
        assert max(healthz_seconds(setup.port) for _ in range(5)) < 1.0
        assert len(events(log, "webhook.busy")) == 1  # a flood is logged once
        assert len([e for e in events(log, "webhook.refused") if e.get("status") == 408]) == 1
        metrics = Client(f"http://127.0.0.1:{setup.port}").metrics()
        assert metrics['scim_connector_webhook_requests_total{outcome="busy"}'] == 9
        assert metrics['scim_connector_webhook_requests_total{outcome="timeout"}'] == 3


def test_idle_connections_are_closed_at_the_header_deadline_and_a_flood_beyond_the_cap_at_once(
    setup: Setup, tmp_path: Path
) -> None:
    setup.service.update(SLOW_LIMITS)
    log = tmp_path / "serve.log"
    with serve(setup, log):
        started = time.monotonic()
        idle = [socket.create_connection(("127.0.0.1", setup.port)) for _ in range(60)]
        for conn in idle[:-1]:
            conn.sendall(b"GET /heal")  # headers begun, never finished
        closings = sorted(seconds for _, seconds in (answer_and_close(c, 10) for c in idle))
        assert closings[-1] < 2 + 2  # every one closed by the header deadline
        assert time.monotonic() - started < 2 + 3
        assert closings[20] < 1.5  # those beyond max_connections closed at once
        assert max(healthz_seconds(setup.port) for _ in range(5)) < 1.0
        assert len(events(log, "service.too_many_connections")) == 1
        assert len(events(log, "service.slow_headers")) == 1
