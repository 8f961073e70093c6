"""Running the sandbox: uvicorn on a loopback port, in the foreground or in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from connector.sandbox.scim import SandboxScimApp
from connector.scim_models import ACMIDM_USER_SCHEMA

STARTUP_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class RunningSandbox:
    """Where a running sandbox answers."""

    host: str
    port: int

    @property
    def base_url(self) -> str:
        """The SCIM base URL, e.g. `http://127.0.0.1:8080/v2`."""
        return f"http://{self.host}:{self.port}/v2"


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _server(app: SandboxScimApp) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    return uvicorn.Server(config)


@contextmanager
def sandbox_in_thread(host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningSandbox]:
    """Serve a fresh sandbox in a background thread until the block ends."""
    sock = _bind(host, port)
    server = _server(SandboxScimApp())
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.02)
    try:
        yield RunningSandbox(host, sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve_foreground(host: str, port: int) -> None:
    """Serve a sandbox until interrupted (Ctrl-C)."""
    sock = _bind(host, port)
    print(f"Sandbox SCIM service on http://{host}:{sock.getsockname()[1]}/v2", flush=True)
    print(f"  schemas: RFC 7643 User/Group + enterprise + {ACMIDM_USER_SCHEMA}", flush=True)
    print("  authentication: none (any client is accepted); data lives in memory", flush=True)
    _server(SandboxScimApp()).run(sockets=[sock])
