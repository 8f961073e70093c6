"""Running the sandbox: uvicorn on a loopback port, in the foreground or in a background thread.

With a `SandboxConfig` the sandbox has its OAuth2 token endpoint (`connector.sandbox.oauth`)
and SCIM calls need a token it issued; without one, SCIM is open to anyone.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from connector.sandbox.oauth import (
    METADATA_PATH,
    TOKEN_PATH,
    SandboxClient,
    SandboxConfig,
    SandboxOAuth,
    sandbox_asgi_app,
)

STARTUP_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A PEM certificate (chain) and its private key, to serve the sandbox over https."""

    certificate: Path
    private_key: Path


@dataclass(frozen=True, slots=True)
class RunningSandbox:
    """Where a running sandbox answers, and (with OAuth2) its token endpoint's state."""

    host: str
    port: int
    oauth: SandboxOAuth | None = None
    tls: bool = False

    @property
    def origin(self) -> str:
        """`http://host:port` (https with TLS): the issuer of its tokens."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The SCIM base URL, e.g. `http://127.0.0.1:8080/v2`."""
        return f"{self.origin}/v2"

    @property
    def token_url(self) -> str | None:
        """The OAuth2 token endpoint, e.g. `http://127.0.0.1:8080/oauth/token` (None: open)."""
        return self.origin + TOKEN_PATH if self.oauth is not None else None

    @property
    def metadata_url(self) -> str | None:
        """The RFC 8414 authorization server metadata (None: no token endpoint)."""
        return self.origin + METADATA_PATH if self.oauth is not None else None

    @property
    def clients(self) -> tuple[SandboxClient, ...]:
        """The clients the token endpoint knows (none for an open sandbox)."""
        return self.oauth.config.clients if self.oauth is not None else ()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP given explicitly: asyncio sets TCP_NODELAY only on sockets whose protocol
    # says TCP, and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _server(app: ASGIApp, tls: TlsFiles | None = None) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        access_log=False,
        ssl_certfile=str(tls.certificate) if tls else None,
        ssl_keyfile=str(tls.private_key) if tls else None,
    )
    return uvicorn.Server(config)


@contextmanager
def sandbox_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    config: SandboxConfig | None = None,
    tls: TlsFiles | None = None,
) -> Iterator[RunningSandbox]:
    """Serve a fresh sandbox in a background thread until the block ends (`config`: OAuth2)."""
    sock = _bind(host, port)
    app, oauth = sandbox_asgi_app(config)
    server = _server(app, tls)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.02)
    try:
        yield RunningSandbox(host, sock.getsockname()[1], oauth, tls=tls is not None)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve_foreground(
    host: str,
    port: int,
    config: SandboxConfig | None,
    announce: Callable[[RunningSandbox], None],
) -> None:
    """Serve a sandbox until interrupted (Ctrl-C, SIGTERM); `announce` is told where, once
    bound. Call it from the main thread."""
    sock = _bind(host, port)
    app, oauth = sandbox_asgi_app(config)
    # uvicorn stops on SIGINT/SIGTERM and then raises the signal again once its own handlers
    # are gone; this handler turns that into a normal return, so callers' cleanup runs.
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        announce(RunningSandbox(host, sock.getsockname()[1], oauth))
        _server(app).run(sockets=[sock])
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()


class _Stopped(Exception):
    """SIGTERM arrived."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped
