"""Reconciliation (`sync --full`, `resync`): what the target really holds, as a KnownState.

Instead of trusting the state store's digests, the connector reads the managed users and groups
back from the target and derives the known state from them. Planning against that corrects
drift: an attribute the mapping owns that someone changed, a user someone deactivated, or a
managed membership someone removed is put back; attributes the mapping does not own are never
looked at, so they are left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from connector.keys import Keyring
from connector.known import Digests, KnownState, KnownUser
from connector.mapping import DesiredState, DesiredUser, canonical
from connector.target.client import ScimUser, TargetClient
from connector.target.errors import NotFound, Unreadable
from connector.target.fit import equivalent, value_at


@dataclass(slots=True)
class Observation:
    """The known state as the target shows it, and what differed from the state store."""

    known: KnownState
    drifted: list[str] = field(default_factory=list)  # masked labels of users that drifted
    vanished: list[str] = field(default_factory=list)  # managed users no longer in the target
    vanished_keys: set[str] = field(default_factory=set)  # their person keys
    unreadable: list[str] = field(default_factory=list)  # users whose answer does not parse
    unreadable_keys: set[str] = field(default_factory=set)  # their person keys
    adopted: set[str] = field(default_factory=set)  # keys found by externalId, not in the store
    # Of the adopted: memberships found in the groups, by the ownership rule (`claimed`).
    recovered: list[tuple[str, str]] = field(default_factory=list)  # (key, right): the connector's
    left: list[tuple[str, str]] = field(default_factory=list)  # (key, right): someone else's
    lost_memberships: list[tuple[str, str]] = field(default_factory=list)  # (label, right)
    # Uncertain memberships read back: (person key, right) -> whether the member is in the group.
    settled_memberships: dict[tuple[str, str], bool] = field(default_factory=dict)


def observed_digests(
    body: dict[str, Any],
    paths: Iterable[str],
    desired: DesiredUser | None,
    keyring: Keyring,
    before: KnownUser | None = None,
    not_kept: frozenset[str] = frozenset(),
) -> Digests:
    """Digests of what the target holds at the owned paths, comparable with desired digests;
    at a path the target does not keep as sent (`not_kept`), what was last pushed."""
    digests = {}
    for path in paths:
        pushed = before.digests.get(path) if before is not None and path in not_kept else None
        if pushed is not None:
            digests[path] = pushed
            continue
        actual = value_at(body, path)
        if actual is None:
            continue
        wanted = desired.value(path) if desired else None
        shown = wanted if wanted is not None and equivalent(actual, wanted) else actual
        digests[path] = keyring.digest(canonical(shown))
    return Digests.of(digests)


def _body(user: ScimUser) -> dict[str, Any]:
    body: dict[str, Any] = user.model_dump()
    return body


def _observed_user(
    user: ScimUser,
    before: KnownUser | None,
    desired: DesiredUser | None,
    keyring: Keyring,
    not_kept: frozenset[str],
    key: str,
    label: str = "?",
) -> KnownUser:
    assert user.id is not None
    body = _body(user)
    paths = set(before.digests if before else ()) | set(desired.digests if desired else ())
    label = before.label if before else (desired.label if desired else label)
    return KnownUser(
        key=key,
        label=label,
        scim_id=user.id,
        user_name=str(body.get("userName") or (before.user_name if before else "")),
        active=bool(body.get("active", True)),
        digests=observed_digests(body, paths, desired, keyring, before, not_kept),
        memberships=before.memberships if before else frozenset(),
        foreign_memberships=before.foreign_memberships if before else frozenset(),
        employee_keys=before.employee_keys if before else frozenset(),
        deactivated_on=before.deactivated_on if before else None,
    )


async def _find(client: TargetClient, before: KnownUser | None, key: str) -> ScimUser | None:
    if before is not None:
        try:
            return await client.get_user(before.scim_id)
        except NotFound:
            pass
    found = await client.find_users_by_external_id(key)
    return found[0] if len(found) == 1 else None


async def observe(
    client: TargetClient,
    known: KnownState,
    desired: DesiredState,
    keyring: Keyring,
    only: frozenset[str] | None = None,
    not_kept: frozenset[str] = frozenset(),
    uncertain: Mapping[tuple[str, str], str] | None = None,
    claimed: Callable[[], Mapping[str, frozenset[str]]] | None = None,
    strays: Mapping[str, str] | None = None,
) -> Observation:
    """Read the managed (or, with `only`, the named) people and the managed groups back
    (`not_kept`: paths the target does not keep as sent, never taken for drift; `uncertain`:
    memberships, by (person key, right), whose last write's outcome is unknown, or whose owner
    is to be recovered: a member there is the connector's, one not there is nobody's).

    A user found by externalId that the state store does not know (`adopted`: the connector
    made it, and the store lost its record) has its memberships recovered by the ownership rule
    (`connector.ownership`): the connector's where `claimed()` (rights granted by the HR input,
    begun, by person key; asked only then) has the right, else someone else's.

    `strays`: people neither managed nor wanted (by person key, with their label) whose user a
    write of unknown outcome may have made: looked for by externalId too."""
    strays = strays or {}
    keys = set(known.users) | set(desired.users) | set(strays)
    if only is not None:
        keys &= only
    observation = Observation(known=KnownState(users={}, groups=dict(known.groups)))
    users = observation.known.users
    owners = {user.scim_id: k for k, user in known.users.items()}
    for key in sorted(keys):
        before = known.users.get(key)
        wanted = desired.users.get(key) or desired.vanished.get(key)
        try:
            found = await _find(client, before, key)
        except Unreadable:
            if before is not None:  # not compared this run: as the state store knows it
                users[key] = before
                observation.unreadable.append(before.label)
            observation.unreadable_keys.add(key)
            continue
        if found is None:
            if before is not None:
                observation.vanished.append(before.label)
                observation.vanished_keys.add(key)
            continue
        if before is None and owners.get(found.id or "", key) != key:
            continue  # another person's account: two people are never linked to one
        seen = _observed_user(found, before, wanted, keyring, not_kept, key, strays.get(key, "?"))
        if before is None:
            observation.adopted.add(key)
        elif not seen.digests.same_values(before.digests) or seen.active != before.active:
            observation.drifted.append(seen.label)
        users[key] = seen
    rights = claimed() if claimed is not None and observation.adopted else {}
    await _observe_memberships(client, observation, uncertain or {}, rights)
    return observation


def stale_records(
    known: KnownState, observation: Observation, desired: DesiredState
) -> list[KnownUser]:
    """The managed users whose record in the state store differs from the target while the
    target holds just what is wanted: nothing to put back, and no drift; the record (as it
    should have been written) is corrected instead."""
    stale = []
    for key, seen in observation.known.users.items():
        before, wanted = known.users.get(key), desired.users.get(key)
        if before is None or wanted is None or key in observation.unreadable_keys:
            continue
        if seen.digests.same_values(before.digests) and seen.active == before.active:
            continue
        if seen.digests.same_values(wanted.digests) and seen.active == wanted.active:
            stale.append(replace(before, digests=seen.digests, active=seen.active))
    return stale


async def _observe_memberships(
    client: TargetClient,
    observation: Observation,
    uncertain: Mapping[tuple[str, str], str],
    claimed: Mapping[str, frozenset[str]],
) -> None:
    users = observation.known.users
    for right, group_id in sorted(observation.known.groups.items()):
        try:
            group = await client.get_group(group_id)
        except NotFound:
            del observation.known.groups[right]
            members: set[str] = set()
        else:
            members = {m.value for m in group.members or [] if m.value}
        for key, user in list(users.items()):
            if (key, right) in uncertain:
                member = user.scim_id in members
                observation.settled_memberships[(key, right)] = member
                users[key] = replace(
                    user,
                    memberships=user.memberships | {right}
                    if member
                    else user.memberships - {right},
                    foreign_memberships=user.foreign_memberships - {right},
                )
                continue
            if key in observation.adopted:
                if user.scim_id in members:
                    ours = right in claimed.get(key, frozenset())
                    (observation.recovered if ours else observation.left).append((key, right))
                    users[key] = replace(
                        user,
                        memberships=user.memberships | {right} if ours else user.memberships,
                        foreign_memberships=user.foreign_memberships
                        if ours
                        else user.foreign_memberships | {right},
                    )
                continue
            owned = right in user.memberships
            foreign = right in user.foreign_memberships
            if user.scim_id in members or not (owned or foreign):
                continue
            if owned:
                observation.lost_memberships.append((user.label, right))
            users[key] = replace(
                user,
                memberships=user.memberships - {right},
                foreign_memberships=user.foreign_memberships - {right},
            )
