"""Real SCIM servers on loopback for the integration tests, and a recorder of what a client sends.

`scim_server` runs the third-party `scim2-server` CLI in a subprocess with the ACM/IDM extension
schema added to the RFC 7643 defaults (the User resource type declares the enterprise and the
ACM/IDM extensions); `scim_server_plain` runs it with its defaults only. Each test gets a fresh,
empty server; `scim_server_module` shares one per test module where tests do not interfere;
`scim_tenants` shares one per module that serves a fresh, empty tenant to each test that asks.
`django_scim` runs django-scim2 (stock adapters, tests/django_target) instead, fresh per test.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from scim2_server.utils import load_json_resource

ACMIDM_SCHEMA_FILE = Path(__file__).parents[2] / "connector" / "schemas" / "acmidm-user.json"
REPOSITORY = Path(__file__).parents[2]
DJANGO_SETTINGS = "tests.django_target.settings"
ACMIDM_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:acmidm:1.0:User"
STARTUP_SECONDS = 20.0
_STARTUP_TENANT = "startup"  # with dynamic tenants: the tenant that shows the server is up


@dataclass(frozen=True, slots=True)
class ScimServer:
    """A running scim2-server: where to reach it, and its log file."""

    base_url: str  # http://127.0.0.1:PORT/v2
    log: Path
    acmidm: bool


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the client sent it."""

    method: str
    url: str
    body: bytes


@dataclass(slots=True)
class RequestRecorder:
    """An httpx2 request event hook that keeps method, URL and body of every request."""

    requests: list[RecordedRequest] = field(default_factory=list)

    async def __call__(self, request: httpx2.Request) -> None:
        """Record one request (httpx2 calls this before sending it)."""
        body = await request.aread()
        self.requests.append(RecordedRequest(request.method, str(request.url), body))

    @property
    def urls(self) -> list[str]:
        """Every URL sent, query string included."""
        return [request.url for request in self.requests]

    @property
    def writes(self) -> list[RecordedRequest]:
        """The requests that change something: POST (but not .search), PUT, PATCH, DELETE."""
        return [
            request
            for request in self.requests
            if request.method in {"POST", "PUT", "PATCH", "DELETE"}
            and not request.url.split("?")[0].endswith("/.search")
        ]

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.requests.clear()


@pytest.fixture
def recorded_requests() -> RequestRecorder:
    """A recorder to pass as `event_hooks={"request": [recorder]}` to an httpx2.AsyncClient."""
    return RequestRecorder()


@pytest.fixture
def scim_server(tmp_path: Path) -> Iterator[ScimServer]:
    """A fresh scim2-server serving the ACM/IDM extension, for one test."""
    yield from _serve(tmp_path, acmidm=True)


@pytest.fixture
def scim_server_plain(tmp_path: Path) -> Iterator[ScimServer]:
    """A fresh scim2-server with its defaults only (core + enterprise, no ACM/IDM extension)."""
    yield from _serve(tmp_path, acmidm=False)


@pytest.fixture(scope="module")
def scim_server_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScimServer]:
    """One scim2-server serving the ACM/IDM extension, shared by the tests of a module."""
    yield from _serve(tmp_path_factory.mktemp("scim2-server"), acmidm=True)


@dataclass(slots=True)
class ScimTenants:
    """One scim2-server with dynamic tenants: `new()` gives a fresh, empty server of its own."""

    root: str  # http://127.0.0.1:PORT
    log: Path
    acmidm: bool
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def new(self) -> ScimServer:
        """A tenant nobody used yet (`http://127.0.0.1:PORT/tN/v2`)."""
        base_url = f"{self.root}/t{next(self._numbers)}/v2"
        return ScimServer(base_url=base_url, log=self.log, acmidm=self.acmidm)


@pytest.fixture(scope="module")
def scim_tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScimTenants]:
    """One scim2-server (with the ACM/IDM extension) per module, a fresh tenant per `new()`.

    Cheaper than a server per test (a start costs about two seconds), as isolated.
    """
    servers = _serve(tmp_path_factory.mktemp("scim2-tenants"), acmidm=True, tenants=True)
    server = next(servers)
    try:
        root = server.base_url.removesuffix(f"/{_STARTUP_TENANT}/v2")
        yield ScimTenants(root=root, log=server.log, acmidm=server.acmidm)
    finally:
        servers.close()


def _serve(directory: Path, *, acmidm: bool, tenants: bool = False) -> Iterator[ScimServer]:
    """Start scim2-server on a free loopback port, wait until it answers, stop it afterwards.

    With `tenants`, the server creates a tenant on the first request to `/<tenant>/v2/...`; the
    server yielded is then the tenant used to see it answer.
    """
    port = _free_port()
    command = [sys.executable, "-m", "scim2_server.testserver.cli", "--port", str(port)]
    if acmidm:
        command += _acmidm_arguments(directory)
    if tenants:
        command.append("--dynamic-tenants")
    log = directory / f"scim2-server-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    prefix = f"/{_STARTUP_TENANT}" if tenants else ""
    server = ScimServer(base_url=f"http://127.0.0.1:{port}{prefix}/v2", log=log, acmidm=acmidm)
    try:
        _wait_until_up(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def django_scim(tmp_path: Path) -> Iterator[ScimServer]:
    """A fresh django-scim2 server (tests/django_target, stock adapters) for one test.

    Its base URL ends in /scim/v2; no authentication (the connector's `method = "none"`). A start,
    migrations of a new SQLite database included, takes 0.3-0.9 s, a stop about 0.2 s.
    """
    directory = tmp_path / "django-scim"
    directory.mkdir()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(DJANGO_TARGET_DIR=str(directory), DJANGO_SETTINGS_MODULE=DJANGO_SETTINGS)
    command = [sys.executable, "-m", "tests.django_target.serve", "--port", str(port)]
    log = directory / f"django-scim-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=REPOSITORY, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    server = ScimServer(base_url=f"http://127.0.0.1:{port}/scim/v2", log=log, acmidm=False)
    try:
        _wait_until_up(server, process, name="django-scim2")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _acmidm_arguments(directory: Path) -> list[str]:
    """Write the default schemas and resource types plus the ACM/IDM extension; CLI arguments."""
    schemas = load_json_resource("default-schemas.json")
    schemas.append(json.loads(ACMIDM_SCHEMA_FILE.read_text(encoding="utf-8")))
    resource_types = load_json_resource("default-resource-types.json")
    for resource_type in resource_types:
        if resource_type["id"] == "User":
            extensions = resource_type.setdefault("schemaExtensions", [])
            extensions.append({"schema": ACMIDM_USER_SCHEMA, "required": False})
    schema_file = directory / "schemas.json"
    schema_file.write_text(json.dumps(schemas), encoding="utf-8")
    resource_type_file = directory / "resource-types.json"
    resource_type_file.write_text(json.dumps(resource_types), encoding="utf-8")
    return ["--schema", str(schema_file), "--resource-type", str(resource_type_file)]


def _free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_up(
    server: ScimServer, process: subprocess.Popen[bytes], name: str = "scim2-server"
) -> None:
    """Poll /ServiceProviderConfig until it answers 200; fail with the server's log otherwise."""
    deadline = time.monotonic() + STARTUP_SECONDS
    with httpx2.Client(timeout=1.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                if http.get(f"{server.base_url}/ServiceProviderConfig").status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.05)
    process.kill()
    process.wait()
    output = server.log.read_text(encoding="utf-8", errors="replace")
    pytest.fail(f"{name} did not start on {server.base_url}:\n{output}")
