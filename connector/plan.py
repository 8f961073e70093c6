"""The plan: desired state vs known state -> an ordered list of typed operations (pure).

Same inputs, same plan. Nothing here reads a file, a clock or the network.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from connector.acmidm import HeldRight
from connector.holds import HoldNote
from connector.known import KnownState, KnownUser
from connector.mapping import DesiredState, DesiredUser


class OpKind(StrEnum):
    """The kinds of operation, in the order a plan applies them."""

    CREATE = "create"
    ACTIVATE = "activate"
    UPDATE = "update"
    GRANT = "grant"
    WITHDRAW = "withdraw"
    DEACTIVATE = "deactivate"
    DELETE = "delete"


ORDER = {kind: index for index, kind in enumerate(OpKind)}


class OnMissing(StrEnum):
    """What to do with a managed person who is no longer in the HR input."""

    DEACTIVATE = "deactivate"
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class Change:
    """One owned attribute to set (or, with `value` None, to remove)."""

    path: str
    value: Any = field(repr=False)
    # The keyed digest of `value` (empty for a removal, or for a plain flag such as `active`):
    # what a plan's fingerprint holds instead of the value, national numbers included.
    digest: bytes = field(default=b"", repr=False, compare=False)

    def fingerprinted(self) -> str:
        """This change as the plan's fingerprint holds it: path and value digest, never a value."""
        if self.digest:
            return f"{self.path}={self.digest.hex()}"
        if self.value is None:
            return f"{self.path}:removed"
        if isinstance(self.value, bool):
            return f"{self.path}={str(self.value).lower()}"
        raise ValueError(f"change of {self.path} has no digest")


@dataclass(frozen=True, slots=True)
class UserOp:
    """Create, update, activate, deactivate or delete one person's SCIM User."""

    kind: OpKind
    person: str  # person key
    label: str  # masked national number
    scim_id: str | None  # None for a create
    changes: tuple[Change, ...] = ()
    # For creates: the full resource and the number to look the person up with before creating.
    resource: dict[str, Any] | None = field(default=None, repr=False)
    # The number (creates, and changes of a person in the HR input: to judge an account found
    # again after a 404 with it) and, for changes, the person's name (given, family) likewise.
    national_digits: str | None = field(default=None, repr=False)
    name: tuple[str | None, str | None] = field(default=(None, None), repr=False)
    # What the state store holds for this person once the operation succeeded.
    after: KnownUser | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class MembershipOp:
    """Add a person to, or remove them from, the group that carries a right."""

    kind: OpKind  # GRANT or WITHDRAW
    person: str
    label: str
    right: str
    group: str  # the group's displayName
    organisations: tuple[str, ...] = ()
    begin: dt.date | None = None
    end: dt.date | None = None


Operation = UserOp | MembershipOp


@dataclass(frozen=True, slots=True)
class Plan:
    """What a sync would do, in the order it would do it."""

    as_of: dt.date
    operations: tuple[Operation, ...]
    held: dict[str, str] = field(default_factory=dict)  # person key -> masked label
    # person key -> (masked label, what rejected rows hold of them and why)
    hold_notes: dict[str, tuple[str, tuple[HoldNote, ...]]] = field(default_factory=dict)
    managed_before: int = 0  # people the connector managed before this run

    def counts(self) -> dict[str, int]:
        """Number of operations per kind (every kind present, zeros included)."""
        counted = Counter(op.kind.value for op in self.operations)
        return {kind.value: counted.get(kind.value, 0) for kind in OpKind}

    def of_kind(self, kind: OpKind) -> list[Operation]:
        """The operations of one kind, in plan order."""
        return [op for op in self.operations if op.kind is kind]

    @property
    def empty(self) -> bool:
        """True iff the plan changes nothing."""
        return not self.operations

    def fingerprint(self) -> str:
        """A digest of what this plan does (kinds, people, attributes and their values, rights
        and their windows), not of when.

        An approval of a stopped run applies to a later run only if that run would make the
        very same changes, to the same values. Values enter as their keyed digests (those the
        state store keeps), never in clear.
        """
        lines = [f"{op.kind.value} {op.person} {_fingerprinted(op)}" for op in self.operations]
        return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()[:32]


def _fingerprinted(op: Operation) -> str:
    if isinstance(op, MembershipOp):
        days = "..".join(d.isoformat() if d else "" for d in (op.begin, op.end))
        return f"{op.right} {','.join(op.organisations)} {days}"
    if op.kind is OpKind.CREATE and op.after is not None:
        digests = op.after.digests
        return ",".join(f"{path}={digest.hex()}" for path, digest in digests.items())
    return ",".join(c.fingerprinted() for c in op.changes)


def _known_after(desired: DesiredUser, before: KnownUser | None, day: dt.date) -> KnownUser:
    deactivated_on = None
    if not desired.active:
        was_active = before is None or before.active
        deactivated_on = day if was_active else (before.deactivated_on if before else day)
    return KnownUser(
        key=desired.key,
        label=desired.label,
        scim_id=before.scim_id if before else "",
        user_name=desired.user_name,
        active=desired.active,
        digests=desired.digests,
        memberships=before.memberships if before else frozenset(),
        employee_keys=desired.employee_keys,
        deactivated_on=deactivated_on,
        mapped_from=desired.mapped_from,
        pushed_relations=desired.pushed_relations,
    )


def _changes(desired: DesiredUser, known: KnownUser) -> tuple[Change, ...]:
    if desired.digests.same_values(known.digests):
        return ()
    changes = [
        Change(path, desired.value(path), digest)
        for path, digest in desired.digests.items()
        if known.digests.get(path) != digest
    ]
    changes.extend(Change(path, None) for path in known.digests if path not in desired.digests)
    return tuple(sorted(changes, key=lambda c: c.path))


def _name_of(desired: DesiredUser) -> tuple[str | None, str | None]:
    """The person's given and family name as mapped (None where the values were not kept)."""
    name = (desired.attributes or {}).get("name")
    if not isinstance(name, dict):
        return None, None
    return name.get("givenName"), name.get("familyName")


def _user_kind(changes: tuple[Change, ...], desired_active: bool) -> OpKind:
    if any(c.path == "active" for c in changes):
        return OpKind.ACTIVATE if desired_active else OpKind.DEACTIVATE
    return OpKind.UPDATE


def _due_for_deletion(known: KnownUser, day: dt.date, delete_after_days: int | None) -> bool:
    if delete_after_days is None or known.active or known.deactivated_on is None:
        return False
    # Counted back from the run date: `deactivated_on + n days` may pass date.max.
    return (day - known.deactivated_on).days >= delete_after_days


def _membership_ops(
    kind: OpKind,
    person: str,
    label: str,
    rights: frozenset[str],
    groups: dict[str, str],
    held: tuple[HeldRight, ...] = (),
) -> list[MembershipOp]:
    ops = []
    for right in sorted(rights):
        windows = [h for h in held if h.right == right]
        ops.append(
            MembershipOp(
                kind=kind,
                person=person,
                label=label,
                right=right,
                group=groups.get(right, right),
                organisations=tuple(h.organisation_code for h in windows),
                begin=min((h.begin for h in windows if h.begin), default=None),
                end=max((h.end for h in windows if h.end), default=None),
            )
        )
    return ops


def _plan_desired(
    desired: DesiredUser,
    known: KnownUser | None,
    groups: dict[str, str],
    day: dt.date,
    delete_after_days: int | None,
) -> list[Operation]:
    ops: list[Operation] = []
    if known is None:
        ops.append(
            UserOp(
                OpKind.CREATE,
                desired.key,
                desired.label,
                None,
                resource=desired.resource(),
                national_digits=desired.national_digits,
                after=_known_after(desired, known, day),
            )
        )
        granted: frozenset[str] = frozenset()
    else:
        if _due_for_deletion(known, day, delete_after_days) and not desired.active:
            return [UserOp(OpKind.DELETE, known.key, known.label, known.scim_id)]
        changes = _changes(desired, known)
        if changes:
            kind = _user_kind(changes, desired.active)
            after = _known_after(desired, known, day)
            ops.append(
                UserOp(
                    kind,
                    desired.key,
                    desired.label,
                    known.scim_id,
                    changes,
                    national_digits=desired.national_digits or None,
                    name=_name_of(desired),
                    after=after,
                )
            )
        granted = known.memberships
    wanted = desired.right_names
    present = granted | (known.foreign_memberships if known else frozenset())
    ops += _membership_ops(
        OpKind.GRANT, desired.key, desired.label, wanted - present, groups, desired.rights
    )
    ops += _membership_ops(
        OpKind.WITHDRAW, desired.key, desired.label, granted - wanted, groups, desired.ended_rights
    )
    return ops


def _plan_missing(
    known: KnownUser,
    groups: dict[str, str],
    day: dt.date,
    on_missing: OnMissing,
    delete_after_days: int | None,
) -> list[Operation]:
    if on_missing is OnMissing.IGNORE:
        return []
    if _due_for_deletion(known, day, delete_after_days):
        return [UserOp(OpKind.DELETE, known.key, known.label, known.scim_id)]
    ops: list[Operation] = []
    ops += _membership_ops(OpKind.WITHDRAW, known.key, known.label, known.memberships, groups)
    if known.active:
        # The last pushed value of `active` is no longer the one on record: drop its digest,
        # so that a person who comes back is activated.
        digests = known.digests.without("active")
        after = replace(known, active=False, deactivated_on=day, digests=digests, mapped_from=None)
        ops.append(
            UserOp(
                OpKind.DEACTIVATE,
                known.key,
                known.label,
                known.scim_id,
                (Change("active", False),),
                after=after,
            )
        )
    return ops


def make_plan(
    desired: DesiredState,
    known: KnownState,
    day: dt.date,
    *,
    on_missing: OnMissing = OnMissing.DEACTIVATE,
    delete_after_days: int | None = None,
) -> Plan:
    """Compare what the target should hold with what the connector knows it holds."""
    ops: list[Operation] = []
    for key in sorted(desired.users):
        ops += _plan_desired(
            desired.users[key], known.users.get(key), desired.groups, day, delete_after_days
        )
    for key in sorted(known.users.keys() - desired.users.keys() - desired.held.keys()):
        vanished = desired.vanished.get(key)
        if vanished is not None and on_missing is OnMissing.DEACTIVATE:
            ops += _plan_desired(vanished, known.users[key], desired.groups, day, delete_after_days)
        else:
            ops += _plan_missing(
                known.users[key], desired.groups, day, on_missing, delete_after_days
            )
    ops.sort(key=lambda op: ORDER[op.kind])  # stable: people stay in key order within a kind
    return Plan(
        as_of=day,
        operations=tuple(ops),
        held=dict(desired.held),
        hold_notes=dict(desired.hold_notes),
        managed_before=len(known.users),
    )


def simulate(plan: Plan, known: KnownState) -> KnownState:
    """The known state after every operation of `plan` succeeded (ids invented for creates)."""
    users = dict(known.users)
    for op in plan.operations:
        if isinstance(op, UserOp):
            if op.kind is OpKind.DELETE:
                users.pop(op.person, None)
            elif op.after is not None:
                scim_id = op.scim_id or f"simulated-{op.person}"
                memberships = users[op.person].memberships if op.person in users else frozenset()
                users[op.person] = replace(op.after, scim_id=scim_id, memberships=memberships)
        elif op.person in users:
            user = users[op.person]
            if op.kind is OpKind.GRANT:
                users[op.person] = replace(user, memberships=user.memberships | {op.right})
            else:
                users[op.person] = replace(user, memberships=user.memberships - {op.right})
    return KnownState(users=users, groups=dict(known.groups))
