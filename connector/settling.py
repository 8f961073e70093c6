"""Before a run plans: what writes of unknown outcome touched is read back from the target and
recorded, and ownership of memberships is recovered when the state store cannot know it.

Every run does this (plain sync, `--full`, resync, the service's runs), for exactly the users
and memberships marked uncertain (`connector.state.uncertain`) and those a recovery marks
(`connector.ownership`), through the reconciler of `sync --full` (`connector.reconcile`) with
those people only. It records the user as the target shows it (active or not, digests of the
owned attributes) and each uncertain membership as the group shows it: a member there is the
connector's, one not there is nobody's. A dry run reads the same but records nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping as MappingOf
from dataclasses import dataclass, replace

from connector.hr.records import EmployeeKey, Warning_
from connector.keys import Keyring
from connector.known import KnownState, Uncertain
from connector.mapping import DesiredState
from connector.ownership import RECOVER, Recovery
from connector.people import Person
from connector.people_display import person_label
from connector.reconcile import Observation, observe
from connector.state import StateStore
from connector.target.client import TargetClient


@dataclass(frozen=True, slots=True)
class Stray:
    """A person the store does not know and the run does not want, whose user a write of
    unknown outcome may have made: how reports name them."""

    label: str
    employee_keys: frozenset[EmployeeKey] = frozenset()


@dataclass(frozen=True, slots=True)
class Settled:
    """The known state with the uncertain part read back, and what to report (once)."""

    known: KnownState
    warnings: tuple[Warning_, ...] = ()


async def settle(
    client: TargetClient,
    store: StateStore,
    known: KnownState,
    uncertain: Uncertain,
    desired: DesiredState,
    keyring: Keyring,
    *,
    not_kept: frozenset[str],
    as_of: dt.date,
    record: bool,
    recovery: Recovery | None = None,
    strays: MappingOf[str, Stray] | None = None,
) -> Settled:
    """Read back what `uncertain` names (`desired`: with its values kept), merge it into
    `known`, and (with `record`) write it to the store and clear the marks read.

    `strays`: people with an uncertain user write whom the store does not know and this run
    does not want (a joiner whose create's answer was lost, ended or gone from the HR input
    since): a user found for them by externalId is the connector's, and linked, so that the
    run deactivates it like any leaver's."""
    if not uncertain:
        return Settled(known)
    strays = strays or {}
    observation = await observe(
        client,
        known,
        desired,
        keyring,
        uncertain.people,
        not_kept,
        uncertain.memberships,
        strays={key: stray.label for key, stray in strays.items()},
    )
    users = dict(known.users)
    changed = set()  # people whose user differs from what the store knew: the write took effect
    for key, seen in observation.known.users.items():
        before = known.users.get(key)
        wanted = desired.users.get(key)
        if before is None and wanted is None:
            stray = strays.get(key)
            if stray is None:
                continue  # not someone this run manages
            changed.add(key)
            users[key] = replace(seen, employee_keys=stray.employee_keys)
            continue
        if (
            before is None
            or before.active != seen.active
            or not seen.digests.same_values(before.digests)
        ):
            changed.add(key)
        if before is None:
            assert wanted is not None
            seen = replace(seen, employee_keys=wanted.employee_keys)
        elif before.active and not seen.active and before.deactivated_on is None:
            seen = replace(seen, deactivated_on=as_of)
        users[key] = seen
    settled = KnownState(users=users, groups=known.groups)
    if record:
        _record(store, settled, uncertain, observation)
    return Settled(settled, tuple(_warnings(uncertain, observation, changed, recovery)))


def _record(
    store: StateStore, settled: KnownState, uncertain: Uncertain, observation: Observation
) -> None:
    """Write what was read back, and clear the marks it settles (in one transaction)."""
    with store.transaction():
        for key in uncertain.users:
            if key in observation.unreadable_keys:
                continue  # not read this run: the mark stays
            if key in observation.known.users and key in settled.users:
                store.save_user(settled.users[key])
            store.clear_uncertain(key)
        for key, right in uncertain.memberships:
            user = settled.users.get(key)
            if key in observation.unreadable_keys or right not in observation.known.groups:
                continue  # the user or the group was not read: the mark stays
            if user is not None and key in observation.known.users:
                if key not in uncertain.users:
                    store.save_user(user)
                if right in user.memberships:
                    store.add_membership(key, right)
                else:
                    store.remove_membership(key, right)
            store.clear_uncertain(key, right)


def _warnings(
    uncertain: Uncertain,
    observation: Observation,
    changed: set[str],
    recovery: Recovery | None,
) -> list[Warning_]:
    """One warning for the writes read back, one for a recovery of ownership."""
    warnings = []
    users = [key for key, kind in uncertain.users.items() if kind != RECOVER]
    writes = {pair: kind for pair, kind in uncertain.memberships.items() if kind != RECOVER}
    if users or writes:
        applied = len(changed & set(users))
        applied += sum(
            1
            for pair, kind in writes.items()
            if pair in observation.settled_memberships
            and observation.settled_memberships[pair] == (kind != "withdraw")
        )
        warnings.append(
            Warning_(
                kind="uncertain_resolved",
                message=f"{len(users) + len(writes)} write(s) of an earlier run whose outcome "
                "was unknown (answer lost, or the run stopped) read back from the target "
                f"before planning; {applied} had taken effect",
            )
        )
    if recovery is not None:
        owned = sum(
            1
            for pair, kind in uncertain.memberships.items()
            if kind == RECOVER and observation.settled_memberships.get(pair, False)
        )
        warnings.append(
            Warning_(
                kind="ownership_recovered",
                message=f"{recovery.reason}: {owned} membership(s) in the target recovered as "
                "the connector's (their holders have a grant of that right in the HR input); "
                f"{recovery.left} member(s) without such a grant left as someone else's",
            )
        )
    return warnings


def strays_of(
    uncertain: Uncertain,
    known: KnownState,
    desired: DesiredState,
    people: MappingOf[str, Person],
    keyring: Keyring,
    store: StateStore,
) -> dict[str, Stray]:
    """The people with an uncertain user write that the store does not know and this run does
    not want (`people`: the HR input's, by national number), named as the HR input does, else
    as the journal last did."""
    keys = [k for k in uncertain.users if k not in known.users and k not in desired.users]
    if not keys:
        return {}
    by_key = {keyring.person_key(digits): person for digits, person in people.items()}
    strays = {}
    for key in keys:
        person = by_key.get(key)
        if person is not None:
            employee_keys = frozenset(r.key for r in person.relations)
            strays[key] = Stray(person_label(person), employee_keys)
        else:
            labels = [entry.person for entry in store.history(person_key=key) if entry.person]
            strays[key] = Stray(labels[-1] if labels else "?")
    return strays
