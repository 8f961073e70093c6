"""Creating users (`--write-test`): the throwaway user, with every attribute a sync writes,
created and read back attribute by attribute; and a second, minimal one (for group members and
paging). Both are remembered for the cleanup, even when a create's answer is lost. The
judgement (below the requests) is pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.scim_models import ENTERPRISE_USER_SCHEMA
from connector.target.check import Area, Finding, Verdict
from connector.target.checking.answer import (
    Answer,
    attribute,
    clean,
    label,
    named,
    refused_or_failed,
    unverified,
)
from connector.target.checking.reading import Samples, read_sample
from connector.target.checking.session import Names, Session, id_of
from connector.target.fit import CORE_USER, equivalent

CREATE = "POST /Users"
CREATE_SECOND = "POST /Users (2nd)"


def throwaway_user(names: Names, enterprise: bool) -> dict[str, Any]:
    """The throwaway user as sent: every attribute a sync writes, two emails, and the
    enterprise employeeNumber if the User type declares that extension."""
    user: dict[str, Any] = {
        "schemas": [CORE_USER, *([ENTERPRISE_USER_SCHEMA] if enterprise else [])],
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
        "schemas": [CORE_USER],
        "userName": names.other_user,
        "name": {"givenName": "Check", "familyName": f"Scim-connector {names.token} B"},
        "active": True,
    }


# ---------------------------------------------------------------------------- requests


async def create_user(session: Session, body: dict[str, Any]) -> tuple[Answer, str | None]:
    """POST a throwaway user, remembered for the cleanup (even when the answer is lost)."""
    user_name = str(body["userName"])
    made = session.made.users
    made[user_name] = None
    answer = await session.send("POST", session.endpoints.users, body=body)
    scim_id = id_of(answer) if answer.ok else None
    if answer.ok or scim_id:
        made[user_name] = scim_id
    else:
        del made[user_name]  # refused: nothing was created
    return answer, scim_id


async def create_users(
    session: Session, sent: dict[str, Any], samples: Samples
) -> tuple[str | None, str | None]:
    """Create the throwaway user `sent` (each attribute checked when read back) and the second
    one; their ids (None: not created), and what was read back of them added to `samples`."""
    users = session.endpoints.users
    ids: dict[str, str] = {}

    async def first() -> None:
        answer, scim_id = await create_user(session, sent)
        session.add(created(answer))
        if scim_id is None:
            if answer.ok:
                session.add(unverified(Area.USER_CREATE, "read back", "created, no id"))
            return
        read = await read_sample(session, users, scim_id, samples.users)
        session.add(*kept_on_create(sent, read))
        ids["first"] = scim_id

    async def second() -> None:
        answer, scim_id = await create_user(session, second_user(session.names))
        if scim_id is None:
            session.add(refused_or_failed(Area.USER_CREATE, CREATE_SECOND, "", answer))
            return
        ids["second"] = scim_id
        await read_sample(session, users, scim_id, samples.users)

    await session.isolated(Area.USER_CREATE, CREATE, first)
    await session.isolated(Area.USER_CREATE, CREATE_SECOND, second)
    return ids.get("first"), ids.get("second")


# ---------------------------------------------------------------------------- judgement (pure)


def created(answer: Answer) -> Finding:
    """The POST of the throwaway user."""
    if not answer.ok or answer.resource is None:
        return refused_or_failed(Area.USER_CREATE, CREATE, "", answer)
    return Finding(Area.USER_CREATE, CREATE, "", str(answer.status), Verdict.OK)


def kept_on_create(sent: Mapping[str, Any], read: Answer) -> list[Finding]:
    """Per attribute sent with the throwaway user: kept, partly kept or not kept (read back)."""
    area = Area.USER_CREATE
    resource = read.resource
    if not read.ok or resource is None:
        return [refused_or_failed(area, "read back", "", read)]
    findings = []
    for key, value in sent.items():
        if key in ("schemas",):
            continue
        if key.casefold().startswith("urn:") and isinstance(value, Mapping):
            for name, inner in value.items():
                path = f"{key}:{name}"
                findings.append(_kept_finding(area, path, inner, attribute(resource, path)))
        elif key == "emails":
            findings.append(_emails_finding(value, named(resource, "emails")))
        elif isinstance(value, Mapping):
            findings.append(_parts_finding(area, key, value, named(resource, key)))
        else:
            findings.append(_kept_finding(area, key, value, named(resource, key)))
    return findings


def _kept_finding(area: Area, path: str, sent: Any, read: Any) -> Finding:
    shown = label(path)
    if equivalent(read, sent):
        return Finding(area, shown, "-", "kept", Verdict.OK, path)
    if read is None:
        return Finding(area, shown, "-", "not kept (absent when read back)", Verdict.NOT_KEPT, path)
    observed = f"not kept (read back as {clean(repr(read))})"
    return Finding(area, shown, "-", observed, Verdict.NOT_KEPT, path)


def _parts_finding(area: Area, path: str, sent: Mapping[str, Any], read: Any) -> Finding:
    """A complex attribute (name): which of its parts were kept."""
    got = read if isinstance(read, Mapping) else {}
    kept_parts = [k for k, v in sent.items() if equivalent(named(got, k), v)]
    lost = [k for k in sent if k not in kept_parts]
    if not lost:
        return Finding(area, path, "-", f"kept ({', '.join(kept_parts)})", Verdict.OK, path)
    if not kept_parts:
        return Finding(area, path, "-", "not kept", Verdict.NOT_KEPT, path)
    observed = f"kept {', '.join(kept_parts)}; not {', '.join(lost)}"
    return Finding(area, path, "-", observed, Verdict.PARTLY_KEPT, path)


def _emails_finding(sent: Any, read: Any) -> Finding:
    """Emails: how many of those sent came back, and with their type?"""
    area = Area.USER_CREATE
    sent_list = [e for e in sent if isinstance(e, Mapping)] if isinstance(sent, list) else []
    read_list = [e for e in read if isinstance(e, Mapping)] if isinstance(read, list) else []
    by_value = {str(named(e, "value")).casefold(): e for e in read_list}
    back = [e for e in sent_list if str(e.get("value")).casefold() in by_value]
    typed = [
        e for e in back if named(by_value[str(e["value"]).casefold()], "type") == e.get("type")
    ]
    counted = f"{len(back)} of {len(sent_list)} kept"
    if not back:
        return Finding(area, "emails", "-", "not kept", Verdict.NOT_KEPT, "emails")
    if len(typed) < len(back):
        counted += ", type dropped"
    if len(back) == len(sent_list) and len(typed) == len(back):
        return Finding(area, "emails", "-", f"{counted} (with type)", Verdict.OK, "emails")
    kept_types = ", ".join(str(e.get("type")) for e in back)
    return Finding(area, "emails", "-", f"{counted} ({kept_types})", Verdict.PARTLY_KEPT, "emails")
