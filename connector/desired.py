"""The desired state: what the target should hold on a day, for everyone in scope, as a pure
function of the people, the mapping, what the connector knows it pushed and the rejected rows'
holds; and, for managed people who vanished from the HR input, their values as leavers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Mapping as Lookup
from dataclasses import replace
from typing import Any

from connector.acmidm import (
    ended_on,
    ended_rights,
    held_rights,
    pushed_ended_rights,
    pushed_work_relations,
    rights_attribute,
)
from connector.holds import HoldNote, holding
from connector.hr.records import EmployeeKey, Rejection, RowHold, mask_digits
from connector.keys import Keyring
from connector.known import Digests, KnownState, KnownUser, MappedFrom, PushedRelation
from connector.mapping import (
    _ANY_TARGET,
    ACMIDM,
    DesiredState,
    DesiredUser,
    Mapping,
    canonical,
    derived_grants,
    desired_user,
    mapping_text,
    source_digest,
)
from connector.people import (
    Grant,
    Person,
    person_active_on,
    person_in_provisioning_window,
    steady_window,
)
from connector.people_display import label_of, person_label
from connector.target.fit import TargetFit


def _as_last_mapped(
    person: Person, grants: tuple[Grant, ...], day: dt.date, known: KnownUser
) -> DesiredUser:
    """A person whose values are those last pushed (same HR data, same mapping, same window):
    the rights they hold on `day` (`grants`: their `derived_grants`), and the known user's
    values, not mapped again."""
    active = person_active_on(person, day)
    held = held_rights(person, grants, day) if active else ()
    label = person_label(person)
    return DesiredUser(
        key=known.key,
        label=known.label if known.label == label else label,
        national_digits=person.national_id.digits,
        active=active,
        user_name=known.user_name,
        attributes=None,
        digests=known.digests,
        rights=held,
        employee_keys=_shared_keys(known, frozenset(r.key for r in person.relations)),
        ended_rights=ended_rights(person, grants, day, frozenset(h.right for h in held)),
        mapped_from=known.mapped_from,
    )


def _as_pushed(user: DesiredUser, known: KnownUser) -> DesiredUser:
    """`user`, whose values are those last pushed, without them: the known user's objects are
    shared (its key and userName are equal: the same person, the same values; its label
    too, unless the state store holds one from an older version)."""
    return replace(
        user,
        key=known.key,
        label=known.label if known.label == user.label else user.label,
        user_name=known.user_name,
        attributes=None,
        digests=known.digests,
        employee_keys=_shared_keys(known, user.employee_keys),
    )


def _shared_keys(known: KnownUser, keys: frozenset[EmployeeKey]) -> frozenset[EmployeeKey]:
    """`keys`, as the known user's set when equal (one set per person, not two)."""
    return known.employee_keys if known.employee_keys == keys else keys


def vanished_user(
    known: KnownUser,
    relations: tuple[PushedRelation, ...],
    day: dt.date,
    keyring: Keyring,
    with_acmidm: bool,
) -> DesiredUser:
    """A managed person who vanished from the HR input, as a leaver looks on `day`: inactive,
    and (where the ACM/IDM extension was pushed) their work relations and rights as last pushed,
    ended (`acmidm.ended_on`). Their other values stay as last pushed."""
    ended = ended_on(relations, day)
    rights = pushed_ended_rights(ended)
    values: dict[str, Any] = {"active": False}
    if with_acmidm and f"{ACMIDM}:workRelations" in known.digests:
        values[f"{ACMIDM}:workRelations"] = pushed_work_relations(ended)
        values[f"{ACMIDM}:rights"] = rights_attribute(rights) or None
    digests = dict(known.digests.items())
    for path, value in values.items():
        if value is None:
            digests.pop(path, None)
        else:
            digests[path] = keyring.digest(canonical(value))
    return DesiredUser(
        key=known.key,
        label=known.label,
        national_digits="",  # never created: the target holds them
        active=False,
        user_name=known.user_name,
        attributes=values,
        digests=Digests.of(digests),
        rights=(),
        employee_keys=known.employee_keys,
        ended_rights=rights,
        pushed_relations=ended,
    )


PushedLookup = Callable[[frozenset[str]], Lookup[str, tuple[PushedRelation, ...]]]


def _nothing_pushed(keys: frozenset[str]) -> dict[str, tuple[PushedRelation, ...]]:
    return {}


def desired_state(
    people: dict[str, Person],
    mapping: Mapping,
    known: KnownState,
    keyring: Keyring,
    day: dt.date,
    *,
    provision_days_before_start: int = 0,
    with_acmidm: bool = True,
    holds: Sequence[RowHold] = (),
    keep_values: bool = True,
    fit: TargetFit = _ANY_TARGET,
    pushed: PushedLookup = _nothing_pushed,
) -> DesiredState:
    """The SCIM users and groups the target should hold on `day`.

    A person is in scope when the connector already manages them, or when a relation is
    active on `day` (or starts within `provision_days_before_start` days). What rejected rows
    touch (`holds`) is kept as last pushed (see `connector.holds`); a person it cannot be done
    for, or whose rows were all rejected, is held whole: left out and listed in `held`.
    Without `keep_values`, people whose values are exactly those last pushed keep no values
    (`DesiredUser.attributes` is None): a run over an unchanged HR export stays small.
    `pushed`: the work relations last pushed for the given people (the state store's, read
    once, for the few people a run needs them for: those who vanished or are held).
    """
    users: dict[str, DesiredUser] = {}
    held: dict[str, str] = {}
    in_use: set[tuple[str, str]] = set()
    mapped_with = mapping_text(mapping, with_acmidm) + fit.fingerprint()
    by_digits, by_key = _indexed(holds)
    pending: dict[str, tuple[Person, list[RowHold]]] = {}

    def add(key: str, person: Person, grants: tuple[Grant, ...]) -> None:
        managed = known.users.get(key)
        if managed is None and not person_in_provisioning_window(
            person, day, provision_days_before_start
        ):
            return
        source = source_digest(person, mapped_with, keyring)
        last = managed.mapped_from if managed else None
        if not keep_values and managed is not None and last and last.covers(source, day):
            users[key] = _as_last_mapped(person, grants, day, managed)
            return
        user = desired_user(
            person,
            mapping,
            keyring,
            day,
            managed.user_name if managed else None,
            with_acmidm,
            key,
            managed.digests if managed else None,
            MappedFrom(source, *steady_window(person, day)),
            grants,
            fit,
        )
        if not keep_values and managed is not None and user.digests.same_values(managed.digests):
            user = _as_pushed(user, managed)
        users[key] = user

    for digits, person in people.items():
        grants = derived_grants(person, mapping)
        in_use.update((g.relation.organisation_code, g.right) for g in grants)
        key = keyring.person_key(digits)
        if holds:
            managed = known.users.get(key)
            keys = [r.key for r in person.relations]
            if managed is not None:
                keys += managed.employee_keys
            mine = _holds_of(by_digits.get(digits, ()), keys, by_key)
            if mine:
                pending[key] = (person, mine)
                continue
        add(key, person, grants)

    whole: dict[str, str] = {}  # people whose rows were all rejected, or not known enough
    why: dict[str, list[RowHold]] = {}  # the rejected rows that hold them
    for digits in by_digits.keys() - people.keys():
        key = keyring.person_key(digits)
        managed = known.users.get(key)
        mine = by_digits[digits]
        whole[key] = managed.label if managed is not None else _label_of_rows(mine, digits)
        why[key] = mine
    for key, managed in known.users.items():
        if key not in users and key not in pending and managed.employee_keys & by_key.keys():
            whole.setdefault(key, managed.label)
            rows = why.setdefault(key, [])
            rows.extend(
                h for k in sorted(managed.employee_keys, key=str) for h in by_key.get(k, ())
            )
    gone = frozenset(known.users.keys() - users.keys() - pending.keys() - whole.keys())
    wanted = gone | pending.keys()
    last_pushed = pushed(wanted) if wanted else {}

    notes: dict[str, tuple[HoldNote, ...]] = {}
    for key, (person, mine) in sorted(pending.items()):
        outcome = holding(person, mine, known.users.get(key), last_pushed.get(key))
        notes[key] = outcome.notes
        if outcome.person is None:
            whole[key] = person_label(person)
            why[key] = mine
        else:
            add(key, outcome.person, derived_grants(outcome.person, mapping))
    for key, label in whole.items():
        held[key] = label
    vanished = {
        key: vanished_user(known.users[key], last_pushed[key], day, keyring, with_acmidm)
        for key in sorted(gone)
        if key in last_pushed
    }
    groups = {name: right.group for name, right in mapping.rights.items()}
    return DesiredState(
        users=users,
        groups=groups,
        held=held,
        right_organisations=frozenset(in_use),
        vanished=vanished,
        hold_notes={
            key: (users[key].label if key in users else held[key], n)
            for key, n in notes.items()
            if n and (key in users or key in held)  # else out of scope: nothing to hold
        },
        held_rows={key: _rejections_of(why.get(key, ())) for key in held},
    )


def _label_of_rows(holds: Iterable[RowHold], digits: str) -> str:
    """The label of a person known only from their rejected rows: the employee keys those rows
    name (in row order) and the masked national number."""
    keys = dict.fromkeys(str(h.key) for h in holds if h.key is not None)
    return label_of(keys, mask_digits(digits))


def _rejections_of(holds: Iterable[RowHold]) -> tuple[Rejection, ...]:
    """The rows of these holds, once each, in file and row order."""
    rows = {(h.rejection.file, h.rejection.row): h.rejection for h in holds}
    return tuple(rows[where] for where in sorted(rows, key=lambda w: (w[0], w[1] or 0)))


def _indexed(
    holds: Iterable[RowHold],
) -> tuple[dict[str, list[RowHold]], dict[EmployeeKey, list[RowHold]]]:
    by_digits: dict[str, list[RowHold]] = {}
    by_key: dict[EmployeeKey, list[RowHold]] = {}
    for hold in holds:
        if hold.national_digits is not None:
            by_digits.setdefault(hold.national_digits, []).append(hold)
        elif hold.key is not None:
            by_key.setdefault(hold.key, []).append(hold)
    return by_digits, by_key


def _holds_of(
    own: Iterable[RowHold], keys: Iterable[EmployeeKey], by_key: dict[EmployeeKey, list[RowHold]]
) -> list[RowHold]:
    """The holds of a person: those naming their national number, and those with no readable
    national number naming one of their employee keys (now or last pushed)."""
    mine = list(own)
    if by_key:
        for key in dict.fromkeys(keys):
            mine += by_key.get(key, ())
    return mine
