"""The benchmark's SCIM target: scim2-server's ASGI application (the sandbox's, with the ACM/IDM
User extension, in memory) under uvicorn on a loopback port, in a process of its own.

`python -m bench.server [--seed FILE]` prints `READY <port>` on stdout once it answers. A seed
file (JSON Lines of `{"type": "User" | "Group", "id": ..., "resource": {...}}`) is loaded into
the storage before serving, each resource validated as the server validates a POST body, with
the id given: that is how a large target is set up without 150,000 POSTs. The `Server` class
starts and stops such a process from the benchmark.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx2
import uvicorn
from scim2_models import Meta, Resource, ResourceType
from scim2_server.memory import InMemoryStorage

from connector.sandbox.scim import SandboxScimApp

STARTUP_SECONDS = 600.0  # a seed of 150,000 users takes a while to load
NATIONAL_ID = "urn:ietf:params:scim:schemas:extension:acmidm:1.0:User:nationalId"


class SeededStorage(InMemoryStorage):
    """An in-memory storage that keeps the id a seeded resource comes with."""

    preset_id: str | None = None

    def generate_id(self, resource_type: ResourceType, resource: Resource[Any]) -> str:
        """The preset id while seeding, else a fresh one."""
        return self.preset_id or super().generate_id(resource_type, resource)


def build_app(seed: Path | None) -> tuple[SandboxScimApp, int]:
    """The sandbox's SCIM application, with the seed file's resources stored; and their count."""
    app = SandboxScimApp()
    storage = SeededStorage()
    app.storage.storage = storage  # type: ignore[attr-defined]
    count = 0
    if seed is None:
        return app, count
    service = app.service
    with seed.open("rb") as lines, service.provider:
        for line in lines:
            item = json.loads(line)
            resource_type = service.get_resource_type(item["type"])
            _store(storage, resource_type, service.get_model(resource_type), item)
            count += 1
    storage.preset_id = None
    gc.collect()
    gc.freeze()  # the seeded resources live as long as the server: keep them out of GC passes
    return app, count


def _store(
    storage: SeededStorage,
    resource_type: ResourceType,
    model: type[Resource[Any]],
    item: dict[str, Any],
) -> None:
    """Store one seeded resource as a POST would, with its id.

    The fast way validates the body once and stores it without the two deep copies that
    `create` makes (a third of the time at 150,000 users); uniqueness is still checked. It
    uses the storage's private helpers, so it falls back on `create` if they change.
    """
    resource = model.model_validate(item["resource"])
    try:
        resource.id = item["id"]
        now = storage.clock()
        resource.meta = Meta(
            resource_type=resource_type.name,
            created=now,
            last_modified=now,
            version=storage.next_version(),
        )
        values = storage._values_of(resource)
        storage._check_uniqueness(resource, values)
        storage._store(resource, values)
    except AttributeError:  # another scim2-server version: the public way
        storage.preset_id = item["id"]
        storage.create(resource_type, resource)


def main(argv: list[str] | None = None) -> None:
    """Serve until terminated; print `READY <port>` once listening."""
    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=Path)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    app, count = build_app(args.seed)
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and without it every keep-alive answer (headers, then body) stalls 40 ms on Nagle's
    # algorithm meeting the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    seconds = time.perf_counter() - started
    print(f"SEEDED {count} {seconds:.2f}", file=sys.stderr, flush=True)
    print(f"READY {sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])


class Server:
    """A `bench.server` process: start it (optionally seeded), then `stop()` it."""

    def __init__(self, log: Path, seed: Path | None = None) -> None:
        command = [sys.executable, "-m", "bench.server"]
        if seed is not None:
            command += ["--seed", str(seed)]
        self.log = log
        self._log: IO[bytes] = log.open("ab")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._log, env=_child_env()
        )
        self.port = self._wait_ready()
        self._warm_up()
        self.startup_seconds = time.perf_counter() - started

    @property
    def base_url(self) -> str:
        """The SCIM base URL."""
        return f"http://127.0.0.1:{self.port}/v2"

    def cpu_seconds(self) -> float:
        """The CPU time the server process used so far (user + system)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _warm_up(self) -> None:
        """One lookup per attribute the connector filters on, so that the server builds its
        equality indexes now (on a seeded server the first would take seconds), not while a
        run is measured."""
        with httpx2.Client(base_url=self.base_url, timeout=600) as http:
            for attribute in ("externalId", "userName"):
                http.get("/Users", params={"filter": f'{attribute} eq "bench-warm-up"'})
            search = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": f'{NATIONAL_ID} eq "00000000000"',
            }
            http.post("/Users/.search", json=search)
            http.get("/Groups", params={"filter": 'displayName eq "bench-warm-up"'})

    def _wait_ready(self) -> int:
        assert self.process.stdout is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        line = self.process.stdout.readline().decode()
        if not line.startswith("READY ") or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"bench server did not start; see {self.log}")
        port = int(line.split()[1])
        _wait_listening(port, deadline)
        return port

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_listening(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"bench server not listening on port {port}")


def _child_env() -> dict[str, str]:
    """The environment for a child process: this one, with the project on PYTHONPATH."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


if __name__ == "__main__":
    main()
