"""The mapping: how people become SCIM Users and how rights become Groups, as of a date.

`load_mapping` reads a mapping file (`mappings/acmidm.toml` is the built-in one);
`desired_user` maps one person, as of a date, to the SCIM User the target should hold
(`connector.desired.desired_state` does it for everyone; `connector.acmidm` gives the ACM/IDM
extension's values).
"""

from __future__ import annotations

import datetime as dt
import json
import string
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connector.acmidm import (
    HeldRight,
    ended_rights,
    held_rights,
    iso,
    pushed_relations,
    rights_attribute,
    work_relations,
)
from connector.errors import ConfigError
from connector.holds import HoldNote
from connector.hr.records import EmployeeKey, Rejection
from connector.identity import is_suffixed_of
from connector.keys import Keyring
from connector.known import Digests, MappedFrom, PushedRelation
from connector.people import (
    Grant,
    Person,
    WorkRelation,
    active_relations,
    most_recent_relation,
    person_active_on,
)
from connector.people_display import person_label
from connector.target.fit import TargetFit, nested

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ACMIDM = "urn:ietf:params:scim:schemas:extension:acmidm:1.0:User"
_ANY_TARGET = TargetFit()  # a target that takes everything (only e-mail types are fitted)

PLACEHOLDERS = frozenset(
    {
        "given_name",
        "family_name",
        "email",
        "employee_id",
        "organisation_code",
        "organisation_name",
        "department",
        "job_title",
    }
)
RULE_FIELDS = PLACEHOLDERS - {"given_name", "family_name"} | {"relation", "employer_code"}


class ExtensionUse(StrEnum):
    """When to push the ACM/IDM extension."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


def _check_template(value: str | None) -> str | None:
    if value is None:
        return None
    for _, name, _, _ in string.Formatter().parse(value):
        if name is not None and name not in PLACEHOLDERS:
            known = ", ".join(sorted(PLACEHOLDERS))
            raise ValueError(f"unknown placeholder {{{name}}}; known: {known}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnterpriseMapping(_Strict):
    """Templates for the enterprise extension's attributes (absent = not pushed)."""

    employee_number: str | None = None
    organization: str | None = None
    department: str | None = None
    division: str | None = None
    cost_center: str | None = None

    @field_validator("*")
    @classmethod
    def _templates(cls, value: str | None) -> str | None:
        return _check_template(value)


class AcmIdmMapping(_Strict):
    """Whether to push the ACM/IDM extension."""

    extension: ExtensionUse = ExtensionUse.AUTO


class UserMapping(_Strict):
    """How a person becomes a SCIM User."""

    display_name: str = "{given_name} {family_name}"
    # name.formatted, sent only to targets whose /Schemas mark it required.
    formatted_name: str = "{given_name} {family_name}"
    enterprise: EnterpriseMapping = EnterpriseMapping()
    acmidm: AcmIdmMapping = AcmIdmMapping()

    @field_validator("display_name", "formatted_name")
    @classmethod
    def _template(cls, value: str) -> str:
        _check_template(value)
        return value


class RightRule(_Strict):
    """Derives a right for a whole work relation from one of its HR fields."""

    field: str
    in_: list[str] = Field(alias="in", min_length=1)
    organisations: list[str] | None = None

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        if value not in RULE_FIELDS:
            raise ValueError(f"unknown field {value!r}; known: {', '.join(sorted(RULE_FIELDS))}")
        return value

    def matches(self, relation: WorkRelation) -> bool:
        """True iff this rule gives its right to `relation`."""
        if self.organisations is not None and relation.organisation_code not in self.organisations:
            return False
        value = _relation_fields(relation).get(self.field)
        if value is None:
            return False
        wanted = {v.strip().casefold() for v in self.in_}
        return value.strip().casefold() in wanted


class RightMapping(_Strict):
    """A right and the SCIM Group that carries it."""

    group: str
    rules: list[RightRule] = []


class Mapping(_Strict):
    """A whole mapping file."""

    user: UserMapping = UserMapping()
    rights: dict[str, RightMapping] = {}

    @property
    def right_names(self) -> frozenset[str]:
        """The names of the rights this mapping defines."""
        return frozenset(self.rights)


def builtin_mapping_path() -> Path:
    """The built-in mapping file, found from the installed package."""
    packaged = resources.files("connector").joinpath("builtin/acmidm.toml")
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "mappings" / "acmidm.toml"


def load_mapping(path: Path | None = None) -> Mapping:
    """Read and validate a mapping file (the built-in one when `path` is None)."""
    path = path or builtin_mapping_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("mapping.file", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("mapping.file", f"{path} is not valid TOML: {exc}") from None
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"] if p != "in_") or "mapping"
        raise ConfigError(key, err["msg"], file=str(path)) from None


# --- desired state -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DesiredUser:
    """What the target should hold for one person on the run date."""

    key: str  # person key: keyed pseudonym of the national number, also the externalId
    label: str  # employee keys and masked national number (people_display.person_label)
    national_digits: str  # for matching in the target; never logged
    active: bool
    user_name: str
    # Owned attribute path -> JSON value (None: not pushed). The whole is None when the values
    # were not kept: they are exactly those last pushed (`digests` equal the known ones).
    attributes: dict[str, Any] | None
    digests: Digests  # keyed digest of each pushed value, by owned attribute path
    rights: tuple[HeldRight, ...]
    employee_keys: frozenset[EmployeeKey]
    # Rights not held on the run date, each with its latest window that ended before it (per
    # organisation; `end` is the last day it held: the grant's end or the relation's, if sooner).
    ended_rights: tuple[HeldRight, ...] = ()
    mapped_from: MappedFrom | None = None  # what these values were mapped from
    # The work relations as these values push them, for the state store; None: unchanged.
    pushed_relations: tuple[PushedRelation, ...] | None = None

    @property
    def right_names(self) -> frozenset[str]:
        """The rights (hence groups) this person should be a member of."""
        return frozenset(r.right for r in self.rights)

    def value(self, path: str) -> Any:
        """The value of one owned attribute (None: not pushed)."""
        if self.attributes is None:
            raise ValueError(f"{self.label}: values not kept (unchanged since last pushed)")
        return self.attributes.get(path)

    def resource(self) -> dict[str, Any]:
        """The full SCIM User representation (JSON) for a create or replace."""
        if self.attributes is None:
            raise ValueError(f"{self.label}: values not kept (unchanged since last pushed)")
        return nested(self.attributes)


@dataclass(frozen=True, slots=True)
class DesiredState:
    """Every person the target should hold, the managed groups, and who is held back."""

    users: dict[str, DesiredUser]  # by person key
    groups: dict[str, str]  # right name -> group displayName
    held: dict[str, str]  # person key -> label, for people whose rows were rejected
    # (organisation code, right) for every right granted to someone in the HR input, on any
    # date: where a right is in use, so that an organisation left with no holder is seen.
    right_organisations: frozenset[tuple[str, str]] = frozenset()
    # Managed people no longer in the HR input, ended like leavers from their relations as
    # last pushed (those whose relations the state store does not know are not here).
    vanished: dict[str, DesiredUser] = field(default_factory=dict)
    # person key -> (masked label, what rejected rows hold of them and why), for the report.
    hold_notes: dict[str, tuple[str, tuple[HoldNote, ...]]] = field(default_factory=dict)
    # person key -> the rejected rows that hold them whole (in `held`), for the report.
    held_rows: dict[str, tuple[Rejection, ...]] = field(default_factory=dict)


def _relation_fields(relation: WorkRelation) -> dict[str, str | None]:
    return {
        "email": relation.email,
        "employee_id": relation.key.employee_id,
        "organisation_code": relation.key.organisation_code,
        "organisation_name": relation.organisation_name,
        "department": relation.department,
        "job_title": relation.job_title,
        "relation": relation.relation.value,
        "employer_code": relation.employer_code,
    }


def _fill(template: str | None, values: dict[str, str | None]) -> str | None:
    """Fill a template; None when every placeholder it uses is empty."""
    if template is None:
        return None
    names = _placeholders(template)
    if names and all(not values.get(n) for n in names):
        return None
    return template.format_map({k: v or "" for k, v in values.items()}).strip() or None


@cache
def _placeholders(template: str) -> tuple[str, ...]:
    return tuple(n for _, n, _, _ in string.Formatter().parse(template) if n)


def primary_relation(person: Person, day: dt.date) -> WorkRelation:
    """The relation whose e-mail the userName rule picks on `day`."""
    active = active_relations(person, day)
    if active:
        return active[0]
    upcoming = sorted(
        (r for r in person.relations if r.start_date > day), key=lambda r: r.start_date
    )
    return upcoming[0] if upcoming else most_recent_relation(person)


def choose_user_name(person: Person, day: dt.date, current: str | None) -> str:
    """Keep the current userName while an active relation still has it (or has it with a new
    account's numeric suffix, `identity.suffixed_user_name`); else the rule's choice."""
    if current is not None:
        active = active_relations(person, day)
        if not active or any(
            r.email.casefold() == current.casefold() or is_suffixed_of(current, r.email)
            for r in active
        ):
            return current
    return primary_relation(person, day).email


def _emails(person: Person, day: dt.date, user_name: str) -> list[dict[str, Any]]:
    relations = active_relations(person, day) or [most_recent_relation(person)]
    seen: set[str] = set()
    emails: list[dict[str, Any]] = []
    for relation in relations:
        if relation.email.casefold() in seen:
            continue
        seen.add(relation.email.casefold())
        entry: dict[str, Any] = {"value": relation.email, "type": "work"}
        # The address the userName is, or was made from (a new account's numbered userName).
        if relation.email.casefold() == user_name.casefold() or is_suffixed_of(
            user_name, relation.email
        ):
            entry["primary"] = True
        emails.append(entry)
    return emails


def derived_grants(person: Person, mapping: Mapping) -> tuple[Grant, ...]:
    """The person's grants plus those the mapping's rules derive from HR fields."""
    extra = [
        Grant(right=name, relation=relation.key, origin="rule")
        for name, right in mapping.rights.items()
        for rule in right.rules
        for relation in person.relations
        if rule.matches(relation)
    ]
    return person.grants + tuple(extra)


def desired_user(
    person: Person,
    mapping: Mapping,
    keyring: Keyring,
    day: dt.date,
    current_user_name: str | None,
    with_acmidm: bool,
    key: str | None = None,
    pushed: Digests | None = None,
    mapped_from: MappedFrom | None = None,
    grants: tuple[Grant, ...] | None = None,
    fit: TargetFit = _ANY_TARGET,
) -> DesiredUser:
    """What the target should hold for `person` on `day`.

    `key`, `grants`: the person key and `derived_grants`, if already computed; `pushed`: the
    digests of what was last pushed for them, reused as they are when nothing changed;
    `mapped_from`: recorded with the values; `fit`: what the target serves and keeps.
    """
    active = person_active_on(person, day)
    user_name = choose_user_name(person, day, current_user_name)
    relation = primary_relation(person, day)
    values: dict[str, str | None] = {
        "given_name": person.given_name,
        "family_name": person.family_name,
    }
    values |= _relation_fields(relation)
    key = key or keyring.person_key(person.national_id.digits)
    grants = derived_grants(person, mapping) if grants is None else grants
    held = held_rights(person, grants, day) if active else ()
    ended = ended_rights(person, grants, day, frozenset(h.right for h in held))

    attributes: dict[str, Any] = {
        "externalId": key,
        "userName": user_name,
        "name": {"givenName": person.given_name, "familyName": person.family_name},
        "displayName": _fill(mapping.user.display_name, values),
        "emails": _emails(person, day, user_name),
        "active": active,
    }
    for path, template in _enterprise_templates(mapping.user.enterprise):
        attributes[path] = _fill(template, values)
    if with_acmidm:
        attributes[f"{ACMIDM}:nationalId"] = person.national_id.digits
        attributes[f"{ACMIDM}:workRelations"] = work_relations(person, day)
        # A leaver's rights are ended (their windows' last days), not left out.
        attributes[f"{ACMIDM}:rights"] = rights_attribute(held if active else ended) or None
    fitted = fit.fitted(attributes, _fill(mapping.user.formatted_name, values))
    digests = fit.carried(value_digests(fitted, keyring, pushed), pushed, attributes, fitted)

    return DesiredUser(
        key=key,
        label=person_label(person),
        national_digits=person.national_id.digits,
        active=active,
        user_name=user_name,
        attributes=fitted,
        digests=digests,
        rights=held,
        employee_keys=frozenset(r.key for r in person.relations),
        ended_rights=ended,
        mapped_from=mapped_from,
        pushed_relations=pushed_relations(person, grants, day),
    )


def mapping_text(mapping: Mapping, with_acmidm: bool) -> str:
    """A text that changes whenever the mapping (or whether ACM/IDM is pushed) does."""
    return canonical([mapping.model_dump(mode="json", by_alias=True), with_acmidm])


def source_digest(person: Person, mapping_text: str, keyring: Keyring) -> bytes:
    """A keyed digest of everything a person's values are mapped from (with `mapping_text`)."""
    parts: list[str | None] = [
        mapping_text,
        person.national_id.digits,
        person.given_name,
        person.family_name,
    ]
    for r in person.relations:
        parts += (
            r.key.organisation_code,
            r.key.employee_id,
            r.email,
            iso(r.start_date),
            iso(r.end_date),
            r.organisation_name,
            r.department,
            r.job_title,
            r.relation.value,
            r.employer_code,
        )
        if r.held_active is not None:
            parts.append(f"held:{r.held_active}")
    for g in person.grants:
        parts += (g.right, str(g.relation), iso(g.begin), iso(g.end), g.origin)
        if g.held:
            parts.append("held")
    return keyring.digest(canonical(parts))


def value_digests(
    attributes: dict[str, Any], keyring: Keyring, pushed: Digests | None = None
) -> Digests:
    """The digests of the values to push: per owned path, and of all of them at once.

    When the whole digest is that of `pushed`, nothing changed: `pushed` is returned and the
    per-path digests are not computed (at 150,000 people that is most of the mapping's cost).
    """
    values = {path: value for path, value in attributes.items() if value is not None}
    whole = keyring.digest(canonical(values))
    if pushed is not None and pushed.whole == whole:
        return pushed
    return Digests.of(((p, keyring.digest(canonical(v))) for p, v in values.items()), whole)


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


@cache
def _enterprise_templates(enterprise: EnterpriseMapping) -> tuple[tuple[str, str], ...]:
    """(enterprise attribute path, template) for the attributes the mapping pushes."""
    return tuple(
        (f"{ENTERPRISE}:{_camel(attribute)}", template)
        for attribute, template in enterprise.model_dump().items()
        if template is not None
    )


def use_acmidm(mapping: Mapping, target_has_extension: bool) -> bool:
    """Whether to push the ACM/IDM extension to a target that does or does not know it."""
    choice = mapping.user.acmidm.extension
    return choice is ExtensionUse.ALWAYS or (choice is ExtensionUse.AUTO and target_has_extension)


_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def canonical(value: Any) -> str:
    """A stable JSON text for a pushed value, for digests."""
    return _CANONICAL.encode(value)
