"""A fault-injecting HTTP proxy for tests: loopback only, between the connector and a server.

It speaks just enough HTTP/1.1 (request line, headers, Content-Length bodies, keep-alive) to
sit in front of scim2-server, and for each request asks a `FaultPlan` what to do: forward it,
answer 429 with Retry-After, answer 500/503, refuse it (400, 501), answer with the resource as
it is (a write without effect), an empty list (a filter that lies), delay, hold it until a test
opens a gate, or drop the connection before or after forwarding (the latter is a lost answer:
the server did the work, the client never hears). A `Rule`, which sees the request's body too,
goes first: it can answer a request of one form with any status and body, unforwarded (a
target that refuses that form, or answers it as done without doing it).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus

import httpx2


class FaultKind(StrEnum):
    """What the proxy does with one request."""

    FORWARD = "forward"
    TOO_MANY = "429"
    ERROR = "500"
    UNAVAILABLE = "503"
    DELAY = "delay"
    DROP_BEFORE = "drop_before"
    DROP_AFTER = "drop_after"
    HOLD = "hold"
    EMPTY_LIST = "empty_list"  # a 200 ListResponse with nothing in it: a filter that lies
    REFUSED = "400"  # a SCIM Error answer: the request is refused, not worth sending again
    NOT_IMPLEMENTED = "501"  # a SCIM Error answer: the server does not do this at all
    SWALLOW = "swallow"  # not forwarded; answered 200 with the resource as it is: no effect
    ANSWER = "answer"  # answer `status` with `body`, without forwarding
    TRICKLE = "trickle"  # forwarded; the answer's body sent one byte every `seconds`


# The answers the proxy makes up itself: status line and SCIM JSON body.
_CANNED: dict[FaultKind, tuple[str, bytes]] = {
    FaultKind.EMPTY_LIST: (
        "200 OK",
        b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], '
        b'"totalResults": 0, "Resources": []}',
    ),
    FaultKind.REFUSED: (
        "400 Bad Request",
        b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], '
        b'"status": "400", "detail": "refused by the fault proxy"}',
    ),
    FaultKind.NOT_IMPLEMENTED: (
        "501 Not Implemented",
        b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], '
        b'"status": "501", "detail": "not implemented"}',
    ),
}


@dataclass(frozen=True, slots=True)
class Fault:
    """One decision: the kind, and its parameter (Retry-After or delay seconds, the gate, or the
    status and body of an ANSWER)."""

    kind: FaultKind = FaultKind.FORWARD
    seconds: float = 0.0
    gate: Gate | None = None
    status: int = 200
    body: bytes = b""


FORWARD = Fault()


@dataclass(frozen=True, slots=True)
class Seen:
    """A request the proxy saw, and what it did with it."""

    method: str
    path: str
    fault: FaultKind
    at: float  # loop time
    body: bytes = b""


FaultPlan = Callable[[str, str, int], Fault]
"""(method, path with query, index of this request) -> what to do with it."""

Rule = Callable[[str, str, bytes], Fault | None]
"""(method, path with query, body) -> what to do with it; None: as the FaultPlan says."""


def answering(pattern: str, body: str, fault: Fault, times: int | None = None) -> Rule:
    """Apply `fault` to every request (the first `times` ones) whose "METHOD path" matches
    `pattern` and whose body matches the regular expression `body`."""
    compiled, in_body = re.compile(pattern), re.compile(body.encode())
    count = 0
    lock = threading.Lock()

    def rule(method: str, path: str, content: bytes) -> Fault | None:
        nonlocal count
        if not (compiled.search(f"{method} {path}") and in_body.search(content)):
            return None
        with lock:
            count += 1
            return fault if times is None or count <= times else None

    return rule


def first_of(*rules: Rule) -> Rule:
    """The rule whose decision is the first of these rules' that decides."""

    def rule(method: str, path: str, content: bytes) -> Fault | None:
        for each in rules:
            fault = each(method, path, content)
            if fault is not None:
                return fault
        return None

    return rule


def scim_error(status: int, detail: str, scim_type: str | None = None) -> Fault:
    """An ANSWER with a SCIM Error (RFC 7644 §3.12) of this status."""
    error: dict[str, str] = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": str(status),
        "detail": detail,
    }
    if scim_type:
        error["scimType"] = scim_type
    return Fault(FaultKind.ANSWER, status=status, body=json.dumps(error).encode())


def random_faults(rate: float, seed: int, pattern: str = r".*") -> FaultPlan:
    """Fail about `rate` of the requests matching `pattern`, in mixed ways, deterministically."""
    rng = random.Random(seed)
    kinds = [
        Fault(FaultKind.TOO_MANY, 0.05),
        Fault(FaultKind.ERROR),
        Fault(FaultKind.UNAVAILABLE, 0.05),
        Fault(FaultKind.DROP_BEFORE),
        Fault(FaultKind.DROP_AFTER),
        Fault(FaultKind.DELAY, 0.05),
    ]
    compiled = re.compile(pattern)
    lock = threading.Lock()

    def plan(method: str, path: str, index: int) -> Fault:
        with lock:
            if not compiled.search(f"{method} {path}") or rng.random() >= rate:
                return FORWARD
            return rng.choice(kinds)

    return plan


def nth(n: int, fault: Fault, pattern: str = r".*") -> FaultPlan:
    """Apply `fault` to the n-th (from 1) request matching `pattern`; forward the rest."""
    compiled = re.compile(pattern)
    count = 0
    lock = threading.Lock()

    def plan(method: str, path: str, index: int) -> Fault:
        nonlocal count
        if not compiled.search(f"{method} {path}"):
            return FORWARD
        with lock:
            count += 1
            return fault if count == n else FORWARD

    return plan


@dataclass(slots=True)
class Gate:
    """Holds every request matching `pattern` from the n-th (from 1) on, until it is opened.

    A test stops the client at a known point this way (`held` tells when it got there), does
    what it wants to do at that point, then lets everything through with `open()`.
    """

    n: int
    pattern: str = r".*"
    held: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def plan(self, method: str, path: str, index: int) -> Fault:
        """The FaultPlan: HOLD from the n-th matching request on (until opened), else forward."""
        if self.opened.is_set() or not re.search(self.pattern, f"{method} {path}"):
            return FORWARD
        with self._lock:
            self._count += 1
            return Fault(FaultKind.HOLD, gate=self) if self._count >= self.n else FORWARD

    def open(self) -> None:
        """Let the held requests, and all later ones, through."""
        self.opened.set()


@dataclass(slots=True)
class FaultProxy:
    """A running proxy: where it listens, and what it saw."""

    upstream: str  # e.g. http://127.0.0.1:8080
    plan: FaultPlan
    rule: Rule | None = None
    port: int = 0
    seen: list[Seen] = field(default_factory=list)

    def base_url(self, path: str = "/v2") -> str:
        """The proxy's URL for a path of the upstream."""
        return f"http://127.0.0.1:{self.port}{path}"

    def faults(self) -> list[Seen]:
        """The requests that were not simply forwarded."""
        return [s for s in self.seen if s.fault is not FaultKind.FORWARD]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with httpx2.AsyncClient(base_url=self.upstream, timeout=30) as upstream:
            try:
                while await self._one(reader, writer, upstream):
                    pass
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            except asyncio.CancelledError:
                pass  # the proxy is shutting down: end this connection quietly
            finally:
                writer.close()

    async def _one(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: httpx2.AsyncClient,
    ) -> bool:
        line = await reader.readline()
        if not line:
            return False
        method, target, _ = line.decode("latin-1").split(" ", 2)
        headers: list[tuple[str, str]] = []
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        length = next((int(v) for n, v in headers if n.lower() == "content-length"), 0)
        body = await reader.readexactly(length) if length else b""

        index = len(self.seen)
        ruled = self.rule(method, target, body) if self.rule is not None else None
        fault = ruled or self.plan(method, target, index)
        now = asyncio.get_running_loop().time()
        self.seen.append(Seen(method, target, fault.kind, now, body))
        if fault.kind is FaultKind.DROP_BEFORE:
            return False
        if fault.kind is FaultKind.ANSWER:
            kind = "application/scim+json" if fault.body else ""
            head = f"HTTP/1.1 {fault.status} {_reason(fault.status)}\r\n"
            head += f"Content-Type: {kind}\r\n" if kind else ""
            head += f"Content-Length: {len(fault.body)}\r\n\r\n"
            writer.write(head.encode("latin-1") + fault.body)
            await writer.drain()
            return True
        if fault.kind in (FaultKind.TOO_MANY, FaultKind.ERROR, FaultKind.UNAVAILABLE):
            extra = f"Retry-After: {fault.seconds:g}\r\n" if fault.seconds else ""
            status = {"429": "429 Too Many Requests", "500": "500 Internal Server Error"}.get(
                fault.kind.value, "503 Service Unavailable"
            )
            writer.write(f"HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\n\r\n".encode("latin-1"))
            await writer.drain()
            return True
        if fault.kind in _CANNED:
            status, body = _CANNED[fault.kind]
            head = f"HTTP/1.1 {status}\r\nContent-Type: application/scim+json\r\n"
            writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body)
            await writer.drain()
            return True
        if fault.kind is FaultKind.DELAY:
            await asyncio.sleep(fault.seconds)
        if fault.gate is not None:
            fault.gate.held.set()
            while not fault.gate.opened.is_set():
                await asyncio.sleep(0.01)
        skip = {"host", "content-length", "connection", "transfer-encoding"}
        if fault.kind is FaultKind.SWALLOW:  # the resource as it is, as if the write was done
            method, body = "GET", b""
        response = await upstream.request(
            method,
            target,
            content=body,
            headers=[(n, v) for n, v in headers if n.lower() not in skip],
        )
        if fault.kind is FaultKind.DROP_AFTER:
            return False
        payload = response.content
        out = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
        out += [
            f"{n}: {v}"
            for n, v in response.headers.items()
            if n.lower() not in skip | {"content-encoding"}
        ]
        out.append(f"Content-Length: {len(payload)}")
        head = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
        if fault.kind is FaultKind.TRICKLE:  # every read gets a byte in time; the whole never
            writer.write(head)
            for at in range(len(payload)):
                writer.write(payload[at : at + 1])
                await writer.drain()
                await asyncio.sleep(fault.seconds)
            return True
        writer.write(head + payload)
        await writer.drain()
        return True


def _reason(status: int) -> str:
    """The reason phrase of an HTTP status."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def trickle_from(n: int, seconds: float, pattern: str = r".*") -> FaultPlan:
    """Trickle the answers (a byte every `seconds`) to the requests matching `pattern` from
    the n-th (from 1) on; forward the rest."""
    compiled = re.compile(pattern)
    count = 0
    lock = threading.Lock()

    def plan(method: str, path: str, index: int) -> Fault:
        nonlocal count
        if not compiled.search(f"{method} {path}"):
            return FORWARD
        with lock:
            count += 1
            return Fault(FaultKind.TRICKLE, seconds) if count >= n else FORWARD

    return plan


def forward_all(method: str, path: str, index: int) -> Fault:
    """The FaultPlan that forwards everything (for a proxy whose faults are all `Rule`s)."""
    return FORWARD


@contextmanager
def fault_proxy(
    upstream: str, plan: FaultPlan = forward_all, rule: Rule | None = None
) -> Iterator[FaultProxy]:
    """Run a FaultProxy on a free loopback port in a background thread."""
    proxy = FaultProxy(upstream=upstream, plan=plan, rule=rule)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    server: asyncio.AbstractServer | None = None

    async def start() -> None:
        nonlocal server
        server = await asyncio.start_server(proxy._handle, "127.0.0.1", 0)
        proxy.port = server.sockets[0].getsockname()[1]
        started.set()

    def run() -> None:
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the fault proxy did not start")
    try:
        yield proxy
    finally:

        async def shut_down() -> None:
            if server is not None:
                server.close()
            handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for handler in handlers:
                handler.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shut_down(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
