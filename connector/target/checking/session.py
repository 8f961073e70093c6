"""One check run's plumbing: the requests it sends, the probes it isolates from each other, the
throwaway resources it made, and the findings it records.

Raw requests on the connector's authenticated httpx2 client (`connect.http_client`: the
configured authentication, TLS, timeouts, and retries of reads), independent of
`TargetClient.discover`. Each probe is isolated: a probe whose request fails or whose answer
makes no sense becomes a failed finding, and the others go on.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import httpx2

from connector.errors import AuthError
from connector.target.check import Area, Finding, Verdict
from connector.target.checking.announced import Announced, Endpoints
from connector.target.checking.answer import Answer, clean
from connector.target.transport import NO_RETRY

Step = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Names:
    """The names of this run's throwaway resources (random, so nobody else has them)."""

    token: str

    @classmethod
    def new(cls) -> Names:
        """Fresh names."""
        return cls(secrets.token_hex(4))

    @property
    def stem(self) -> str:
        """`scim-connector-check-<random>`."""
        return f"scim-connector-check-{self.token}"

    @property
    def user(self) -> str:
        """The throwaway user's userName (also its work email)."""
        return f"{self.stem}@invalid.example"

    @property
    def other_user(self) -> str:
        """The second, minimal throwaway user's userName."""
        return f"{self.stem}-b@invalid.example"

    @property
    def nobody(self) -> str:
        """A value no resource has: for filters that must find nothing."""
        return f"{self.stem}-nobody"


@dataclass(slots=True)
class Made:
    """The throwaway resources this run created (id None: maybe created, id unknown)."""

    users: dict[str, str | None] = field(default_factory=dict)  # userName -> id
    group: tuple[str, str | None] | None = None  # (displayName, id)


def id_of(answer: Answer) -> str | None:
    """The id of a created resource, from its body."""
    body = answer.resource
    value = body.get("id") if body is not None else None
    return value if isinstance(value, str) and value else None


class Session:
    """One check run's requests and findings, and what it learned on the way."""

    def __init__(self, http: httpx2.AsyncClient, names: Names) -> None:
        self.http = http
        self.names = names
        self.findings: list[Finding] = []
        self.announced = Announced()
        self.endpoints = Endpoints()
        self.user_extensions: frozenset[str] | None = None
        self.totals: dict[str, int | None] = {}
        self.made = Made()
        # Until a read that needs authentication got through, an AuthError ends the check.
        self.authenticated = False

    async def send(
        self,
        method: str,
        url: str,
        *,
        body: object = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
    ) -> Answer:
        """One request; its answer as an `Answer` (a body that is not JSON is None).
        `retry=False`: a read is sent once (the transport does not retry it)."""
        content = None
        sent_headers = dict(headers or {})
        if body is not None:
            content = json.dumps(body, ensure_ascii=False).encode()
            sent_headers["Content-Type"] = "application/scim+json"
        response = await self.http.request(
            method,
            url,
            content=content,
            params=params,
            headers=sent_headers,
            extensions=None if retry else dict(NO_RETRY),
        )
        try:
            parsed: object = response.json() if response.content else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        media = response.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        return Answer(response.status_code, parsed, response.headers.get("ETag"), media)

    async def read(self, endpoint: str, scim_id: str) -> Answer:
        """GET one resource."""
        return await self.send("GET", f"{endpoint}/{scim_id}")

    async def isolated(self, area: Area, item: str, step: Step) -> None:
        """Run one probe; if it fails, record that as a finding and go on."""
        try:
            await step()
        except AuthError as exc:
            if not self.authenticated:
                raise  # authentication fails at all: the check cannot be done
            self.findings.append(Finding(area, item, "-", clean(str(exc)), Verdict.FAILED))
        except Exception as exc:  # the isolation boundary: no probe may stop the others
            observed = clean(f"{type(exc).__name__}: {exc}")
            self.findings.append(Finding(area, item, "-", observed, Verdict.FAILED))

    def add(self, *findings: Finding) -> None:
        """Record findings."""
        self.findings.extend(findings)
