"""Desired users shaped to what a target serves and keeps (pure).

The mapping says what the connector would push to a target that takes everything; a real
target serves some extensions and not others, declares its attributes in /Schemas (some
required, some readOnly, some absent), and may accept a value and keep something else. A
`TargetFit` holds what is known of that (from discovery, or from the state store's profile of
the target when nothing is contacted, as in `plan`), and `fitted` turns the mapping's
attributes into what is worth sending to it:

- attributes of a User extension the target does not serve are left out;
- the rest is fitted to the declared schema (`connector.target.schema.fit_user`: undeclared
  and readOnly attributes left out, `name.formatted` added where required, e-mail types made
  distinct: one `work`, the others `other`).

What the fit leaves out is neither written nor removed: the last pushed digest of such a path
is carried over (`carried`), so a path that a target turns out not to serve is not planned as a
removal. Paths the target was seen not to keep as sent (`not_kept`) are still written when
their HR value changes, but never compared with what the target holds, so they cannot drift.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from connector.known import Digests
from connector.target.schema import DeclaredSchema, Reason, fit_user, requires, typed_emails

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@dataclass(frozen=True, slots=True)
class TargetFit:
    """What a target serves and keeps (the default: unknown, so only e-mail types are fitted)."""

    # The User extensions the target serves (casefolded URNs); None: unknown, all are sent.
    user_extensions: frozenset[str] | None = None
    declared: DeclaredSchema = field(default_factory=DeclaredSchema.unknown)
    # Owned attribute paths the target does not keep as sent: never compared for drift.
    not_kept: frozenset[str] = frozenset()
    # Per shape of the attributes (`_shape`): whether the declared schema takes that shape as
    # it is (then only e-mail types and name.formatted change, and the full fit is skipped).
    _clean: dict[tuple[Any, ...], bool] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def fingerprint(self) -> str:
        """A stable text that changes when the fit does (part of what people are mapped with)."""
        extensions = None if self.user_extensions is None else sorted(self.user_extensions)
        parts = (extensions, self.declared, sorted(self.not_kept))
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    def serves(self, path: str) -> bool:
        """Whether an owned path is in the core schema or in an extension the target serves."""
        if self.user_extensions is None or not path.startswith("urn:"):
            return True
        urn = path.rpartition(":")[0].casefold()
        return urn == CORE_USER.casefold() or urn in self.user_extensions

    def fitted(self, attributes: dict[str, Any], formatted_name: str | None) -> dict[str, Any]:
        """The mapping's attributes (owned path -> value) as worth sending to this target."""
        served = {p: v for p, v in attributes.items() if v is not None and self.serves(p)}
        shape = _shape(served)
        clean = self._clean.get(shape)
        if clean is None:
            fitted = fit_user(nested(served), self.declared, formatted_name=formatted_name)
            clean = all(a.reason in _ALWAYS_ADJUSTED for a in fitted.adjustments)
            self._clean[shape] = clean
            return flat(fitted.payload)
        if not clean:
            body = fit_user(nested(served), self.declared, formatted_name=formatted_name).payload
            return flat(body)
        return self._typed_and_named(served, formatted_name)

    def _typed_and_named(
        self, served: dict[str, Any], formatted_name: str | None
    ) -> dict[str, Any]:
        """What `fit_user` makes of a shape the schema takes as it is: distinct e-mail types,
        and name.formatted where the target declares it (the same rules, without the walk)."""
        declared = self.declared
        emails = served.get("emails")
        several = emails if isinstance(emails, list) and len(emails) > 1 else None
        if several is not None and declared.writable(CORE_USER, "emails.type"):
            email_type = declared.attribute(CORE_USER, "emails.type")
            canonical = email_type.canonical_values if email_type else ()
            served["emails"] = typed_emails(several, canonical or None)
        name = served.get("name")
        if (
            formatted_name
            and isinstance(name, dict)
            and "formatted" not in name
            and requires(declared, "name.formatted")
        ):
            served["name"] = {**name, "formatted": formatted_name}
        return served

    def carried(
        self,
        digests: Digests,
        pushed: Digests | None,
        attributes: dict[str, Any],
        fitted: dict[str, Any],
    ) -> Digests:
        """`digests` of the `fitted` values, plus the pushed digest of every path the fit left
        out of the mapping's `attributes` or the target does not serve: neither written nor
        removed (see the module's docstring)."""
        if pushed is None:
            return digests
        left_out = {p for p, v in attributes.items() if v is not None and p not in fitted}
        extra = [
            (p, d)
            for p, d in pushed.items()
            if p not in digests and (p in left_out or not self.serves(p))
        ]
        if not extra:
            return digests
        return Digests.of([*digests.items(), *extra], digests.whole)


# What `fit_user` does to a shape the schema takes as it is: distinct e-mail types, and
# name.formatted added (anything else, a drop, means the shape needs the whole fit).
_ALWAYS_ADJUSTED = frozenset({Reason.RETYPED, Reason.UNTYPED, Reason.ADDED})


def _shape(attributes: dict[str, Any]) -> tuple[Any, ...]:
    """What a fit depends on: the paths, and the keys of their objects (not the values)."""
    out: list[Any] = []
    for path, value in attributes.items():
        if isinstance(value, dict):
            out.append((path, tuple(value)))
        elif isinstance(value, list):
            keys = {key for item in value if isinstance(item, dict) for key in item}
            out.append((path, "list", tuple(sorted(keys))))
        else:
            out.append(path)
    return tuple(out)


def nested(attributes: dict[str, Any]) -> dict[str, Any]:
    """A User's JSON from owned paths (`urn:...:attr` paths under their extension)."""
    body: dict[str, Any] = {"schemas": [CORE_USER]}
    for path, value in attributes.items():
        if value is None:
            continue
        if path.startswith("urn:"):
            urn, _, attribute = path.rpartition(":")
            body.setdefault(urn, {})[attribute] = value
            if urn not in body["schemas"]:
                body["schemas"].append(urn)
        else:
            body[path] = value
    return body


def flat(body: dict[str, Any]) -> dict[str, Any]:
    """Owned paths from a User's JSON (the inverse of `nested`)."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("schemas", "id", "meta"):
            continue
        if key.startswith("urn:") and isinstance(value, dict):
            out.update((f"{key}:{attribute}", v) for attribute, v in value.items())
        else:
            out[key] = value
    return out


# Never learned as "not kept": what identifies the account and whether it is active are always
# compared with the target (a target that changes them is drift, not a limitation).
ALWAYS_COMPARED = frozenset({"userName", "active"})


def not_kept(sent: dict[str, Any], answer: dict[str, Any]) -> frozenset[str]:
    """The owned paths whose value in a write's answer (the user as the target holds it) is
    not what was sent: the target does not keep them as sent."""
    return frozenset(
        path
        for path, value in sent.items()
        if value is not None
        and path not in ALWAYS_COMPARED
        and not equivalent(value_at(answer, path), value)
    )


def missing_effects(sent: dict[str, Any], answer: dict[str, Any]) -> frozenset[str]:
    """The always-compared paths (`userName`, `active`) a write's answer does not hold as sent:
    a write answered with success that did not take effect."""
    missing = set()
    for path in ALWAYS_COMPARED & sent.keys():
        wanted, held = sent[path], value_at(answer, path)
        if isinstance(wanted, str) and isinstance(held, str):
            same = wanted.casefold() == held.casefold()  # userName is not case-exact
        else:
            same = wanted == held
        if not same:
            missing.add(path)
    return frozenset(missing)


def equivalent(actual: Any, desired: Any) -> bool:
    """True iff `actual` holds everything `desired` says (extra keys and list order ignored)."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            equivalent(actual.get(k), v) for k, v in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(actual) != len(desired):
            return False
        unused = list(actual)
        for wanted in desired:
            match = next((a for a in unused if equivalent(a, wanted)), None)
            if match is None:
                return False
            unused.remove(match)
        return True
    return bool(actual == desired)


def value_at(body: dict[str, Any], path: str) -> Any:
    """The value of an owned attribute path in a SCIM User's JSON body (None if absent)."""
    if path.startswith("urn:"):
        urn, _, attribute = path.rpartition(":")
        extension = body.get(urn)
        return extension.get(attribute) if isinstance(extension, dict) else None
    return body.get(path)
