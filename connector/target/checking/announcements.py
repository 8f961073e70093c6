"""The target's announcements: /ServiceProviderConfig (the one request that must be answered
at all, and with `GET /Users?count=0` the one that tells a SCIM service from anything else),
/ResourceTypes and /Schemas, read and judged. The judgement (below the requests) is pure:
answers in, findings and what was announced out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2

from connector.errors import TargetError
from connector.scim_models import ACMIDM_USER_SCHEMA, ENTERPRISE_USER_SCHEMA
from connector.target.check import Area, Finding, Verdict
from connector.target.checking.announced import FEATURES, Announced, Endpoints
from connector.target.checking.answer import (
    Answer,
    clean,
    named,
    refused_or_failed,
    short_urn,
)
from connector.target.checking.session import Session
from connector.target.discovery import relative_endpoint
from connector.target.transport import RETRY_STATUSES

# ---------------------------------------------------------------------------- requests


async def reach(session: Session, base_url: str) -> None:
    """Read /ServiceProviderConfig: the one request that must get an answer at all. When it is
    not SCIM JSON, `GET /Users?count=0` is tried too; when neither is, the target is not a SCIM
    service and the check stops (TargetError) before anything else is sent."""
    try:
        answer = await _basic(session, "/ServiceProviderConfig")
    except httpx2.HTTPError as exc:
        raise TargetError(
            f"cannot reach the target at {base_url}: {exc or type(exc).__name__}"
        ) from None
    findings, session.announced = service_provider_config(answer)
    session.add(*findings)
    if is_scim(answer, SPC_KEYS):
        return
    users: Answer | str
    try:
        users = await _basic(session, "/Users", params={"count": "0"})
    except httpx2.HTTPError as exc:
        users = f"no answer ({clean(f'{type(exc).__name__}: {exc}')})"
    verdict = not_scim(base_url, answer, users)
    if verdict is not None:
        raise TargetError(verdict)


async def _basic(session: Session, path: str, params: dict[str, str] | None = None) -> Answer:
    """A first read, sent once: an answer that is not JSON (an HTML page) will not become JSON
    by asking again. Sent again with the retries of reads only when the target looked
    unavailable (no answer, 429, 5xx)."""
    try:
        answer = await session.send("GET", path, params=params, retry=False)
    except httpx2.TransportError:
        return await session.send("GET", path, params=params)
    if answer.status in RETRY_STATUSES:
        return await session.send("GET", path, params=params)
    return answer


async def read_announcements(session: Session, base_path: str) -> None:
    """/ResourceTypes and /Schemas."""

    async def read_resource_types() -> None:
        answer = await session.send("GET", "/ResourceTypes")
        findings, session.endpoints = resource_types(answer, base_path)
        session.add(*findings)

    async def read_schemas() -> None:
        answer = await session.send("GET", "/Schemas")
        findings, session.user_extensions = schemas(answer, session.endpoints)
        session.add(*findings)

    await session.isolated(Area.RESOURCE_TYPES, "GET /ResourceTypes", read_resource_types)
    await session.isolated(Area.SCHEMAS, "GET /Schemas", read_schemas)


# ---------------------------------------------------------------------------- judgement (pure)

SCIM_URN = "urn:ietf:params:scim:"
# Keys a 2xx answer of /ServiceProviderConfig or of a list (`GET /Users`) has: with one of them
# (or a SCIM URN in `schemas`), the answer is SCIM JSON.
SPC_KEYS = (*FEATURES, "authenticationSchemes")
LIST_KEYS = ("totalResults", "Resources")


def is_scim(answer: Answer, keys: tuple[str, ...]) -> bool:
    """Whether an answer is SCIM JSON: an object whose `schemas` names a SCIM URN (a resource, a
    ListResponse, or a SCIM error whatever its status), or a 2xx object with one of `keys`."""
    body = answer.resource
    if body is None:
        return False
    schemas = named(body, "schemas")
    if isinstance(schemas, list) and any(
        isinstance(urn, str) and urn.casefold().startswith(SCIM_URN) for urn in schemas
    ):
        return True
    return answer.ok and any(named(body, key) is not None for key in keys)


def not_scim(base_url: str, config: Answer, users: Answer | str) -> str | None:
    """The verdict when neither /ServiceProviderConfig nor `GET /Users?count=0` answered SCIM
    JSON (`users` is a text when it got no answer): `<base_url>: not a SCIM 2.0 service: ...`;
    None when either did."""
    if is_scim(config, SPC_KEYS) or (isinstance(users, Answer) and is_scim(users, LIST_KEYS)):
        return None
    seen = users if isinstance(users, str) else f"answered {described(users)}"
    return (
        f"{base_url}: not a SCIM 2.0 service: /ServiceProviderConfig answered "
        f"{described(config)}, /Users {seen} (is target.base_url the SCIM base URL?)"
    )


def described(answer: Answer) -> str:
    """An answer that is not SCIM JSON, for people: `404 text/html`, `200 application/json, not
    a SCIM object`."""
    said = clean(answer.content_type, 60) or "without a Content-Type"
    if answer.body is not None:
        return f"{answer.status} {said}, not a SCIM object"
    if "json" in answer.content_type:
        return f"{answer.status} {said}, but not JSON"
    return f"{answer.status} {said}"


def service_provider_config(answer: Answer) -> tuple[list[Finding], Announced]:
    """Findings for /ServiceProviderConfig, and what it announces."""
    area = Area.SERVICE_PROVIDER_CONFIG
    item = "GET /ServiceProviderConfig"
    body = answer.resource
    if not answer.ok or body is None:
        return [refused_or_failed(area, item, "", answer)], Announced()
    supported: dict[str, bool | None] = {}
    text: dict[str, str] = {}
    for feature in FEATURES:
        section = named(body, feature)
        flag = named(section, "supported") if isinstance(section, Mapping) else None
        supported[feature] = flag if isinstance(flag, bool) else None
        words = {True: "supported", False: "not supported", None: "not stated"}[supported[feature]]
        limits = [
            f"{name} {named(section, name)}"
            for name in ("maxOperations", "maxPayloadSize", "maxResults")
            if isinstance(section, Mapping) and named(section, name) is not None
        ]
        text[feature] = f"{words} ({', '.join(limits)})" if limits else words
    bulk = named(body, "bulk")
    max_operations = named(bulk, "maxOperations") if isinstance(bulk, Mapping) else None
    announced = Announced(
        supported, text, max_operations if isinstance(max_operations, int) else None
    )
    findings = [Finding(area, item, "", str(answer.status), Verdict.OK)]
    findings += [
        Finding(area, feature, text[feature], "-", Verdict.INFO, subject=feature)
        for feature in FEATURES
    ]
    return findings, announced


def resource_types(answer: Answer, base_path: str) -> tuple[list[Finding], Endpoints]:
    """Findings for /ResourceTypes (endpoints, totalResults, User extensions), and the endpoints
    (made relative to the base URL as discovery makes them)."""
    area = Area.RESOURCE_TYPES
    item = "GET /ResourceTypes"
    listed = answer.resources if answer.ok else None
    if listed is None:
        return [refused_or_failed(area, item, "", answer)], Endpoints()
    findings = [_list_finding(area, item, answer, len(listed), "resource types")]
    by_name = {str(named(r, "name") or named(r, "id") or "").casefold(): r for r in listed}
    endpoints: dict[str, str] = {}
    for name, default in (("User", "/Users"), ("Group", "/Groups")):
        resource_type = by_name.get(name.casefold())
        endpoint = named(resource_type, "endpoint") if resource_type else None
        if not isinstance(endpoint, str) or not endpoint:
            observed = f"no {name} resource type: {default} assumed"
            findings.append(Finding(area, f"{name} endpoint", "-", observed, Verdict.NOTE))
            endpoints[name] = default
            continue
        relative = relative_endpoint(endpoint, base_path, default)
        endpoints[name] = relative
        if relative == endpoint:
            finding = Finding(area, f"{name} endpoint", endpoint, "relative", Verdict.OK)
        else:
            observed = _endpoint_note(endpoint, relative, default)
            finding = Finding(area, f"{name} endpoint", clean(endpoint), observed, Verdict.NOTE)
        findings.append(finding)
    user_type = by_name.get("user")
    declared = _extensions(user_type) if user_type is not None else None
    text = ", ".join(f"{short_urn(urn)} ({how})" for urn, how in (declared or {}).items())
    findings.append(Finding(area, "User schemaExtensions", text or "none", "-", Verdict.INFO))
    extensions = None if declared is None else frozenset(urn.casefold() for urn in declared)
    return findings, Endpoints(endpoints["User"], endpoints["Group"], extensions)


def _endpoint_note(endpoint: str, relative: str, default: str) -> str:
    """Why an announced endpoint is not used as it is: a whole URL or a path from the host root
    (the base URL's path taken off), or only written differently (`Users`, `/Users/`)."""
    if "://" in endpoint or relative_endpoint(endpoint, "", default) != relative:
        return f"a path from the host root, not relative to the base URL: {relative} used"
    return f"relative, but not written as RFC 7643 §6 does: {relative} used"


def _extensions(resource_type: Mapping[str, Any]) -> dict[str, str]:
    """The schema extensions a resource type declares: URN -> "required"/"optional"."""
    declared = named(resource_type, "schemaExtensions")
    out: dict[str, str] = {}
    for extension in declared if isinstance(declared, list) else []:
        urn = named(extension, "schema") if isinstance(extension, Mapping) else None
        if isinstance(urn, str):
            out[urn] = "required" if named(extension, "required") is True else "optional"
    return out


def _list_finding(area: Area, item: str, answer: Answer, count: int, what: str) -> Finding:
    if answer.total is None:
        observed = f"{answer.status}, {count} {what}; the ListResponse has no totalResults"
        return Finding(area, item, "", observed, Verdict.NOTE)
    return Finding(area, item, "", f"{answer.status}, {count} {what}", Verdict.OK)


def schemas(answer: Answer, endpoints: Endpoints) -> tuple[list[Finding], frozenset[str] | None]:
    """Findings for /Schemas (the ids listed, the ACM/IDM and enterprise extensions), and the
    User extensions the connector will use (casefolded; ACM/IDM only if listed and declared)."""
    area = Area.SCHEMAS
    item = "GET /Schemas"
    listed = answer.resources if answer.ok else None
    if listed is None:
        findings = [refused_or_failed(area, item, "", answer)]
        ids: list[str] = []
    else:
        ids = [str(named(r, "id")) for r in listed if isinstance(named(r, "id"), str)]
        findings = [_list_finding(area, item, answer, len(ids), "schemas")]
        text = ", ".join(short_urn(i) for i in ids) or "none"
        findings.append(Finding(area, "schemas listed", clean(text, 1000), "-", Verdict.INFO))
    listed_ids = {i.casefold() for i in ids}
    declared = endpoints.user_extensions
    for name, urn, pushed in (
        ("ACM/IDM User extension", ACMIDM_USER_SCHEMA, "nationalId, workRelations, rights"),
        ("enterprise User extension", ENTERPRISE_USER_SCHEMA, "employeeNumber, organization, …"),
    ):
        is_listed = urn.casefold() in listed_ids
        is_declared = None if declared is None else urn.casefold() in declared
        said = {True: "yes", False: "no", None: "unknown"}
        announced = f"listed in /Schemas: {said[is_listed]}; declared on User: {said[is_declared]}"
        used = is_declared and (is_listed or urn != ACMIDM_USER_SCHEMA)
        observed = f"pushed ({pushed})" if used else "not pushed"
        verdict = Verdict.OK if used else Verdict.NOTE
        findings.append(Finding(area, name, announced, observed, verdict, subject=urn))
    if declared is None:
        return findings, None
    served = {urn for urn in declared if urn != ACMIDM_USER_SCHEMA.casefold() or urn in listed_ids}
    known = {ACMIDM_USER_SCHEMA.casefold(), ENTERPRISE_USER_SCHEMA.casefold()}
    return findings, frozenset(served & known)
