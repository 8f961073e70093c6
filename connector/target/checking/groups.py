"""Groups (`--write-test`): the throwaway group created with a member, then each way a sync
writes members: a PATCH `add`, the three PATCH forms of removing them (the ladder,
`connector.target.profile.MemberRemoval`, built as a sync builds them:
`connector.target.members`) and a PUT with members. Each write is checked by its effect, the
group read back. The judgement (below the requests) is pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from connector.target.check import MEMBERS_ADD, MEMBERS_ON_POST, Area, Finding, Verdict
from connector.target.checking.answer import (
    Answer,
    named,
    read_back,
    read_back_failed,
    refused_or_failed,
    unverified,
)
from connector.target.checking.reading import Samples, read_sample
from connector.target.checking.session import Session, id_of
from connector.target.members import add_operations, patch_body, removal_operations
from connector.target.profile import MemberRemoval

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
CREATE = "POST /Groups"
# The removal forms tried, each on members A and B: (form, item, whether it removes both;
# if not, it removes A and must leave B).
REMOVALS = (
    (MemberRemoval.FILTER, 'PATCH remove members[value eq "A" or value eq "B"]', True),
    (MemberRemoval.VALUE_FILTER, 'PATCH remove members[value eq "A"]', False),
    (MemberRemoval.VALUE_LIST, "PATCH remove members, value [A]", False),
)


# ---------------------------------------------------------------------------- requests


async def create_group(session: Session, member: str | None, samples: Samples) -> str | None:
    """POST the throwaway group, with `member` if there is one (are members kept on a create?);
    its id (None: not created), and what was read back of it added to `samples`."""
    groups = session.endpoints.groups
    group: dict[str, str | None] = {}

    async def step() -> None:
        name = session.names.stem
        body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": name}
        if member is not None:
            body["members"] = [{"value": member}]
        session.made.group = (name, None)
        answer = await session.send("POST", groups, body=body)
        scim_id = id_of(answer) if answer.ok else None
        session.made.group = (name, scim_id) if answer.ok else None
        if scim_id is None:
            session.add(refused_or_failed(Area.GROUP, CREATE, "", answer))
            return
        group["id"] = scim_id
        read = await read_sample(session, groups, scim_id, samples.groups)
        if member is None:
            return
        item = "POST /Groups with a member"
        session.add(members_finding(item, MEMBERS_ON_POST, answer, read, present=[member]))

    await session.isolated(Area.GROUP, CREATE, step)
    return group.get("id")


async def member_writes(session: Session, group: str, a: str, b: str) -> None:
    """Adding members, the three PATCH forms of removing them, and a PUT with members."""
    groups = session.endpoints.groups
    url = f"{groups}/{group}"
    says = session.announced.says("patch")

    async def add_both() -> tuple[Answer, Answer | None]:
        answer = await session.send("PATCH", url, body=patch_body(add_operations([a, b])))
        return answer, await session.read(groups, group)

    async def add() -> None:
        answer, read = await add_both()
        item = "PATCH add members"
        session.add(members_finding(item, MEMBERS_ADD, answer, read, [a, b], announced=says))

    await session.isolated(Area.GROUP, "PATCH add members", add)
    for form, item, removes_both in REMOVALS:
        absent = [a, b] if removes_both else [a]
        present = [] if removes_both else [b]

        async def remove(
            form: MemberRemoval = form,
            item: str = item,
            present: list[str] = present,
            absent: list[str] = absent,
        ) -> None:
            _, before = await add_both()
            if not {a, b} <= (member_ids(before) or frozenset()):
                why = "the members to remove could not be added first"
                session.add(unverified(Area.GROUP, item, why, form.value))
                return
            operations = removal_operations(form, absent)
            answer = await session.send("PATCH", url, body=patch_body(operations))
            read = await session.read(groups, group)
            session.add(members_finding(item, form.value, answer, read, present, absent, says))

        await session.isolated(Area.GROUP, item, remove)

    async def put() -> None:
        # B is a member now (every removal above leaves it, or failed to remove it):
        # a PUT with only A must leave exactly A.
        body = {
            "schemas": [GROUP_SCHEMA],
            "id": group,
            "displayName": session.names.stem,
            "members": [{"value": a}],
        }
        answer = await session.send("PUT", url, body=body)
        read = await session.read(groups, group)
        item = "PUT /Groups/{id} with members [A]"
        replace = MemberRemoval.REPLACE.value
        session.add(members_finding(item, replace, answer, read, [a], [b]))

    await session.isolated(Area.GROUP, "PUT /Groups/{id} with members", put)


# ---------------------------------------------------------------------------- judgement (pure)


def member_ids(read: Answer | None) -> frozenset[str] | None:
    """The member ids of a group read back; None if the read failed."""
    resource = read_back(read)
    if resource is None:
        return None
    members = named(resource, "members")
    return frozenset(
        str(named(m, "value"))
        for m in (members if isinstance(members, list) else [])
        if isinstance(m, Mapping) and named(m, "value") is not None
    )


def members_finding(
    item: str,
    subject: str,
    answer: Answer,
    read: Answer | None,
    present: Iterable[str] = (),
    absent: Iterable[str] = (),
    announced: str = "-",
) -> Finding:
    """A group write: did the members that should be there (and not) end up so when read back?"""
    area = Area.GROUP
    if not answer.ok:
        return Finding(area, item, announced, answer.short(), Verdict.REFUSED, subject)
    ids = member_ids(read)
    if ids is None:
        observed = read_back_failed(answer, read)
        return Finding(area, item, announced, observed, Verdict.FAILED, subject)
    missing = [m for m in present if m not in ids]
    left = [m for m in absent if m in ids]
    if not missing and not left:
        return Finding(area, item, announced, f"{answer.status}; done", Verdict.OK, subject)
    parts = []
    if missing:
        parts.append(f"{len(missing)} member(s) not there")
    if left:
        parts.append(f"{len(left)} member(s) still there")
    observed = f"{answer.status}, but {' and '.join(parts)} when read back"
    return Finding(area, item, announced, observed, Verdict.NOT_KEPT, subject)
