"""What the connector knows it did: the state store's contents, as the planner sees them."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.hr.records import EmployeeKey
from connector.keys import DIGEST_SIZE

_SHARED_PATHS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _shared(paths: tuple[str, ...]) -> tuple[str, ...]:
    """One tuple object per distinct set of paths (there are a handful), strings interned."""
    shared = _SHARED_PATHS.get(paths)
    if shared is None:
        shared = _SHARED_PATHS.setdefault(paths, tuple(sys.intern(p) for p in paths))
    return shared


@dataclass(frozen=True, slots=True)
class Digests:
    """The keyed digests of one person's pushed values, one per owned attribute path, packed.

    Packed, a person's digests take about 120 bytes instead of about 1 kB as a dict of strings:
    at 150,000 people, 18 MB instead of 450 MB. People with the same owned paths share one
    tuple of paths.

    `whole` is a digest of all the values at once (see `mapping.value_digests`): when a person's
    whole digest is the one last pushed, nothing changed and the per-path digests need not be
    computed at all. Empty when unknown (then the per-path digests are compared).
    """

    paths: tuple[str, ...] = ()  # sorted
    packed: bytes = b""  # DIGEST_SIZE bytes per path, in the order of `paths`
    whole: bytes = b""

    @classmethod
    def of(
        cls, digests: Mapping[str, bytes] | Iterable[tuple[str, bytes]], whole: bytes = b""
    ) -> Digests:
        """Pack (path, digest) pairs."""
        pairs = sorted(digests.items() if isinstance(digests, Mapping) else digests)
        if any(len(d) != DIGEST_SIZE for _, d in pairs):
            raise ValueError(f"a digest is {DIGEST_SIZE} bytes")
        return cls(_shared(tuple(p for p, _ in pairs)), b"".join(d for _, d in pairs), whole)

    @classmethod
    def unpack(cls, paths: str, packed: bytes, whole: bytes = b"") -> Digests:
        """The inverse of `pack`: from the state store's columns."""
        names = tuple(paths.split("\n")) if paths else ()
        if len(packed) != DIGEST_SIZE * len(names):
            raise ValueError("digests do not match their paths")
        return cls(_shared(names), packed, whole)

    def pack(self) -> tuple[str, bytes, bytes]:
        """Paths (one per line), digests and the whole digest, for the state store."""
        return "\n".join(self.paths), self.packed, self.whole

    def same_values(self, other: Digests) -> bool:
        """True iff both hold the same digests (`whole` is only a shortcut to that)."""
        return self.paths == other.paths and self.packed == other.packed

    def get(self, path: str) -> bytes | None:
        """The digest of one path, if it was pushed."""
        try:
            index = self.paths.index(path)
        except ValueError:
            return None
        return self.packed[index * DIGEST_SIZE : (index + 1) * DIGEST_SIZE]

    def items(self) -> Iterator[tuple[str, bytes]]:
        """(path, digest) pairs, by path."""
        for index, path in enumerate(self.paths):
            yield path, self.packed[index * DIGEST_SIZE : (index + 1) * DIGEST_SIZE]

    def without(self, path: str) -> Digests:
        """These digests without one path (and so without a whole digest)."""
        return Digests.of((p, d) for p, d in self.items() if p != path)

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __contains__(self, path: object) -> bool:
        return path in self.paths


@dataclass(frozen=True, slots=True)
class MappedFrom:
    """What a user's pushed values were mapped from: a digest of the person's HR data and of
    the mapping, and the days on which those give the same values (`people.steady_window`)."""

    source: bytes
    since: dt.date | None  # first day (None: since ever)
    until: dt.date | None  # first day after (None: for ever)

    def covers(self, source: bytes, day: dt.date) -> bool:
        """True iff mapping `source` on `day` gives the values mapped then."""
        return (
            source == self.source
            and (self.since is None or self.since <= day)
            and (self.until is None or day < self.until)
        )


@dataclass(frozen=True, slots=True)
class PushedRight:
    """A right held through a work relation when it was last pushed, with its window."""

    right: str
    begin: dt.date | None = None
    end: dt.date | None = None


@dataclass(frozen=True, slots=True)
class PushedRelation:
    """One work relation as last pushed: its HR values, whether it was active on that run's
    day, and the rights held through it then. What a rejected row holds (`holds`), and what a
    person who vanished from the HR input is ended from."""

    key: EmployeeKey
    email: str
    start_date: dt.date
    end_date: dt.date | None
    active: bool
    organisation_name: str | None = None
    department: str | None = None
    job_title: str | None = None
    relation: str = "employee"
    employer_code: str | None = None
    rights: tuple[PushedRight, ...] = ()

    def to_json(self) -> dict[str, object]:
        """This relation as the state store keeps it (JSON)."""
        return {
            "org": self.key.organisation_code,
            "id": self.key.employee_id,
            "email": self.email,
            "start": self.start_date.isoformat(),
            "end": _iso(self.end_date),
            "active": self.active,
            "name": self.organisation_name,
            "department": self.department,
            "job": self.job_title,
            "relation": self.relation,
            "employer": self.employer_code,
            "rights": [[r.right, _iso(r.begin), _iso(r.end)] for r in self.rights],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PushedRelation:
        """The inverse of `to_json`."""
        return cls(
            key=EmployeeKey(data["org"], data["id"]),
            email=data["email"],
            start_date=dt.date.fromisoformat(data["start"]),
            end_date=_day(data["end"]),
            active=bool(data["active"]),
            organisation_name=data["name"],
            department=data["department"],
            job_title=data["job"],
            relation=data["relation"],
            employer_code=data["employer"],
            rights=tuple(PushedRight(r, _day(b), _day(e)) for r, b, e in data["rights"]),
        )


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _day(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


@dataclass(frozen=True, slots=True)
class KnownUser:
    """A person the connector manages in the target (created or adopted)."""

    key: str  # person key (keyed pseudonym)
    label: str  # masked national number
    scim_id: str
    user_name: str
    active: bool
    digests: Digests  # keyed digests of the values last pushed, per owned attribute path
    memberships: frozenset[str] = frozenset()  # rights whose group membership the connector added
    # Rights whose membership the connector would have added but found already there (someone
    # else's): never withdrawn by the connector, and not added again.
    foreign_memberships: frozenset[str] = frozenset()
    employee_keys: frozenset[EmployeeKey] = frozenset()
    deactivated_on: dt.date | None = None
    # What the pushed values were mapped from; None when unknown (then they are mapped again).
    mapped_from: MappedFrom | None = None
    # The work relations as pushed, recorded with a write; None: not loaded, or unchanged (the
    # state store keeps what it had). Loaded only for the people a run needs them for.
    pushed_relations: tuple[PushedRelation, ...] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class KnownState:
    """Every managed person, and the SCIM ids of the managed groups."""

    users: dict[str, KnownUser] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)  # right name -> group SCIM id


@dataclass(frozen=True, slots=True)
class Uncertain:
    """What writes whose outcome is unknown touched (an answer lost, a run killed): read back
    from the target before the next run plans (`connector.reconcile`)."""

    # Person key -> the write that may have changed their user ("create", "deactivate"...).
    users: Mapping[str, str] = field(default_factory=dict)
    # (person key, right) -> the write: "grant", "withdraw", or "recover" (a membership whose
    # owner is to be recovered: `connector.ownership`)
    memberships: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @property
    def people(self) -> frozenset[str]:
        """Every person something uncertain is about."""
        return frozenset(self.users) | {key for key, _ in self.memberships}

    def __bool__(self) -> bool:
        return bool(self.users or self.memberships)
