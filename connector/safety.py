"""Safety checks on a plan, before anything is applied (pure).

Like Entra ID's accidental-deletion prevention: a plan that would cut off too many people
at once is stopped, because the likeliest cause is a bad HR export, not a mass exodus.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.known import KnownState
from connector.mapping import DesiredState
from connector.plan import OpKind, Plan


@dataclass(frozen=True, slots=True)
class Thresholds:
    """How much a single run may take away before it is stopped."""

    max_deactivations_count: int | None = 500
    max_deactivations_percent: float | None = 20.0
    max_withdrawals_count: int | None = 500
    max_withdrawals_percent: float | None = 20.0
    percent_applies_from: int = 10  # the percentages apply when at least this many are managed


@dataclass(frozen=True, slots=True)
class Trip:
    """One threshold a plan exceeds."""

    what: str  # "deactivations" or "withdrawals"
    planned: int
    managed: int
    limit: str  # e.g. "20% of 40 managed people (8)" or "500"

    @property
    def message(self) -> str:
        """A sentence for people."""
        return f"the run would do {self.planned} {self.what}, more than {self.limit}"


def _check(
    what: str,
    planned: int,
    managed: int,
    max_count: int | None,
    max_percent: float | None,
    applies_from: int,
    unit: str,
) -> Trip | None:
    if max_count is not None and planned > max_count:
        return Trip(what, planned, managed, str(max_count))
    if max_percent is not None and managed >= applies_from:
        allowed = managed * max_percent / 100
        if planned > allowed:
            limit = f"{max_percent:g}% of {managed} managed {unit} ({allowed:g})"
            return Trip(what, planned, managed, limit)
    return None


def check_plan(plan: Plan, known: KnownState, thresholds: Thresholds) -> list[Trip]:
    """The thresholds this plan exceeds (an empty list means it may be applied)."""
    counts = plan.counts()
    managed_people = len(known.users)
    managed_memberships = sum(len(u.memberships) for u in known.users.values())
    trips = [
        _check(
            "deactivations and deletions",
            counts[OpKind.DEACTIVATE] + counts[OpKind.DELETE],
            managed_people,
            thresholds.max_deactivations_count,
            thresholds.max_deactivations_percent,
            thresholds.percent_applies_from,
            "people",
        ),
        _check(
            "withdrawals",
            counts[OpKind.WITHDRAW],
            managed_memberships,
            thresholds.max_withdrawals_count,
            thresholds.max_withdrawals_percent,
            thresholds.percent_applies_from,
            "memberships",
        ),
    ]
    return [trip for trip in trips if trip is not None]


@dataclass(frozen=True, slots=True)
class BackupGap:
    """An organisation where fewer people than wanted hold a right."""

    organisation_code: str
    right: str
    holders: int
    wanted: int

    @property
    def message(self) -> str:
        """A sentence for people (names no person)."""
        where = f"{self.organisation_code}: right {self.right!r}"
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
