"""Whose memberships are whose, when the state store cannot say: ownership recovered.

The state store remembers which memberships the connector added (and so may withdraw). When the
store is new (lost, or a first run against a target already in use) or older than the
connector's last run (restored from a backup), it does not know what the connector granted
since. The rule then, for every member of a managed right's group whose membership the store has
no record of:

- the holder is in the HR input with a grant of that right that has begun (ended or not): the
  membership is the connector's (it would have added it on the begin date), and is withdrawn
  when the grant ends or the holder leaves;
- otherwise (no such grant, or not a person the connector knows): someone else's, never touched.

Members are found by reading each such group once; a member the store does not link to a person
is read (one GET) and linked when its externalId is the person key of someone with such a grant.
Recovered memberships are marked uncertain ("recover") and settled like any uncertain write
(`connector.settling`), so the truth is read from the target in one place.

The same rule applies to a user the connector made that a store which looks current does not
know (`sync --full` or `resync` finds it by externalId: a record lost, or a store restored with
its run marker): `record_relinked` links it again with its memberships as the rule says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping as MappingOf
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from connector.hr.records import EmployeeKey, Warning_, mask_digits
from connector.keys import Keyring
from connector.known import Digests, KnownState, KnownUser
from connector.mapping import DesiredState, Mapping, derived_grants
from connector.people import Person
from connector.reconcile import Observation
from connector.state import StateStore
from connector.state.backup import read_run_marker
from connector.target.client import TargetClient
from connector.target.errors import NotFound, Unreadable

log = structlog.get_logger(__name__)

RECOVER = "recover"


@dataclass(frozen=True, slots=True)
class Claim:
    """A person of the HR input with grants that have begun: the rights the connector owns a
    membership of, where the store does not know better."""

    label: str  # masked national number
    employee_keys: frozenset[EmployeeKey]
    rights: frozenset[str]


def claims(
    people: MappingOf[str, Person], mapping: Mapping, keyring: Keyring, as_of: dt.date
) -> dict[str, Claim]:
    """By person key: the rights each person of the HR input was granted by `as_of` (begun,
    ended or not), of the rights the mapping defines."""
    defined = mapping.rights.keys()
    found = {}
    for digits, person in people.items():
        rights = frozenset(
            grant.right
            for grant in derived_grants(person, mapping)
            if grant.right in defined
            and (grant.begin is None or grant.begin <= as_of)
            and person.relation(grant.relation) is not None
        )
        if rights:
            keys = frozenset(relation.key for relation in person.relations)
            found[keyring.person_key(digits)] = Claim(mask_digits(digits), keys, rights)
    return found


def recovery_reason(store: StateStore, path: Path) -> str | None:
    """Why the store may not know what the connector granted (None: it knows): it is new, or
    older than the last run that wrote to the target, by the run marker beside `path` (this
    machine's last run) or by the store's own marker (a restore recorded, or a PostgreSQL
    database loaded from a dump or recovered to a point in time: `state.run_marker`)."""
    if not store.has_run():
        return "the state store is new"
    marker = read_run_marker(path)
    if marker is not None and not store.has_run(marker):
        # Unless a run began with the store since, by the second in run ids: that run recovered
        # already, and this machine's marker predates it (another replica's, or the machine
        # that restored it). Within one second, recover anyway.
        since = store.last_run_began()
        if since is None or _began_at(since) <= _began_at(marker):
            return (
                "the state store is older than the connector's last run (restored from a backup?)"
            )
    return store.restored_reason()


def _began_at(run_id: str) -> str:
    """When a run began, as its id says (`20261129T072830Z`): comparable as text."""
    return run_id.partition("-")[0]


@dataclass(slots=True)
class Recovery:
    """What a recovery found: memberships to settle as the connector's, others left alone."""

    reason: str
    claimed: int = 0  # memberships marked to recover
    linked: int = 0  # people linked to their user again (found by externalId)
    left: int = 0  # members with no grant of the right: someone else's
    groups: dict[str, str] = field(default_factory=dict)  # right -> id of a group not recorded


async def recover(
    client: TargetClient,
    store: StateStore,
    known: KnownState,
    claimed: MappingOf[str, Claim],
    groups: MappingOf[str, str],
    reason: str,
    run_id: str,
) -> Recovery:
    """Read the groups of the rights claimed; link and mark (uncertain, "recover") each member
    whose membership the store has no record of and who holds a grant of it (`groups`: right ->
    displayName)."""
    recovery = Recovery(reason)
    by_scim_id = {user.scim_id: key for key, user in known.users.items()}
    rights = sorted({right for claim in claimed.values() for right in claim.rights} & groups.keys())
    for right in rights:
        group_id = known.groups.get(right) or await _find_group(client, groups[right])
        if group_id is None:
            continue
        try:
            group = await client.get_group(group_id)
        except NotFound:
            continue
        if right not in known.groups:  # read here; found (and learned about) again by apply
            recovery.groups[right] = group_id
        for member in sorted({m.value for m in group.members or [] if m.value}):
            key = by_scim_id.get(member)
            if key is None:
                key = await _link(client, store, member, claimed, known, run_id)
                if key is None:
                    recovery.left += 1
                    continue
                by_scim_id[member] = key
                recovery.linked += 1
            user = known.users.get(key)
            if user is not None and right in user.memberships | user.foreign_memberships:
                continue  # the store knows whose it is
            claim = claimed.get(key)
            if claim is None or right not in claim.rights:
                recovery.left += 1
                continue
            store.mark_uncertain([(key, right, RECOVER)], run_id)
            recovery.claimed += 1
    log.warning(
        "ownership.recovery",
        reason=reason,
        claimed=recovery.claimed,
        linked=recovery.linked,
        left=recovery.left,
    )
    return recovery


async def _find_group(client: TargetClient, display_name: str) -> str | None:
    found = await client.find_groups_by_listing(display_name)
    return next((group.id for group in found if group.id), None)


async def _link(
    client: TargetClient,
    store: StateStore,
    scim_id: str,
    claimed: MappingOf[str, Claim],
    known: KnownState,
    run_id: str,
) -> str | None:
    """Link a member the store does not know to the person its externalId names, if that
    person claims a right; their person key, or None (someone else's member)."""
    try:
        user = await client.get_user(scim_id)
    except (NotFound, Unreadable):
        return None
    key = user.external_id
    claim = claimed.get(key) if key else None
    if key is None or claim is None or key in known.users:
        return None  # not ours to claim; or the store links that person to another user
    store.save_user(
        KnownUser(
            key=key,
            label=claim.label,
            scim_id=scim_id,
            user_name=user.user_name or "",
            active=bool(user.active if user.active is not None else True),
            digests=Digests(),  # read back and compared when the recovery is settled
            employee_keys=claim.employee_keys,
        )
    )
    store.mark_uncertain([(key, None, RECOVER)], run_id)
    return key


def record_relinked(store: StateStore, desired: DesiredState, observation: Observation) -> None:
    """Link again the users the connector made that the state store did not know (found by
    externalId), with their memberships as the ownership rule recovered them."""
    with store.transaction():
        for key in sorted(observation.adopted):
            wanted = desired.users.get(key)
            user = observation.known.users[key]
            if wanted is not None:
                user = replace(user, employee_keys=wanted.employee_keys)
            store.save_user(user)
        for key, right in observation.recovered:
            store.add_membership(key, right)
        for key, right in observation.left:
            store.add_membership(key, right, owned=False)


def relinked_warning(observation: Observation, dry_run: bool = False) -> Warning_:
    """The report's one warning for users linked again by `record_relinked` (in a dry run,
    which records nothing: that would be)."""
    would = "would be " if dry_run else ""
    return Warning_(
        kind="ownership_recovered",
        message=f"{len(observation.adopted)} user(s) the connector made were found in the "
        "target by externalId but unknown to the state store (a lost record, or a store "
        f"restored with its run marker): {would}linked again; "
        f"{len(observation.recovered)} of their membership(s) {would}recovered as the "
        "connector's (their holders have a grant of that right in the HR input); "
        f"{len(observation.left)} {would}left as someone else's",
    )
