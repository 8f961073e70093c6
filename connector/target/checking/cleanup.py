"""Cleanup (`--write-test`, always, last): the throwaway group and users deleted, each checked
to be gone (404); one whose create answer was lost is found by its random name. A resource
left behind is reported with the name to remove it by. The judgement (below the requests) is
pure."""

from __future__ import annotations

from connector.target.check import Area, Finding, Verdict
from connector.target.checking.answer import Answer, attribute, clean
from connector.target.checking.filters import Term
from connector.target.checking.session import Session

# ---------------------------------------------------------------------------- requests


async def cleanup(session: Session) -> None:
    """Delete the throwaway group and users, each checked to be gone (404)."""
    made, endpoints = session.made, session.endpoints
    if made.group is not None:
        name, scim_id = made.group
        await delete(session, "group", endpoints.groups, scim_id, "displayName", name)
    for number, (user_name, user_id) in enumerate(made.users.items()):
        kind = "user" if number == 0 else "second user"
        await delete(session, kind, endpoints.users, user_id, "userName", user_name)


async def delete(
    session: Session, kind: str, endpoint: str, scim_id: str | None, key: str, name: str
) -> None:
    """Delete one throwaway resource; found by its (random) name if its id is unknown."""
    what = f"DELETE throwaway {kind}"
    left = f"{key} {name}"

    async def step() -> None:
        ids = [scim_id] if scim_id else await find(session, endpoint, key, name)
        if not ids:
            observed = f"not found ({left})"
            session.add(Finding(Area.CLEANUP, what, "-", observed, Verdict.UNVERIFIED))
        for found in ids:
            answer: Answer | None = await session.send("DELETE", f"{endpoint}/{found}")
            after = await session.read(endpoint, found)
            session.add(removed(what, answer, after, left))

    try:
        await step()
    except Exception as exc:  # one failed deletion must not stop the others
        observed = clean(f"{type(exc).__name__}: {exc}; may be left behind ({left})")
        session.add(Finding(Area.CLEANUP, what, "-", observed, Verdict.FAILED))


async def find(session: Session, endpoint: str, key: str, name: str) -> list[str]:
    """The ids of resources whose `key` is exactly this run's random `name`."""
    answer = await session.send("GET", endpoint, params={"filter": Term(key, name).text()})
    return [
        str(resource["id"])
        for resource in answer.resources or []
        if attribute(resource, key) == name and isinstance(resource.get("id"), str)
    ]


# ---------------------------------------------------------------------------- judgement (pure)


def removed(what: str, delete: Answer | None, after: Answer | None, left: str) -> Finding:
    """The DELETE of a throwaway resource, checked by reading it again (404 expected).

    `left` names the resource for people to remove by hand if it stays behind.
    """
    area = Area.CLEANUP
    if delete is None:
        return Finding(area, what, "-", f"could not delete: left behind ({left})", Verdict.FAILED)
    if not delete.ok and delete.status != 404:
        observed = f"{delete.short()}: left behind ({left})"
        return Finding(area, what, "-", observed, Verdict.FAILED)
    if after is not None and after.status == 404:
        return Finding(area, what, "-", f"{delete.status}; gone (404)", Verdict.OK)
    seen = after.short() if after is not None else "no answer"
    observed = f"{delete.status}, but read again: {seen}; may be left behind ({left})"
    return Finding(area, what, "-", observed, Verdict.FAILED)
