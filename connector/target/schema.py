"""What a SCIM target declares at `GET /Schemas`, and a User fitted to it before it is sent.

`declared_schema` reads the decoded /Schemas answer (RFC 7643 §7 and §8.7.1, RFC 7644 §4): per
schema URN and attribute path, both case-insensitive (RFC 7643 §2.1), whether an attribute is
declared, required, its mutability, plurality, sub-attributes and canonical values; what a
declaration leaves out takes the defaults of RFC 7643 §2.2 (not required, readWrite). Anything
malformed is left out, and what is not published is unknown: unknown means declared, sent as is.

`fit_user` applies these rules to a User as the connector builds it:

- an attribute or sub-attribute (also in each value of a multi-valued complex attribute) that a
  published schema does not declare is dropped: core attributes at the top level, an
  extension's under its URN key. `schemas` and `id` are always kept; so are the common
  attributes `externalId` and `meta` (RFC 7643 §3.1: in no schema) unless a schema declares
  them; an extension object is never dropped whole, only its undeclared attributes;
- an attribute or sub-attribute whose mutability is `readOnly` (RFC 7643 §7) is dropped;
- a complex value these drops leave empty is dropped too;
- `name.formatted` is added from `formatted_name` when the target requires it and it is missing
  (only then: a target that merely declares it gets what it got before, no mass update);
- a required attribute still missing is reported (`missing_required`), never invented (the
  common attributes and readOnly ones aside: the server assigns those);
- no two e-mails share a `type` (`typed_emails`), on every target, with or without /Schemas.

`fit_patch_paths` judges the attribute paths of a PATCH (RFC 7644 §3.5.2) by the same rules.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

CORE_USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
_ALWAYS_KEPT = frozenset({"schemas", "id"})
_COMMON = frozenset({"id", "externalid", "meta"})  # RFC 7643 §3.1, casefolded
_FILTER = re.compile(r'\[(?:[^\]"]|"(?:[^"\\]|\\.)*")*\]')  # a value filter: `[type eq "work"]`
_EMPTIED = object()  # a complex value left with nothing


class Mutability(StrEnum):
    """When an attribute's value may be (re)defined (RFC 7643 §7)."""

    READ_ONLY = "readOnly"
    READ_WRITE = "readWrite"
    IMMUTABLE = "immutable"
    WRITE_ONLY = "writeOnly"


_MUTABILITIES = {m.value.casefold(): m for m in Mutability}


@dataclass(frozen=True, slots=True)
class DeclaredAttribute:
    """One attribute or sub-attribute as a published schema declares it."""

    name: str
    required: bool = False
    mutability: Mutability = Mutability.READ_WRITE
    multi_valued: bool = False
    sub_attributes: tuple[DeclaredAttribute, ...] | None = None  # None: not given, unknown
    canonical_values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PublishedSchema:
    """One schema the target published: its URN and its attributes."""

    urn: str
    attributes: tuple[DeclaredAttribute, ...]


class Reason(StrEnum):
    """Why `fit_user` changed an attribute."""

    UNDECLARED = "not declared by the target"
    READ_ONLY = "readOnly on the target"
    ADDED = "declared by the target and missing: filled in"
    RETYPED = "type already held by another e-mail: changed"
    UNTYPED = "type already held by another e-mail, no free type: left out"


@dataclass(frozen=True, slots=True)
class DeclaredSchema:
    """Every schema a target published (none: nothing known, nothing fitted)."""

    schemas: tuple[PublishedSchema, ...] = ()

    @classmethod
    def unknown(cls) -> DeclaredSchema:
        """What a target that publishes no /Schemas declares: nothing known."""
        return cls()

    def schema(self, urn: str) -> PublishedSchema | None:
        """The published schema with this URN (case-insensitive), if any."""
        wanted = urn.casefold()
        return next((s for s in self.schemas if s.urn.casefold() == wanted), None)

    def attribute(self, urn: str, path: str) -> DeclaredAttribute | None:
        """The declaration of `path` (`name.formatted`) in schema `urn`, if published there."""
        schema = self.schema(urn)
        head, _, rest = path.partition(".")
        found = _named(schema.attributes if schema else None, head)
        return _named(found.sub_attributes, rest) if found and rest else found

    def declares(self, urn: str, path: str) -> bool:
        """False only when the target published `urn` without `path`: unknown is declared."""
        return self._judge(urn, path) is not Reason.UNDECLARED

    def writable(self, urn: str, path: str) -> bool:
        """Whether a client may send `path`: declared (or unknown), and neither it nor its
        parent readOnly."""
        return self._judge(urn, path) is None

    def _judge(self, urn: str, path: str) -> Reason | None:
        """Why `path` may not be sent in schema `urn` (None: it may)."""
        schema = self.schema(urn)
        declarations = schema.attributes if schema and path else None
        common = _COMMON if urn.casefold() == CORE_USER_SCHEMA.casefold() else frozenset()
        for name in path.split(".", 1):
            reason, found = _verdict(declarations, name, common)
            if reason is not None or found is None:
                return reason
            declarations, common = found.sub_attributes, frozenset()
        return None


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One change `fit_user` made: to which attribute path, and why."""

    path: str
    reason: Reason


@dataclass(frozen=True, slots=True)
class FittedUser:
    """A User's JSON as it may be sent to the target, what was changed, and what is missing."""

    payload: dict[str, Any]
    adjustments: tuple[Adjustment, ...] = ()
    missing_required: tuple[str, ...] = ()  # required by the target, not in the payload


def declared_schema(resources: object) -> DeclaredSchema:
    """What a target declares, from its decoded /Schemas answer (a ListResponse, its
    `Resources`, or one Schema); whatever is malformed is left out, hence unknown."""
    if isinstance(resources, Mapping):
        listed = _member(resources, "Resources")
        resources = listed if listed is not None else [resources]
    schemas: dict[str, PublishedSchema] = {}
    for item in resources if isinstance(resources, list) else []:
        urn = _member(item, "id") if isinstance(item, Mapping) else None
        attributes = _attributes(_member(item, "attributes")) if isinstance(urn, str) else None
        if isinstance(urn, str) and urn.strip() and attributes is not None:
            schemas.setdefault(urn.strip().casefold(), PublishedSchema(urn.strip(), attributes))
    return DeclaredSchema(tuple(schemas.values()))


def typed_emails(emails: Sequence[Any], canonical: Sequence[str] | None = None) -> list[Any]:
    """The e-mails, no two of the same `type`: the primary (else first) e-mail of a type keeps
    it; each other one gets `other` or, if `canonical` lacks `other`, its first value not yet
    held; one left with no free type loses its `type`."""
    entries = [dict(e) if isinstance(e, Mapping) else e for e in emails]
    typed = [(i, e) for i, e in enumerate(entries) if isinstance(e, dict) and _type_of(e)]
    keepers: dict[str, int] = {}
    for i, entry in sorted(typed, key=lambda pair: pair[1].get("primary") is not True):
        keepers.setdefault(_type_of(entry), i)
    held = set(keepers)
    other = canonical is None or any(c.casefold() == "other" for c in canonical)
    candidates = ("other",) if other else tuple(canonical or ())
    for i, entry in typed:
        if keepers[_type_of(entry)] == i:
            continue
        free = next((c for c in candidates if c.casefold() not in held), None)
        if free is None:
            del entry["type"]
        else:
            entry["type"] = free
            held.add(free.casefold())
    return entries


def fit_user(
    resource: dict[str, Any], declared: DeclaredSchema, *, formatted_name: str | None
) -> FittedUser:
    """`resource` (a User's JSON) as the target declares it may be sent (the module's rules)."""
    report = _Report()
    payload = copy.deepcopy(resource)
    emails = payload.get("emails")
    if isinstance(emails, list) and declared.writable(CORE_USER_SCHEMA, "emails.type"):
        email_type = declared.attribute(CORE_USER_SCHEMA, "emails.type")
        canonical = email_type.canonical_values if email_type else ()
        payload["emails"] = typed_emails(emails, canonical or None)
        for before, after in zip(emails, payload["emails"], strict=True):
            if isinstance(before, dict) and before.get("type") != after.get("type"):
                report.note("emails.type", Reason.RETYPED if "type" in after else Reason.UNTYPED)
    name = payload.get("name", {})
    if (
        formatted_name
        and isinstance(name, dict)
        and not _member(name, "formatted")
        and requires(declared, "name.formatted")
    ):
        payload["name"] = {**name, "formatted": formatted_name}
        report.note("name.formatted", Reason.ADDED)
    core = declared.schema(CORE_USER_SCHEMA)
    core_part = {k: v for k, v in payload.items() if k not in _ALWAYS_KEPT and not _is_urn(k)}
    fitted_core = _fit_members(core_part, core.attributes if core else None, "", report, _COMMON)
    fitted: dict[str, Any] = {}
    for key, value in payload.items():  # in the resource's order
        extension = declared.schema(key) if _is_urn(key) else None
        if extension is not None:  # never dropped whole
            fitted[key] = _fit_members(value, extension.attributes, f"{key}:", report)
        elif key in _ALWAYS_KEPT or _is_urn(key) or key in fitted_core:
            fitted[key] = fitted_core.get(key, value)
    return FittedUser(fitted, tuple(report.adjustments), tuple(report.missing))


def requires(declared: DeclaredSchema, path: str) -> bool:
    """Whether the target's core User schema marks a writable attribute required."""
    found = declared.attribute(CORE_USER_SCHEMA, path)
    return found is not None and found.required and declared.writable(CORE_USER_SCHEMA, path)


def fit_patch_paths(
    paths: Iterable[str], declared: DeclaredSchema
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The attribute paths a PATCH may name on this target, and those it may not (undeclared
    or readOnly); a filtered path is judged by its attribute part, an extension's in its schema."""
    kept: list[str] = []
    dropped: list[str] = []
    for path in paths:
        bare = _FILTER.sub("", path)
        urn, attribute = CORE_USER_SCHEMA, bare
        if _is_urn(bare):
            urn, attribute = bare, ""  # an unpublished schema, or a whole extension
            for schema in sorted(declared.schemas, key=lambda s: -len(s.urn)):
                if bare.casefold().startswith(schema.urn.casefold() + ":"):
                    urn, attribute = schema.urn, bare[len(schema.urn) + 1 :]
                    break
        (kept if declared.writable(urn, attribute) else dropped).append(path)
    return tuple(kept), tuple(dropped)


@dataclass(slots=True)
class _Report:
    """What one `fit_user` call changed and found missing, in order, each once."""

    adjustments: dict[Adjustment, None] = field(default_factory=dict)
    missing: dict[str, None] = field(default_factory=dict)

    def note(self, path: str, reason: Reason) -> None:
        """Record one change."""
        self.adjustments[Adjustment(path, reason)] = None


def _verdict(
    declarations: tuple[DeclaredAttribute, ...] | None, name: str, common: frozenset[str]
) -> tuple[Reason | None, DeclaredAttribute | None]:
    """Why a member may not be sent (None: it may), and its declaration if there is one."""
    if declarations is None:
        return None, None
    found = _named(declarations, name)
    if found is None:
        return (None if name.casefold() in common else Reason.UNDECLARED), None
    return (Reason.READ_ONLY if found.mutability is Mutability.READ_ONLY else None), found


def _fit_members(
    value: Any,
    declarations: tuple[DeclaredAttribute, ...] | None,
    prefix: str,
    report: _Report,
    common: frozenset[str] = frozenset(),
) -> Any:
    """A JSON object's members its declarations let through (all if unknown); the required
    ones it lacks go to `report`."""
    if declarations is None or not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for name, member in value.items():
        reason, found = _verdict(declarations, name, common)
        fitted = _fit_value(member, found, f"{prefix}{name}.", report) if reason is None else None
        if reason is not None:
            report.note(prefix + name, reason)
        elif fitted is not _EMPTIED:
            kept[name] = fitted
    for d in declarations:
        writable = d.mutability is not Mutability.READ_ONLY and d.name.casefold() not in common
        if d.required and writable and _member(kept, d.name) in (None, "", [], {}):
            report.missing[prefix + d.name] = None
    return kept


def _fit_value(
    value: Any, declaration: DeclaredAttribute | None, prefix: str, report: _Report
) -> Any:
    """A value fitted to its declared sub-attributes; `_EMPTIED` when they leave nothing."""
    if declaration is None or declaration.sub_attributes is None:
        return value
    if isinstance(value, list):
        items = [_fit_value(item, declaration, prefix, report) for item in value]
        kept = [item for item in items if item is not _EMPTIED]
        return kept if kept or not value else _EMPTIED
    fitted = _fit_members(value, declaration.sub_attributes, prefix, report)
    return _EMPTIED if isinstance(value, dict) and value and not fitted else fitted


def _attributes(items: object) -> tuple[DeclaredAttribute, ...] | None:
    """Declarations from a JSON list of them, first of a name wins; None when none is usable.
    A declaration needs a name; what else it leaves out takes RFC 7643 §2.2's defaults."""
    parsed: dict[str, DeclaredAttribute] = {}
    for item in items if isinstance(items, list) else []:
        name = _member(item, "name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name.strip():
            continue
        canonical = _member(item, "canonicalValues")
        canonical = canonical if isinstance(canonical, list) else []
        parsed.setdefault(
            name.strip().casefold(),
            DeclaredAttribute(
                name=name.strip(),
                required=_member(item, "required") is True,
                mutability=_MUTABILITIES.get(
                    str(_member(item, "mutability")).casefold(), Mutability.READ_WRITE
                ),
                multi_valued=_member(item, "multiValued") is True,
                sub_attributes=_attributes(_member(item, "subAttributes")),
                canonical_values=tuple(v for v in canonical if isinstance(v, str)),
            ),
        )
    return tuple(parsed.values()) or None


def _named(declarations: Iterable[DeclaredAttribute] | None, name: str) -> DeclaredAttribute | None:
    """The declaration of that name, case-insensitive."""
    wanted = name.casefold()
    return next((d for d in declarations or () if d.name.casefold() == wanted), None)


def _member(value: Mapping[Any, Any], name: str) -> Any:
    """A JSON object's member by case-insensitive name (RFC 7643 §2.1); None if absent."""
    if name in value:
        return value[name]
    wanted = name.casefold()
    return next(
        (v for k, v in value.items() if isinstance(k, str) and k.casefold() == wanted), None
    )


def _type_of(email: Mapping[str, Any]) -> str:
    """An e-mail's `type`, casefolded ('' when it has none)."""
    value = email.get("type")
    return value.casefold() if isinstance(value, str) else ""


def _is_urn(key: str) -> bool:
    """Whether a JSON key (or path) starts with a schema URN."""
    return key[:4].casefold() == "urn:"
