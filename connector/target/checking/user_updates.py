"""Updating the throwaway user (`--write-test`): each PATCH `replace` a sync sends, a PUT of
the whole user, and ETags (a version on reads, a wrong `If-Match` refused). Every write is read
back. The judgement (below the requests) is pure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from connector.scim_models import ENTERPRISE_USER_SCHEMA
from connector.target.bulk import patch_data
from connector.target.check import Area, Finding, Verdict
from connector.target.checking.announced import Announced
from connector.target.checking.answer import (
    Answer,
    attribute,
    clean,
    label,
    named,
    read_back,
    read_back_failed,
    refused_or_failed,
    unverified,
)
from connector.target.checking.session import Session
from connector.target.fit import equivalent

EMPLOYEE_NUMBER = f"{ENTERPRISE_USER_SCHEMA}:employeeNumber"
WRONG_VERSION = 'W/"scim-connector-check-wrong-version"'
PUT = "PUT /Users/{id}"


# ---------------------------------------------------------------------------- requests


async def user_updates(
    session: Session, scim_id: str, sent: Mapping[str, Any], enterprise: bool
) -> None:
    """PATCH forms, a PUT and ETags on the throwaway user (`sent`: as it was created)."""
    users = session.endpoints.users
    url = f"{users}/{scim_id}"
    says = session.announced.says("patch")
    token, stem = session.names.token, session.names.stem
    replacements: list[tuple[str, Any]] = [
        ("active", False),
        ("displayName", f"scim-connector check {token} patched"),
        ("externalId", f"{stem}-patched"),
    ]
    if enterprise:
        replacements.append((EMPLOYEE_NUMBER, f"{stem}-patched"))
    else:
        why = "the User type declares no enterprise extension: not sent"
        session.add(unverified(Area.USER_PATCH, "replace enterprise employeeNumber", why))
    for path, value in replacements:

        async def step(path: str = path, value: Any = value) -> None:
            answer = await session.send("PATCH", url, body=patch_data([(path, value)]))
            read = await session.read(users, scim_id) if answer.ok else None
            session.add(patched(path, value, answer, read, says))

        await session.isolated(Area.USER_PATCH, f"replace {path}", step)

    async def put() -> None:
        changed: dict[str, Any] = {
            "displayName": f"scim-connector check {token} put",
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
        answer = await session.send("PUT", url, body=body)
        read = await session.read(users, scim_id) if answer.ok else None
        session.add(replaced(changed, answer, read))

    async def etag() -> None:
        read = await session.read(users, scim_id)
        session.add(versions(read, session.announced))
        answer = await session.send(
            "PATCH",
            url,
            body=patch_data([("active", True)]),
            headers={"If-Match": WRONG_VERSION},
        )
        session.add(if_match(answer, session.announced))

    await session.isolated(Area.USER_PUT, PUT, put)
    await session.isolated(Area.ETAG, "ETag", etag)


# ---------------------------------------------------------------------------- judgement (pure)


def patched(path: str, value: Any, patch: Answer, read: Answer | None, announced: str) -> Finding:
    """One PATCH `replace` of a user attribute: kept, accepted but not kept, or refused."""
    item = f"replace {label(path)}"
    if not patch.ok:
        return Finding(Area.USER_PATCH, item, announced, patch.short(), Verdict.REFUSED, path)
    resource = read_back(read)
    if resource is None:
        observed = read_back_failed(patch, read)
        return Finding(Area.USER_PATCH, item, announced, observed, Verdict.FAILED, path)
    now = attribute(resource, path)
    if equivalent(now, value):
        return Finding(Area.USER_PATCH, item, announced, f"{patch.status}; kept", Verdict.OK, path)
    observed = f"{patch.status}, but not kept (read back as {clean(repr(now))})"
    return Finding(Area.USER_PATCH, item, announced, observed, Verdict.NOT_KEPT, path)


def replaced(changed: Mapping[str, Any], put: Answer, read: Answer | None) -> Finding:
    """A PUT of the user with some attributes changed: which of the changes were kept."""
    area = Area.USER_PUT
    if not put.ok:
        return Finding(area, PUT, "-", put.short(), Verdict.REFUSED)
    resource = read_back(read)
    if resource is None:
        return Finding(area, PUT, "-", read_back_failed(put, read), Verdict.FAILED)
    kept_paths = [p for p, v in changed.items() if equivalent(attribute(resource, p), v)]
    lost = [p for p in changed if p not in kept_paths]
    parts = [f"kept {', '.join(map(label, kept_paths))}"] if kept_paths else []
    if lost:
        parts.append(f"not kept {', '.join(map(label, lost))}")
    verdict = Verdict.OK if not lost else Verdict.PARTLY_KEPT if kept_paths else Verdict.NOT_KEPT
    return Finding(area, PUT, "-", f"{put.status}; {'; '.join(parts)}", verdict)


def versions(read: Answer, announced: Announced) -> Finding:
    """Does a read carry a version (ETag header, meta.version), as announced?"""
    area, item, says = Area.ETAG, "version of a read user", announced.says("etag")
    if not read.ok or read.resource is None:
        return refused_or_failed(area, item, says, read)
    meta = named(read.resource, "meta")
    version = named(meta, "version") if isinstance(meta, Mapping) else None
    seen = [f"ETag header {clean(read.etag)}"] if read.etag else []
    if isinstance(version, str) and version:
        seen.append(f"meta.version {clean(version)}")
    if seen == [] and announced.supports("etag"):
        return Finding(area, item, says, "none, although announced", Verdict.NOTE)
    if seen and not announced.supports("etag"):
        return Finding(area, item, says, f"{'; '.join(seen)} (not announced)", Verdict.NOTE)
    return Finding(area, item, says, "; ".join(seen) or "none", Verdict.OK)


def if_match(answer: Answer, announced: Announced) -> Finding:
    """A PATCH with `If-Match` and a wrong version: refused with 412?"""
    area, item, says = Area.ETAG, "If-Match with a wrong version", announced.says("etag")
    if answer.status == 412:
        return Finding(area, item, says, "412: refused", Verdict.OK)
    if answer.ok:
        if announced.supports("etag"):
            return Finding(area, item, says, f"{answer.status}: applied anyway", Verdict.NOTE)
        observed = f"{answer.status}: ignored (no ETag support, as announced)"
        return Finding(area, item, says, observed, Verdict.OK)
    return Finding(area, item, says, answer.short(), Verdict.REFUSED)
