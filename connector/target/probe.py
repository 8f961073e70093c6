"""Probing a SCIM target for `check-target`: what it announces against what it really does.

Raw requests on the connector's authenticated httpx2 client (`connect.http_client`: the
configured authentication, TLS, timeouts, and retries of reads), independent of
`TargetClient.discover`. Each probe is isolated: a probe whose request fails or whose answer
makes no sense becomes a failed finding, and the others go on. Only the first request, to
/ServiceProviderConfig, decides whether the target can be used at all (unreachable or refusing
authentication: TargetError, AuthError).

Read-only unless `write_test`: then a throwaway user (`scim-connector-check-<random>@invalid
.example`), a second, minimal one (for group members and paging) and a throwaway group
(`scim-connector-check-<random>`) are created, written in the forms a sync uses, read back,
and deleted in a `finally`, each checked to be gone. No other resource is ever written.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2

from connector.config import Settings
from connector.errors import AuthError, TargetError
from connector.scim_models import ENTERPRISE_USER_SCHEMA
from connector.target import judge
from connector.target.check import (
    MEMBERS_ADD,
    MEMBERS_ON_POST,
    OR_FILTER,
    Area,
    Finding,
    TargetCheck,
    Verdict,
)
from connector.target.connect import EventHooks, http_client
from connector.target.judge import Announced, Answer, Endpoints, FilterTest, Term
from connector.target.profile import MemberRemoval
from connector.target.retry import RetryPolicy

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
EMPLOYEE_NUMBER = f"{ENTERPRISE_USER_SCHEMA}:employeeNumber"
WRONG_VERSION = 'W/"scim-connector-check-wrong-version"'
SAMPLE_PAGE = 20  # read-only: how many users (and groups) to read for known filter values
READ_ONLY = "read-only check: nothing written (--write-test tries writes on throwaway resources)"

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


def throwaway_user(names: Names, enterprise: bool) -> dict[str, Any]:
    """The throwaway user as sent: every attribute a sync writes, two emails, and the
    enterprise employeeNumber if the User type declares that extension."""
    user: dict[str, Any] = {
        "schemas": [USER_SCHEMA, *([ENTERPRISE_USER_SCHEMA] if enterprise else [])],
        "userName": names.user,
        "externalId": names.stem,
        "name": {
            "givenName": "Check",
            "familyName": f"Scim-connector {names.token}",
            "formatted": f"Check Scim-connector {names.token}",
        },
        "displayName": f"scim-connector check {names.token}",
        "emails": [
            {"value": names.user, "type": "work", "primary": True},
            {"value": f"{names.stem}-other@invalid.example", "type": "other"},
        ],
        "active": True,
    }
    if enterprise:
        user[ENTERPRISE_USER_SCHEMA] = {"employeeNumber": names.stem}
    return user


def second_user(names: Names) -> dict[str, Any]:
    """The second throwaway user: the least a user needs."""
    return {
        "schemas": [USER_SCHEMA],
        "userName": names.other_user,
        "name": {"givenName": "Check", "familyName": f"Scim-connector {names.token} B"},
        "active": True,
    }


def patch_body(*operations: Mapping[str, Any]) -> dict[str, Any]:
    """A PatchOp request (RFC 7644 §3.5.2)."""
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def _id_of(answer: Answer) -> str | None:
    """The id of a created resource, from its body."""
    body = answer.resource
    value = body.get("id") if body is not None else None
    return value if isinstance(value, str) and value else None


@dataclass(slots=True)
class Made:
    """The throwaway resources this run created (id None: maybe created, id unknown)."""

    users: dict[str, str | None] = field(default_factory=dict)  # userName -> id
    group: tuple[str, str | None] | None = None  # (displayName, id)


@dataclass(slots=True)
class Samples:
    """Resources whose values filters must find: the throwaway ones, or (read-only) listed ones."""

    users: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    whose: str = "listed"  # "listed" or "throwaway": for the unverified message


class Probe:
    """One check run's requests and findings."""

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

    # -- plumbing --------------------------------------------------------------------------

    async def send(
        self,
        method: str,
        url: str,
        *,
        body: object = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One request; its answer as an `Answer` (a body that is not JSON is None)."""
        content = None
        sent_headers = dict(headers or {})
        if body is not None:
            content = json.dumps(body, ensure_ascii=False).encode()
            sent_headers["Content-Type"] = "application/scim+json"
        response = await self.http.request(
            method, url, content=content, params=params, headers=sent_headers
        )
        try:
            parsed: object = response.json() if response.content else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        return Answer(response.status_code, parsed, response.headers.get("ETag"))

    async def isolated(self, area: Area, item: str, step: Step) -> None:
        """Run one probe; if it fails, record that as a finding and go on."""
        try:
            await step()
        except AuthError as exc:
            if not self.authenticated:
                raise  # authentication fails at all: the check cannot be done
            self.findings.append(Finding(area, item, "-", judge.clean(str(exc)), Verdict.FAILED))
        except Exception as exc:  # the isolation boundary: no probe may stop the others
            observed = judge.clean(f"{type(exc).__name__}: {exc}")
            self.findings.append(Finding(area, item, "-", observed, Verdict.FAILED))

    def add(self, *findings: Finding) -> None:
        """Record findings."""
        self.findings.extend(findings)

    # -- announcements ---------------------------------------------------------------------

    async def reach(self, base_url: str) -> None:
        """Read /ServiceProviderConfig: the one request that must get an answer at all."""
        try:
            answer = await self.send("GET", "/ServiceProviderConfig")
        except httpx2.HTTPError as exc:
            raise TargetError(
                f"cannot reach the target at {base_url}: {exc or type(exc).__name__}"
            ) from None
        findings, self.announced = judge.service_provider_config(answer)
        self.add(*findings)

    async def announcements(self, base_path: str) -> None:
        """/ResourceTypes and /Schemas."""

        async def read_resource_types() -> None:
            answer = await self.send("GET", "/ResourceTypes")
            findings, self.endpoints = judge.resource_types(answer, base_path)
            self.add(*findings)

        async def read_schemas() -> None:
            answer = await self.send("GET", "/Schemas")
            findings, self.user_extensions = judge.schemas(answer, self.endpoints)
            self.add(*findings)

        await self.isolated(Area.RESOURCE_TYPES, "GET /ResourceTypes", read_resource_types)
        await self.isolated(Area.SCHEMAS, "GET /Schemas", read_schemas)

    # -- reading ---------------------------------------------------------------------------

    async def counts(self) -> None:
        """`GET /Users?count=0` and `GET /Groups?count=0`."""
        for name, endpoint in (("Users", self.endpoints.users), ("Groups", self.endpoints.groups)):
            item = f"GET /{name}?count=0"

            async def step(endpoint: str = endpoint, item: str = item, name: str = name) -> None:
                answer = await self.send("GET", endpoint, params={"count": "0"})
                self.totals[name] = answer.total if answer.ok else None
                self.add(judge.count(item, answer))

            await self.isolated(Area.READ, item, step)

    async def paging(self) -> None:
        """Pages of one user: are startIndex and count honoured?"""

        async def step() -> None:
            users = self.endpoints.users
            first = await self.send("GET", users, params={"startIndex": "1", "count": "1"})
            second = await self.send("GET", users, params={"startIndex": "2", "count": "1"})
            self.add(judge.paging(first, second))

        await self.isolated(Area.READ, "paging (startIndex, count=1)", step)

    async def listed_samples(self) -> Samples:
        """Read-only: the first users and groups listed, for known filter values."""
        samples = Samples()
        page = {"startIndex": "1", "count": str(SAMPLE_PAGE)}
        for endpoint, into in (
            (self.endpoints.users, samples.users),
            (self.endpoints.groups, samples.groups),
        ):
            try:
                answer = await self.send("GET", endpoint, params=page)
            except httpx2.HTTPError:
                continue  # the filters say what they could not verify
            into.extend((answer.resources or [])[:SAMPLE_PAGE] if answer.ok else [])
        return samples

    async def search(self, samples: Samples) -> None:
        """`POST /Users/.search`: answered? A value nobody has finds nothing, a known one it."""

        async def step() -> None:
            url = f"{self.endpoints.users}/.search"
            nobody = Term("userName", f"{self.names.nobody}@invalid.example")
            impossible = await self.send(
                "POST", url, body={"schemas": [SEARCH_REQUEST], "filter": nobody.text()}
            )
            sample = _first_with(samples.users, "userName")
            test = FilterTest("POST /Users/.search", "search", impossible)
            if sample is not None and impossible.ok:
                term = Term("userName", sample[1])
                known = await self.send(
                    "POST", url, body={"schemas": [SEARCH_REQUEST], "filter": term.text()}
                )
                test = FilterTest(
                    test.item, test.subject, impossible, known, (term,), frozenset({sample[0]})
                )
            self.add(judge.search_finding(test))

        await self.isolated(Area.READ, "POST /Users/.search", step)

    async def filters(self, samples: Samples) -> None:
        """Each filter the connector uses, with a value nobody has and a value someone has."""
        says = self.announced.says("filter")
        nobody = self.names.nobody
        users, groups = self.endpoints.users, self.endpoints.groups
        cases: list[tuple[str, str, str, list[Term], list[dict[str, Any]], str]] = [
            ("userName eq", "userName", users, [Term("userName", f"{nobody}@invalid.example")],
             samples.users, "userName"),
            ("externalId eq", "externalId", users, [Term("externalId", nobody)],
             samples.users, "externalId"),
            ("emails.value eq", "emails.value", users,
             [Term("emails.value", f"{nobody}@invalid.example")], samples.users, "emails.value"),
            ("displayName eq (Groups)", "displayName", groups, [Term("displayName", nobody)],
             samples.groups, "displayName"),
        ]  # fmt: skip
        for item, attribute, endpoint, impossible, pool, sampled in cases:

            async def step(
                item: str = item,
                attribute: str = attribute,
                endpoint: str = endpoint,
                impossible: list[Term] = impossible,
                pool: list[dict[str, Any]] = pool,
                sampled: str = sampled,
            ) -> None:
                sample = _first_with(pool, sampled)
                known = [Term(attribute, sample[1])] if sample else []
                expected = {sample[0]} if sample else set()
                test = await self.filter_test(
                    item, attribute, endpoint, impossible, known, expected, samples, sampled
                )
                self.add(judge.filter_finding(test, says))

            await self.isolated(Area.FILTER, item, step)

        async def joined() -> None:
            item = "userName eq … or userName eq …"
            impossible = [Term("userName", f"{nobody}-{n}@invalid.example") for n in (1, 2)]
            picked = [s for s in (_with(u, "userName") for u in samples.users) if s][:2]
            known = [Term("userName", value) for _, value in picked]
            if len(known) == 1:
                known.append(impossible[0])
            expected = {scim_id for scim_id, _ in picked}
            test = await self.filter_test(
                item, OR_FILTER, users, impossible, known, expected, samples, "userName"
            )
            self.add(judge.filter_finding(test, says))

        await self.isolated(Area.FILTER, "userName eq … or userName eq …", joined)

    async def filter_test(
        self,
        item: str,
        subject: str,
        endpoint: str,
        impossible: Sequence[Term],
        known: Sequence[Term],
        expected: set[str],
        samples: Samples,
        sampled: str,
    ) -> FilterTest:
        """Send a filter with values nobody has, then (if known) with values someone has."""
        answer = await self.send("GET", endpoint, params={"filter": judge.filter_text(impossible)})
        listed = self.totals.get("Groups" if endpoint == self.endpoints.groups else "Users")
        if samples.whose == "throwaway":
            why = f"no {sampled} of a throwaway resource to look for (not kept?)"
        else:
            why = f"no {sampled} of a listed resource to look for"
        test = FilterTest(item, subject, answer, unfiltered=listed, why_unverified=why)
        if not known or not answer.ok:
            return test
        found = await self.send("GET", endpoint, params={"filter": judge.filter_text(known)})
        return FilterTest(
            item, subject, answer, found, tuple(known), frozenset(expected), listed, why
        )

    # -- writing ---------------------------------------------------------------------------

    async def create_user(self, body: dict[str, Any]) -> tuple[Answer, str | None]:
        """POST a throwaway user, remembered for the cleanup (even when the answer is lost)."""
        user_name = str(body["userName"])
        self.made.users[user_name] = None
        answer = await self.send("POST", self.endpoints.users, body=body)
        scim_id = _id_of(answer) if answer.ok else None
        if answer.ok or scim_id:
            self.made.users[user_name] = scim_id
        else:
            del self.made.users[user_name]  # refused: nothing was created
        return answer, scim_id

    async def read(self, endpoint: str, scim_id: str) -> Answer:
        """GET one resource."""
        return await self.send("GET", f"{endpoint}/{scim_id}")

    async def write_tests(self) -> None:
        """Everything `--write-test` does, then the cleanup (always)."""
        try:
            await self._write_tests()
        finally:
            await self.cleanup()

    async def _write_tests(self) -> None:
        users, groups = self.endpoints.users, self.endpoints.groups
        declared = self.endpoints.user_extensions or frozenset()
        enterprise = ENTERPRISE_USER_SCHEMA.casefold() in declared
        sent = throwaway_user(self.names, enterprise)
        samples = Samples(whose="throwaway")
        ids: dict[str, str] = {}

        async def create_first() -> None:
            answer, scim_id = await self.create_user(sent)
            self.add(judge.created(answer))
            if scim_id is None:
                if answer.ok:
                    self.add(judge.unverified(Area.USER_CREATE, "read back", "created, no id"))
                return
            read = await self.read(users, scim_id)
            self.add(*judge.kept_on_create(sent, read))
            ids["a"] = scim_id
            if read.resource is not None:
                samples.users.append(read.resource)

        async def create_second() -> None:
            answer, scim_id = await self.create_user(second_user(self.names))
            if scim_id is None:
                self.add(judge.refused_or_failed(Area.USER_CREATE, "POST /Users (2nd)", "", answer))
                return
            ids["b"] = scim_id
            read = await self.read(users, scim_id)
            if read.resource is not None:
                samples.users.append(read.resource)

        async def create_group() -> None:
            name = self.names.stem
            body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": name}
            if "a" in ids:
                body["members"] = [{"value": ids["a"]}]
            self.made.group = (name, None)
            answer = await self.send("POST", groups, body=body)
            scim_id = _id_of(answer) if answer.ok else None
            self.made.group = (name, scim_id) if answer.ok else None
            if scim_id is None:
                self.add(judge.refused_or_failed(Area.GROUP, "POST /Groups", "", answer))
                return
            ids["g"] = scim_id
            read = await self.read(groups, scim_id)
            if read.resource is not None:
                samples.groups.append(read.resource)
            if "a" not in ids:
                return
            self.add(
                judge.members_finding(
                    "POST /Groups with a member", MEMBERS_ON_POST, answer, read, present=[ids["a"]]
                )
            )

        await self.isolated(Area.USER_CREATE, "POST /Users", create_first)
        await self.isolated(Area.USER_CREATE, "POST /Users (2nd)", create_second)
        await self.isolated(Area.GROUP, "POST /Groups", create_group)
        await self.paging()
        await self.search(samples)
        await self.filters(samples)
        if "a" not in ids:
            why = "no throwaway user (its POST failed)"
            self.add(judge.unverified(Area.USER_PATCH, "user and group writes", why))
            return
        await self.user_writes(ids["a"], sent, enterprise)
        if "g" in ids and "b" in ids:
            await self.member_writes(ids["g"], ids["a"], ids["b"])
        else:
            why = "no throwaway group or no second user"
            self.add(judge.unverified(Area.GROUP, "member writes", why))
        await self.bulk(ids["a"])

    async def user_writes(self, scim_id: str, sent: Mapping[str, Any], enterprise: bool) -> None:
        """PATCH forms, a PUT and ETags on the throwaway user."""
        users = self.endpoints.users
        url = f"{users}/{scim_id}"
        says = self.announced.says("patch")
        stem = self.names.stem
        replacements: list[tuple[str, Any]] = [
            ("active", False),
            ("displayName", f"scim-connector check {self.names.token} patched"),
            ("externalId", f"{stem}-patched"),
        ]
        if enterprise:
            replacements.append((EMPLOYEE_NUMBER, f"{stem}-patched"))
        else:
            why = "the User type declares no enterprise extension: not sent"
            self.add(judge.unverified(Area.USER_PATCH, "replace enterprise employeeNumber", why))
        for path, value in replacements:

            async def step(path: str = path, value: Any = value) -> None:
                operation = {"op": "replace", "path": path, "value": value}
                answer = await self.send("PATCH", url, body=patch_body(operation))
                read = await self.read(users, scim_id) if answer.ok else None
                self.add(judge.patched(path, value, answer, read, says))

            await self.isolated(Area.USER_PATCH, f"replace {path}", step)

        async def put() -> None:
            changed: dict[str, Any] = {
                "displayName": f"scim-connector check {self.names.token} put",
                "externalId": f"{stem}-put",
                "name.givenName": "Checkput",
                "active": True,
            }
            if enterprise:
                changed[EMPLOYEE_NUMBER] = f"{stem}-put"
            body = json.loads(json.dumps(sent))
            body["id"] = scim_id
            body["displayName"] = changed["displayName"]
            body["externalId"] = changed["externalId"]
            body["name"]["givenName"] = changed["name.givenName"]
            body["active"] = True
            if enterprise:
                body[ENTERPRISE_USER_SCHEMA]["employeeNumber"] = changed[EMPLOYEE_NUMBER]
            answer = await self.send("PUT", url, body=body)
            read = await self.read(users, scim_id) if answer.ok else None
            self.add(judge.replaced(changed, answer, read))

        async def etag() -> None:
            read = await self.read(users, scim_id)
            self.add(judge.versions(read, self.announced))
            operation = {"op": "replace", "path": "active", "value": True}
            answer = await self.send(
                "PATCH", url, body=patch_body(operation), headers={"If-Match": WRONG_VERSION}
            )
            self.add(judge.if_match(answer, self.announced))

        await self.isolated(Area.USER_PUT, "PUT /Users/{id}", put)
        await self.isolated(Area.ETAG, "ETag", etag)

    async def member_writes(self, group: str, a: str, b: str) -> None:
        """Adding members, the three PATCH forms of removing them, and a PUT with members."""
        groups = self.endpoints.groups
        url = f"{groups}/{group}"
        says = self.announced.says("patch")
        both = [{"value": a}, {"value": b}]

        async def add_both() -> tuple[Answer, Answer | None]:
            operation = {"op": "add", "path": "members", "value": both}
            answer = await self.send("PATCH", url, body=patch_body(operation))
            return answer, await self.read(groups, group)

        async def add() -> None:
            answer, read = await add_both()
            self.add(
                judge.members_finding(
                    "PATCH add members", MEMBERS_ADD, answer, read, [a, b], announced=says
                )
            )

        removals: list[tuple[MemberRemoval, str, dict[str, Any], list[str], list[str]]] = [
            (
                MemberRemoval.FILTER,
                'PATCH remove members[value eq "A" or value eq "B"]',
                {"op": "remove", "path": f'members[value eq "{a}" or value eq "{b}"]'},
                [],
                [a, b],
            ),
            (
                MemberRemoval.VALUE_FILTER,
                'PATCH remove members[value eq "A"]',
                {"op": "remove", "path": f'members[value eq "{a}"]'},
                [b],
                [a],
            ),
            (
                MemberRemoval.VALUE_LIST,
                "PATCH remove members, value [A]",
                {"op": "remove", "path": "members", "value": [{"value": a}]},
                [b],
                [a],
            ),
        ]
        await self.isolated(Area.GROUP, "PATCH add members", add)
        for form, item, operation, present, absent in removals:

            async def remove(
                form: MemberRemoval = form,
                item: str = item,
                operation: dict[str, Any] = operation,
                present: list[str] = present,
                absent: list[str] = absent,
            ) -> None:
                _, before = await add_both()
                if not {a, b} <= (judge.member_ids(before) or frozenset()):
                    why = "the members to remove could not be added first"
                    self.add(judge.unverified(Area.GROUP, item, why, form.value))
                    return
                answer = await self.send("PATCH", url, body=patch_body(operation))
                read = await self.read(groups, group)
                self.add(
                    judge.members_finding(item, form.value, answer, read, present, absent, says)
                )

            await self.isolated(Area.GROUP, item, remove)

        async def put() -> None:
            # B is a member now (every removal above leaves it, or failed to remove it):
            # a PUT with only A must leave exactly A.
            body = {
                "schemas": [GROUP_SCHEMA],
                "id": group,
                "displayName": self.names.stem,
                "members": [{"value": a}],
            }
            answer = await self.send("PUT", url, body=body)
            read = await self.read(groups, group)
            item = "PUT /Groups/{id} with members [A]"
            replace = MemberRemoval.REPLACE.value
            self.add(judge.members_finding(item, replace, answer, read, [a], [b]))

        await self.isolated(Area.GROUP, "PUT /Groups/{id} with members", put)

    async def bulk(self, scim_id: str) -> None:
        """POST /Bulk with one harmless operation (a PATCH of the throwaway user), if announced."""
        item = "POST /Bulk (one PATCH)"
        if not self.announced.supports("bulk"):
            why = "not announced: not tried"
            self.add(Finding(Area.BULK, item, self.announced.says("bulk"), why, Verdict.SKIPPED))
            return

        async def step() -> None:
            operation = {
                "method": "PATCH",
                "path": f"{self.endpoints.users}/{scim_id}",
                "data": patch_body({"op": "replace", "path": "active", "value": True}),
            }
            body = {"schemas": [BULK_REQUEST], "Operations": [operation]}
            answer = await self.send("POST", "/Bulk", body=body)
            self.add(judge.bulk(answer, self.announced))

        await self.isolated(Area.BULK, item, step)

    # -- cleanup ---------------------------------------------------------------------------

    async def cleanup(self) -> None:
        """Delete the throwaway group and users, each checked to be gone (404)."""
        if self.made.group is not None:
            name, scim_id = self.made.group
            await self.delete("group", self.endpoints.groups, scim_id, "displayName", name)
        for number, (user_name, user_id) in enumerate(self.made.users.items()):
            kind = "user" if number == 0 else "second user"
            await self.delete(kind, self.endpoints.users, user_id, "userName", user_name)

    async def delete(
        self, kind: str, endpoint: str, scim_id: str | None, key: str, name: str
    ) -> None:
        """Delete one throwaway resource; found by its (random) name if its id is unknown."""
        what = f"DELETE throwaway {kind}"
        left = f"{key} {name}"

        async def step() -> None:
            ids = [scim_id] if scim_id else await self.find(endpoint, key, name)
            if not ids:
                self.add(
                    Finding(Area.CLEANUP, what, "-", f"not found ({left})", Verdict.UNVERIFIED)
                )
            for found in ids:
                answer: Answer | None = await self.send("DELETE", f"{endpoint}/{found}")
                after = await self.read(endpoint, found)
                self.add(judge.removed(what, answer, after, left))

        try:
            await step()
        except Exception as exc:  # one failed deletion must not stop the others
            observed = judge.clean(f"{type(exc).__name__}: {exc}; may be left behind ({left})")
            self.add(Finding(Area.CLEANUP, what, "-", observed, Verdict.FAILED))

    async def find(self, endpoint: str, key: str, name: str) -> list[str]:
        """The ids of resources whose `key` is exactly this run's random `name`."""
        answer = await self.send("GET", endpoint, params={"filter": Term(key, name).text()})
        return [
            str(resource["id"])
            for resource in answer.resources or []
            if judge.attribute(resource, key) == name and isinstance(resource.get("id"), str)
        ]


def _with(resource: Mapping[str, Any], attribute: str) -> tuple[str, str] | None:
    """(id, a value of `attribute`) of a resource that has both; emails.value: the first email."""
    scim_id = resource.get("id")
    if not isinstance(scim_id, str) or not scim_id:
        return None
    if attribute == "emails.value":
        emails = resource.get("emails")
        values = [e.get("value") for e in emails if isinstance(e, dict)] if emails else []
        value = next((v for v in values if isinstance(v, str) and v), None)
    else:
        found = judge.attribute(resource, attribute)
        value = found if isinstance(found, str) and found else None
    return (scim_id, value) if value else None


def _first_with(resources: Sequence[Mapping[str, Any]], attribute: str) -> tuple[str, str] | None:
    """The first resource that has a value of `attribute`: (id, value)."""
    return next((found for r in resources if (found := _with(r, attribute))), None)


async def check_target(
    settings: Settings,
    *,
    write_test: bool,
    retry: RetryPolicy | None = None,
    event_hooks: EventHooks | None = None,
    names: Names | None = None,
) -> TargetCheck:
    """Probe the configured target (see the module's docstring); raises TargetError (or
    AuthError) only when the target cannot be reached or authenticated at all."""
    base_url = str(settings.target.base_url).rstrip("/")
    async with http_client(settings, event_hooks, retry) as http:
        probe = Probe(http, names or Names.new())
        await probe.reach(base_url)
        await probe.announcements(httpx2.URL(base_url).path)
        await probe.counts()
        probe.authenticated = True
        if write_test:
            await probe.write_tests()
        else:
            samples = await probe.listed_samples()
            await probe.paging()
            await probe.search(samples)
            await probe.filters(samples)
            probe.add(Finding(Area.USER_CREATE, "write tests", "-", READ_ONLY, Verdict.SKIPPED))
    order = list(Area)
    findings = sorted(probe.findings, key=lambda finding: order.index(finding.area))
    return TargetCheck(base_url, write_test, tuple(findings), probe.user_extensions)
