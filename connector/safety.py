"""Safety checks on a plan, before anything is applied (pure).

Like Entra ID's accidental-deletion prevention: a plan that would cut off too many people
at once is stopped, because the likeliest cause is a bad HR export, not a mass exodus; and so
is one that would hand too much out at once (activations, creates, grants: a lost end_date
column brings every leaver back). Every threshold applies to the run as a whole and to each
organisation, so that a small organisation, or one organisation of many, is protected too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from connector.hr.records import EmployeeKey
from connector.known import KnownState
from connector.mapping import DesiredState
from connector.plan import MembershipOp, Operation, OpKind, Plan, UserOp


@dataclass(frozen=True, slots=True)
class Limit:
    """One threshold: at most `count` operations, and at most `percent` of what is managed
    (None: no such limit). The percentage applies where at least `percent_applies_from`
    people (or memberships) are managed."""

    count: int | None
    percent: float | None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """How much a single run may take away, or hand out, before it is stopped."""

    max_deactivations_count: int | None = 500
    max_deactivations_percent: float | None = 20.0
    max_withdrawals_count: int | None = 500
    max_withdrawals_percent: float | None = 20.0
    max_activations_count: int | None = 100
    max_activations_percent: float | None = 10.0
    max_creates_count: int | None = 500
    max_creates_percent: float | None = 20.0
    max_grants_count: int | None = 500
    max_grants_percent: float | None = 20.0
    percent_applies_from: int = 10  # the percentages apply when at least this many are managed


@dataclass(frozen=True, slots=True)
class _Rule:
    """What one pair of `[safety]` keys limits: which operations, counted against what."""

    what: str  # for people: "deactivations and deletions"
    key: str  # the `[safety]` keys' stem: "deactivations" (max_deactivations_count, ...)
    kinds: frozenset[OpKind]
    unit: str  # what is managed: "people" or "memberships"
    addition: bool  # hands something out (not checked on a first sync into an empty store)


_RULES = (
    _Rule(
        "deactivations and deletions",
        "deactivations",
        frozenset({OpKind.DEACTIVATE, OpKind.DELETE}),
        "people",
        addition=False,
    ),
    _Rule("withdrawals", "withdrawals", frozenset({OpKind.WITHDRAW}), "memberships", False),
    _Rule("activations", "activations", frozenset({OpKind.ACTIVATE}), "people", addition=True),
    _Rule("creates", "creates", frozenset({OpKind.CREATE}), "people", addition=True),
    _Rule("grants", "grants", frozenset({OpKind.GRANT}), "memberships", addition=True),
)


def _limit(thresholds: Thresholds, rule: _Rule) -> Limit:
    return Limit(
        getattr(thresholds, f"max_{rule.key}_count"),
        getattr(thresholds, f"max_{rule.key}_percent"),
    )


@dataclass(frozen=True, slots=True)
class Trip:
    """One safety rule a plan breaks: a threshold exceeded (in total or in one organisation),
    an HR input without data rows, or an organisation that would lose all its people."""

    what: str  # e.g. "deactivations and deletions", "grants"
    planned: int
    managed: int
    limit: str  # e.g. "20% of 40 managed people (8)" or "500"
    threshold: str  # the `[safety]` key (or rule) that stops it: "safety.max_grants_percent"
    organisation: str | None = None  # None: the run as a whole

    @property
    def message(self) -> str:
        """A sentence for people: what, where, and which threshold."""
        where = f"organisation {self.organisation}: " if self.organisation else ""
        if self.threshold == NO_DATA_ROWS:
            return (
                f"the HR input has no accepted data rows while the connector manages {self.managed}"
                f" people ({NO_DATA_ROWS}: always stops)"
            )
        if self.threshold == ORGANISATION_EMPTIED:
            return (
                f"{where}the run would remove all {self.planned} of its active people"
                f" ({ORGANISATION_EMPTIED}: always stops)"
            )
        return (
            f"{where}the run would do {self.planned} {self.what}, more than {self.limit}"
            f" ({self.threshold})"
        )


NO_DATA_ROWS = "an HR input without data rows"
ORGANISATION_EMPTIED = "an organisation losing all its people"


def _exceeds(
    rule: _Rule,
    limit: Limit,
    planned: int,
    managed: int,
    applies_from: int,
    organisation: str | None,
) -> Trip | None:
    if limit.count is not None and planned > limit.count and organisation is None:
        return Trip(rule.what, planned, managed, str(limit.count), _key(rule, "count"))
    if limit.percent is not None and managed >= applies_from:
        allowed = managed * limit.percent / 100
        if planned > allowed:
            whose = "its " if organisation else ""
            text = f"{limit.percent:g}% of {whose}{managed} managed {rule.unit} ({allowed:g})"
            return Trip(rule.what, planned, managed, text, _key(rule, "percent"), organisation)
    return None


def _key(rule: _Rule, which: str) -> str:
    return f"safety.max_{rule.key}_{which}"


def _organisations(keys: Iterable[EmployeeKey]) -> frozenset[str]:
    return frozenset(k.organisation_code for k in keys)


@dataclass(frozen=True, slots=True)
class _Scope:
    """Who belongs to which organisation, before and after the plan."""

    known: KnownState
    desired: DesiredState | None

    def organisations(self, person: str) -> frozenset[str]:
        """The organisations a person has (had) a work relation with, before or after."""
        before = self.known.users.get(person)
        after = self.desired.users.get(person) if self.desired else None
        orgs = _organisations(before.employee_keys) if before else frozenset()
        return orgs | (_organisations(after.employee_keys) if after else frozenset())

    def of(self, op: Operation) -> frozenset[str]:
        """The organisations an operation is about."""
        if isinstance(op, MembershipOp) and op.organisations:
            return frozenset(op.organisations)
        return self.organisations(op.person)


def check_plan(
    plan: Plan,
    known: KnownState,
    thresholds: Thresholds,
    *,
    desired: DesiredState | None = None,
    hr_rows: int | None = None,
    initial_load: bool = False,
) -> list[Trip]:
    """The safety rules this plan breaks (an empty list means it may be applied).

    Each threshold applies to the run as a whole and (its percentage) to every organisation;
    additions (activations, creates, grants) are not checked during the initial load
    (`initial_load`: no sync has applied a plan yet; or nobody is managed). `desired`: what
    the plan was made from (it tells the organisations of new people, and whose relation with
    an organisation is gone); `hr_rows`: the HR input's data rows that were accepted (none,
    with people managed, always stops).
    """
    managed_people = len(known.users)
    trips: list[Trip] = []
    if hr_rows == 0 and managed_people:
        trips.append(Trip("people", 0, managed_people, "0", NO_DATA_ROWS))
    scope = _Scope(known, desired)
    people_in: Counter[str] = Counter()
    memberships_in: Counter[str] = Counter()
    for user in known.users.values():
        for org in _organisations(user.employee_keys):
            people_in[org] += 1
            memberships_in[org] += len(user.memberships)
    managed = {
        "people": (managed_people, people_in),
        "memberships": (sum(len(u.memberships) for u in known.users.values()), memberships_in),
    }
    applies_from = thresholds.percent_applies_from
    for rule in _RULES:
        if rule.addition and (initial_load or not managed_people):
            continue  # the initial load
        ops = [op for op in plan.operations if op.kind in rule.kinds]
        total, per_org = managed[rule.unit]
        limit = _limit(thresholds, rule)
        trip = _exceeds(rule, limit, len(ops), total, applies_from, None)
        if trip is not None:
            trips.append(trip)
        planned_in: Counter[str] = Counter()
        for op in ops:
            planned_in.update(scope.of(op))
        for org in sorted(planned_in):
            trip = _exceeds(rule, limit, planned_in[org], per_org[org], applies_from, org)
            if trip is not None:
                trips.append(trip)
    trips.extend(_emptied_organisations(plan, scope))
    return trips


def _emptied_organisations(plan: Plan, scope: _Scope) -> list[Trip]:
    """Organisations with several active managed people that the plan would all remove:
    deactivate or delete them, or drop their relation with it (gone from the export)."""
    ended = {
        op.person
        for op in plan.operations
        if op.kind in (OpKind.DEACTIVATE, OpKind.DELETE) and isinstance(op, UserOp)
    }
    active: dict[str, list[str]] = {}
    for key, user in scope.known.users.items():
        if user.active:
            for org in _organisations(user.employee_keys):
                active.setdefault(org, []).append(key)
    trips = []
    for org, people in sorted(active.items()):
        if len(people) < 2:
            continue
        if all(person in ended or _left(scope, person, org) for person in people):
            trips.append(Trip("people", len(people), len(people), "", ORGANISATION_EMPTIED, org))
    return trips


def _left(scope: _Scope, person: str, org: str) -> bool:
    """True iff the person is in the desired state without a relation with `org` any more."""
    after = scope.desired.users.get(person) if scope.desired else None
    return after is not None and org not in _organisations(after.employee_keys)


@dataclass(frozen=True, slots=True)
class BackupGap:
    """An organisation where fewer people than wanted hold a right."""

    organisation_code: str
    right: str
    holders: int
    wanted: int

    @property
    def message(self) -> str:
        """A sentence for people (names no person), the organisation by its code."""
        return self.text(self.organisation_code)

    def text(self, organisation: str) -> str:
        """A sentence for people naming the organisation as given (`Gemeente Gent (0207...)`)."""
        where = f"{organisation}: right {self.right!r}"
        wanted = f"wanted at least {self.wanted}"
        if self.holders == 0:
            return f"{where} is held by nobody ({wanted})"
        who = "nobody else" if self.holders == 1 else f"only {self.holders} people"
        return f"{where} is held by {self.holders} ({wanted}); {who} can stand in"


def backup_gaps(desired: DesiredState, min_holders: int) -> list[BackupGap]:
    """Organisations and rights held by fewer than `min_holders` people on the plan's date.

    Counted per organisation where the right is in use: held by someone that day, or granted to
    someone in the HR input on another date (so that an organisation whose last holder left, or
    whose holders all start later, is shown with 0).
    """
    holders: dict[tuple[str, str], set[str]] = {pair: set() for pair in desired.right_organisations}
    for user in desired.users.values():
        for held in user.rights:
            holders.setdefault((held.organisation_code, held.right), set()).add(user.key)
    return [
        BackupGap(org, right, len(people), min_holders)
        for (org, right), people in sorted(holders.items())
        if len(people) < min_holders
    ]
