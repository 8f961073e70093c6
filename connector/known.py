"""What the connector knows it did: the state store's contents, as the planner sees them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from connector.hr.records import EmployeeKey


@dataclass(frozen=True, slots=True)
class KnownUser:
    """A person the connector manages in the target (created or adopted)."""

    key: str  # person key (keyed pseudonym)
    label: str  # masked national number
    scim_id: str
    user_name: str
    active: bool
    digests: dict[str, str]  # owned attribute path -> keyed digest of the value last pushed
    memberships: frozenset[str] = frozenset()  # rights whose group membership the connector added
    # Rights whose membership the connector would have added but found already there (someone
    # else's): never withdrawn by the connector, and not added again.
    foreign_memberships: frozenset[str] = frozenset()
    employee_keys: frozenset[EmployeeKey] = frozenset()
    deactivated_on: dt.date | None = None


@dataclass(frozen=True, slots=True)
class KnownState:
    """Every managed person, and the SCIM ids of the managed groups."""

    users: dict[str, KnownUser] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)  # right name -> group SCIM id
