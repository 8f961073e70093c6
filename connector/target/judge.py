"""Judging a target's raw answers for `check-target`: answers in, `Finding`s out. Pure.

`connector.target.probe` sends the requests and hands each answer (an `Answer`: status, JSON
body, ETag) to a function here. Everything taken from an answer for display is shortened and
has national-number-like digits masked; the renderer prints it without markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.nationalid import mask_national_ids
from connector.scim_models import ACMIDM_USER_SCHEMA, ENTERPRISE_USER_SCHEMA
from connector.target.check import Area, Finding, Verdict

SCHEMA_PREFIX = "urn:ietf:params:scim:schemas:"
DETAIL_CHARS = 120


# ---------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer as the check saw it: status, JSON body (None: none, or not JSON), ETag."""

    status: int
    body: object = None
    etag: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300

    @property
    def resource(self) -> dict[str, Any] | None:
        """The body, if it is a JSON object."""
        return self.body if isinstance(self.body, dict) else None

    @property
    def resources(self) -> list[dict[str, Any]] | None:
        """The `Resources` of a ListResponse (absent means none); None if not a ListResponse."""
        body = self.resource
        if body is None:
            return None
        listed = body.get("Resources", [])
        if not isinstance(listed, list):
            return None
        return [item for item in listed if isinstance(item, dict)]

    @property
    def total(self) -> int | None:
        """`totalResults`, if the body has it as a number."""
        body = self.resource
        value = body.get("totalResults") if body is not None else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def short(self) -> str:
        """The status and the server's detail (masked, one line, shortened): `501: Not ...`."""
        body = self.resource
        detail = ""
        if body is not None:
            parts = [body.get("scimType"), body.get("detail")]
            detail = " ".join(str(part) for part in parts if part not in (None, ""))
        return f"{self.status}: {clean(detail)}" if detail else str(self.status)


def clean(text: str, limit: int = DETAIL_CHARS) -> str:
    """Server text fit for a table cell: one line, national numbers masked, shortened."""
    line = mask_national_ids(" ".join(str(text).split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def attribute(resource: Mapping[str, Any], path: str) -> Any:
    """The value at a path (`name.givenName`, `urn:...:User:employeeNumber`), names ignoring
    case (RFC 7643 §2.1); None if absent."""
    if path.casefold().startswith("urn:"):
        urn, _, name = path.rpartition(":")
        extension = _get(resource, urn)
        return _get(extension, name) if isinstance(extension, Mapping) else None
    value: Any = resource
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = _get(value, part)
    return value


def _get(mapping: Mapping[str, Any], key: str) -> Any:
    wanted = key.casefold()
    for name, value in mapping.items():
        if name.casefold() == wanted:
            return value
    return None


def short_urn(urn: str) -> str:
    """A schema URN without `urn:ietf:params:scim:schemas:` (`extension:enterprise:2.0:User`)."""
    return urn[len(SCHEMA_PREFIX) :] if urn.casefold().startswith(SCHEMA_PREFIX) else urn


def refused_or_failed(area: Area, item: str, announced: str, answer: Answer) -> Finding:
    """The finding for an answer that is not what the probe needs: an error status, or garble."""
    if not answer.ok:
        return Finding(area, item, announced, answer.short(), Verdict.REFUSED)
    return Finding(area, item, announced, f"{answer.status}, but not SCIM JSON", Verdict.FAILED)


# ---------------------------------------------------------------------------- announcements


FEATURES = ("patch", "bulk", "filter", "etag", "sort", "changePassword")


@dataclass(frozen=True, slots=True)
class Announced:
    """What /ServiceProviderConfig says, per feature: supported (None: not said) and as text."""

    supported: Mapping[str, bool | None] = field(default_factory=dict)
    text: Mapping[str, str] = field(default_factory=dict)
    bulk_max_operations: int | None = None

    def says(self, feature: str) -> str:
        """`feature: supported (...)`, for the announced column of behaviour findings."""
        return f"{feature}: {self.text.get(feature, 'unknown')}"

    def supports(self, feature: str) -> bool:
        """True only if the target says the feature is supported."""
        return self.supported.get(feature) is True


def service_provider_config(answer: Answer) -> tuple[list[Finding], Announced]:
    """Findings for /ServiceProviderConfig, and what it announces."""
    area = Area.SERVICE_PROVIDER_CONFIG
    item = "GET /ServiceProviderConfig"
    body = answer.resource
    if not answer.ok or body is None:
        return [refused_or_failed(area, item, "", answer)], Announced()
    supported: dict[str, bool | None] = {}
    text: dict[str, str] = {}
    for feature in FEATURES:
        section = _get(body, feature)
        flag = _get(section, "supported") if isinstance(section, Mapping) else None
        supported[feature] = flag if isinstance(flag, bool) else None
        words = {True: "supported", False: "not supported", None: "not stated"}[supported[feature]]
        limits = [
            f"{name} {_get(section, name)}"
            for name in ("maxOperations", "maxPayloadSize", "maxResults")
            if isinstance(section, Mapping) and _get(section, name) is not None
        ]
        text[feature] = f"{words} ({', '.join(limits)})" if limits else words
    bulk = _get(body, "bulk")
    max_operations = _get(bulk, "maxOperations") if isinstance(bulk, Mapping) else None
    announced = Announced(
        supported, text, max_operations if isinstance(max_operations, int) else None
    )
    findings = [Finding(area, item, "", str(answer.status), Verdict.OK)]
    findings += [
        Finding(area, feature, text[feature], "-", Verdict.INFO, subject=feature)
        for feature in FEATURES
    ]
    return findings, announced


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where Users and Groups are, relative to the base URL, and what the User type declares."""

    users: str = "/Users"
    groups: str = "/Groups"
    user_extensions: frozenset[str] | None = None  # casefolded URNs; None if not known


def relative_endpoint(base_path: str, endpoint: str) -> str:
    """A resource type's endpoint relative to the base URL (`/scim/v2/Users` under a base URL
    ending in /scim/v2 is `/Users`)."""
    path = endpoint
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    base = base_path.rstrip("/")
    if base and path.startswith(base + "/"):
        return path[len(base) :]
    return path if path.startswith("/") else "/" + path


def resource_types(answer: Answer, base_path: str) -> tuple[list[Finding], Endpoints]:
    """Findings for /ResourceTypes (endpoints, totalResults, User extensions), and the endpoints."""
    area = Area.RESOURCE_TYPES
    item = "GET /ResourceTypes"
    listed = answer.resources if answer.ok else None
    if listed is None:
        return [refused_or_failed(area, item, "", answer)], Endpoints()
    findings = [_list_finding(area, item, answer, len(listed), "resource types")]
    by_name = {str(_get(r, "name") or _get(r, "id") or "").casefold(): r for r in listed}
    endpoints: dict[str, str] = {}
    for name, default in (("User", "/Users"), ("Group", "/Groups")):
        resource_type = by_name.get(name.casefold())
        endpoint = _get(resource_type, "endpoint") if resource_type else None
        if not isinstance(endpoint, str) or not endpoint:
            observed = f"no {name} resource type: {default} assumed"
            findings.append(Finding(area, f"{name} endpoint", "-", observed, Verdict.NOTE))
            endpoints[name] = default
            continue
        relative = relative_endpoint(base_path, endpoint)
        endpoints[name] = relative
        if relative == endpoint:
            finding = Finding(area, f"{name} endpoint", endpoint, "relative", Verdict.OK)
        else:
            observed = f"a path from the host root, not relative to the base URL: {relative} used"
            finding = Finding(area, f"{name} endpoint", clean(endpoint), observed, Verdict.NOTE)
        findings.append(finding)
    user_type = by_name.get("user")
    declared = _extensions(user_type) if user_type is not None else None
    text = ", ".join(f"{short_urn(urn)} ({how})" for urn, how in (declared or {}).items())
    findings.append(Finding(area, "User schemaExtensions", text or "none", "-", Verdict.INFO))
    extensions = None if declared is None else frozenset(urn.casefold() for urn in declared)
    return findings, Endpoints(endpoints["User"], endpoints["Group"], extensions)


def _extensions(resource_type: Mapping[str, Any]) -> dict[str, str]:
    """The schema extensions a resource type declares: URN -> "required"/"optional"."""
    declared = _get(resource_type, "schemaExtensions")
    out: dict[str, str] = {}
    for extension in declared if isinstance(declared, list) else []:
        urn = _get(extension, "schema") if isinstance(extension, Mapping) else None
        if isinstance(urn, str):
            out[urn] = "required" if _get(extension, "required") is True else "optional"
    return out


def _list_finding(area: Area, item: str, answer: Answer, count: int, what: str) -> Finding:
    if answer.total is None:
        observed = f"{answer.status}, {count} {what}; the ListResponse has no totalResults"
        return Finding(area, item, "", observed, Verdict.NOTE)
    return Finding(area, item, "", f"{answer.status}, {count} {what}", Verdict.OK)


def schemas(answer: Answer, endpoints: Endpoints) -> tuple[list[Finding], frozenset[str] | None]:
    """Findings for /Schemas (the ids listed, the ACM/IDM and enterprise extensions), and the
    User extensions the connector will use (casefolded; ACM/IDM only if listed and declared)."""
    area = Area.SCHEMAS
    item = "GET /Schemas"
    listed = answer.resources if answer.ok else None
    if listed is None:
        findings = [refused_or_failed(area, item, "", answer)]
        ids: list[str] = []
    else:
        ids = [str(_get(r, "id")) for r in listed if isinstance(_get(r, "id"), str)]
        findings = [_list_finding(area, item, answer, len(ids), "schemas")]
        text = ", ".join(short_urn(i) for i in ids) or "none"
        findings.append(Finding(area, "schemas listed", clean(text, 1000), "-", Verdict.INFO))
    listed_ids = {i.casefold() for i in ids}
    declared = endpoints.user_extensions
    for name, urn, pushed in (
        ("ACM/IDM User extension", ACMIDM_USER_SCHEMA, "nationalId, workRelations, rights"),
        ("enterprise User extension", ENTERPRISE_USER_SCHEMA, "employeeNumber, organization, …"),
    ):
        is_listed = urn.casefold() in listed_ids
        is_declared = None if declared is None else urn.casefold() in declared
        said = {True: "yes", False: "no", None: "unknown"}
        announced = f"listed in /Schemas: {said[is_listed]}; declared on User: {said[is_declared]}"
        used = is_declared and (is_listed or urn != ACMIDM_USER_SCHEMA)
        observed = f"pushed ({pushed})" if used else "not pushed"
        verdict = Verdict.OK if used else Verdict.NOTE
        findings.append(Finding(area, name, announced, observed, verdict, subject=urn))
    if declared is None:
        return findings, None
    served = {urn for urn in declared if urn != ACMIDM_USER_SCHEMA.casefold() or urn in listed_ids}
    known = {ACMIDM_USER_SCHEMA.casefold(), ENTERPRISE_USER_SCHEMA.casefold()}
    return findings, frozenset(served & known)


# ---------------------------------------------------------------------------- reading


def count(item: str, answer: Answer) -> Finding:
    """`GET /Users?count=0` (or /Groups): answered, with totalResults?"""
    if not answer.ok or answer.resources is None:
        return refused_or_failed(Area.READ, item, "", answer)
    if answer.total is None:
        return Finding(Area.READ, item, "", f"{answer.status} without totalResults", Verdict.NOTE)
    return Finding(Area.READ, item, "", f"{answer.status}, totalResults {answer.total}", Verdict.OK)


def paging(first: Answer, second: Answer) -> Finding:
    """`startIndex=1&count=1` and `startIndex=2&count=1`: are count and startIndex honoured?"""
    item = "paging (startIndex, count=1)"
    for answer in (first, second):
        if not answer.ok or answer.resources is None:
            return refused_or_failed(Area.READ, item, "", answer)
    one, two = first.resources or [], second.resources or []
    total = first.total
    if total is None:
        observed = "no totalResults: the number of pages is unknown"
        return Finding(Area.READ, item, "", observed, Verdict.NOTE)
    if total < 2:
        observed = f"{total} user(s): too few to see paging"
        return Finding(Area.READ, item, "", observed, Verdict.UNVERIFIED)
    problems = []
    if len(one) > 1:
        problems.append(f"count ignored ({len(one)} of {total} returned for count=1)")
    ids_one, ids_two = {_get(r, "id") for r in one}, {_get(r, "id") for r in two}
    if not two or ids_two <= ids_one:
        problems.append("startIndex=2 gave the first page again")
    if problems:
        return Finding(Area.READ, item, "", "; ".join(problems), Verdict.NOTE)
    return Finding(Area.READ, item, "", f"both honoured ({total} users)", Verdict.OK)


# ---------------------------------------------------------------------------- filters


@dataclass(frozen=True, slots=True)
class Term:
    """One `attribute eq "value"` of a filter."""

    attribute: str
    value: str

    def text(self) -> str:
        """The term as SCIM filter text (the value a JSON string, RFC 7644 §3.4.2.2)."""
        return f"{self.attribute} eq {json.dumps(self.value, ensure_ascii=False)}"


def filter_text(terms: Sequence[Term]) -> str:
    """Terms joined by `or`."""
    return " or ".join(term.text() for term in terms)


CASE_EXACT = frozenset({"externalid", "id"})  # RFC 7643: caseExact attributes of User/Group


def matches(resource: Mapping[str, Any], term: Term) -> bool:
    """Whether a resource satisfies `attribute eq value` (caseExact as RFC 7643 says)."""
    name = term.attribute.casefold()
    if name == "emails.value":
        emails = _get(resource, "emails")
        values = [_get(e, "value") for e in emails if isinstance(e, Mapping)] if emails else []
    else:
        values = [attribute(resource, term.attribute)]
    for value in values:
        if not isinstance(value, str):
            continue
        if value == term.value:
            return True
        if name not in CASE_EXACT and value.casefold() == term.value.casefold():
            return True
    return False


@dataclass(frozen=True, slots=True)
class FilterTest:
    """One filter tried twice: with values nobody has, and with values someone has (if known)."""

    item: str
    subject: str  # the attribute (or `or`)
    impossible: Answer
    known: Answer | None = None  # the answer to the filter with the known values
    terms: tuple[Term, ...] = ()  # the known values
    expected: frozenset[str] = frozenset()  # ids that must be found
    unfiltered: int | None = None  # how many resources the unfiltered list has
    why_unverified: str = "no known value to look for"


def filter_finding(test: FilterTest, announced: str) -> Finding:
    """Trusted (ok) only when a known value was found, alone; refused, untrusted or unverified
    otherwise."""
    area, item = Area.FILTER, test.item
    impossible = test.impossible
    if not impossible.ok:
        return Finding(area, item, announced, impossible.short(), Verdict.REFUSED, test.subject)
    found = impossible.resources
    if found is None:
        return Finding(area, item, announced, "not a ListResponse", Verdict.FAILED, test.subject)
    hits = impossible.total if impossible.total is not None else len(found)
    if hits:
        observed = f"a value nobody has matched {hits}: the filter is ignored"
        return Finding(area, item, announced, observed, Verdict.UNTRUSTED, test.subject)
    none = "a value nobody has: 0"
    if test.known is None:
        observed = f"{none}; {test.why_unverified}"
        if test.unfiltered:
            observed = f"{none} of {test.unfiltered}; {test.why_unverified}"
        return Finding(area, item, announced, observed, Verdict.UNVERIFIED, test.subject)
    known = test.known
    if not known.ok:
        observed = f"{none}; a known value: {known.short()}"
        return Finding(area, item, announced, observed, Verdict.REFUSED, test.subject)
    results = known.resources
    if results is None:
        return Finding(area, item, announced, "not a ListResponse", Verdict.FAILED, test.subject)
    ids = {str(_get(r, "id")) for r in results}
    wrong = [r for r in results if not any(matches(r, term) for term in test.terms)]
    missing = test.expected - ids
    if missing or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of {len(test.expected)} that have it not found")
        if wrong:
            parts.append(f"{len(wrong)} found that do not have it")
        observed = f"{none}; a known value: {', '.join(parts)}"
        return Finding(area, item, announced, observed, Verdict.UNTRUSTED, test.subject)
    observed = f"{none}; a known value: found, and nothing else"
    return Finding(area, item, announced, observed, Verdict.OK, test.subject)


def search_finding(test: FilterTest) -> Finding:
    """`POST /Users/.search` (RFC 7644 §3.4.3): answered, with right results?"""
    finding = filter_finding(test, "-")
    return Finding(
        Area.READ, "POST /Users/.search", finding.announced, finding.observed, finding.verdict
    )


# ---------------------------------------------------------------------------- users


def kept(sent: Any, read: Any) -> bool:
    """Whether a value read back is the one sent: equal, except that a dict read back need
    only hold what was sent (servers add sub-attributes)."""
    if isinstance(sent, Mapping):
        return isinstance(read, Mapping) and all(kept(v, _get(read, k)) for k, v in sent.items())
    return bool(sent == read)


def created(answer: Answer) -> Finding:
    """The POST of the throwaway user."""
    item = "POST /Users"
    if not answer.ok or answer.resource is None:
        return refused_or_failed(Area.USER_CREATE, item, "", answer)
    return Finding(Area.USER_CREATE, item, "", str(answer.status), Verdict.OK)


def kept_on_create(sent: Mapping[str, Any], read: Answer) -> list[Finding]:
    """Per attribute sent with the throwaway user: kept, partly kept or not kept (read back)."""
    area = Area.USER_CREATE
    resource = read.resource
    if not read.ok or resource is None:
        return [refused_or_failed(area, "read back", "", read)]
    findings = []
    for key, value in sent.items():
        if key in ("schemas",):
            continue
        if key.casefold().startswith("urn:") and isinstance(value, Mapping):
            for name, inner in value.items():
                path = f"{key}:{name}"
                findings.append(_kept_finding(area, path, inner, attribute(resource, path)))
        elif key == "emails":
            findings.append(_emails_finding(value, _get(resource, "emails")))
        elif isinstance(value, Mapping):
            findings.append(_parts_finding(area, key, value, _get(resource, key)))
        else:
            findings.append(_kept_finding(area, key, value, _get(resource, key)))
    return findings


def _label(path: str) -> str:
    """A path for people: extension URNs shortened."""
    if path.casefold().startswith("urn:"):
        urn, _, name = path.rpartition(":")
        return f"{short_urn(urn)}:{name}"
    return path


def _kept_finding(area: Area, path: str, sent: Any, read: Any) -> Finding:
    label = _label(path)
    if kept(sent, read):
        return Finding(area, label, "-", "kept", Verdict.OK, path)
    if read is None:
        return Finding(area, label, "-", "not kept (absent when read back)", Verdict.NOT_KEPT, path)
    observed = f"not kept (read back as {clean(repr(read))})"
    return Finding(area, label, "-", observed, Verdict.NOT_KEPT, path)


def _parts_finding(area: Area, path: str, sent: Mapping[str, Any], read: Any) -> Finding:
    """A complex attribute (name): which of its parts were kept."""
    got = read if isinstance(read, Mapping) else {}
    kept_parts = [k for k, v in sent.items() if kept(v, _get(got, k))]
    lost = [k for k in sent if k not in kept_parts]
    if not lost:
        return Finding(area, path, "-", f"kept ({', '.join(kept_parts)})", Verdict.OK, path)
    if not kept_parts:
        return Finding(area, path, "-", "not kept", Verdict.NOT_KEPT, path)
    observed = f"kept {', '.join(kept_parts)}; not {', '.join(lost)}"
    return Finding(area, path, "-", observed, Verdict.PARTLY_KEPT, path)


def _emails_finding(sent: Any, read: Any) -> Finding:
    """Emails: how many of those sent came back, and with their type?"""
    area = Area.USER_CREATE
    sent_list = [e for e in sent if isinstance(e, Mapping)] if isinstance(sent, list) else []
    read_list = [e for e in read if isinstance(e, Mapping)] if isinstance(read, list) else []
    by_value = {str(_get(e, "value")).casefold(): e for e in read_list}
    back = [e for e in sent_list if str(e.get("value")).casefold() in by_value]
    typed = [e for e in back if _get(by_value[str(e["value"]).casefold()], "type") == e.get("type")]
    label = f"{len(back)} of {len(sent_list)} kept"
    if not back:
        return Finding(area, "emails", "-", "not kept", Verdict.NOT_KEPT, "emails")
    if len(typed) < len(back):
        label += ", type dropped"
    if len(back) == len(sent_list) and len(typed) == len(back):
        return Finding(area, "emails", "-", f"{label} (with type)", Verdict.OK, "emails")
    kept_types = ", ".join(str(e.get("type")) for e in back)
    return Finding(area, "emails", "-", f"{label} ({kept_types})", Verdict.PARTLY_KEPT, "emails")


def patched(path: str, value: Any, patch: Answer, read: Answer | None, announced: str) -> Finding:
    """One PATCH `replace` of a user attribute: kept, accepted but not kept, or refused."""
    item = f"replace {_label(path)}"
    if not patch.ok:
        return Finding(Area.USER_PATCH, item, announced, patch.short(), Verdict.REFUSED, path)
    if read is None or not read.ok or read.resource is None:
        observed = f"{patch.status}; read back failed: {read.short() if read else 'no answer'}"
        return Finding(Area.USER_PATCH, item, announced, observed, Verdict.FAILED, path)
    now = attribute(read.resource, path)
    if kept(value, now):
        return Finding(Area.USER_PATCH, item, announced, f"{patch.status}; kept", Verdict.OK, path)
    observed = f"{patch.status}, but not kept (read back as {clean(repr(now))})"
    return Finding(Area.USER_PATCH, item, announced, observed, Verdict.NOT_KEPT, path)


def replaced(changed: Mapping[str, Any], put: Answer, read: Answer | None) -> Finding:
    """A PUT of the user with some attributes changed: which of the changes were kept."""
    area, item = Area.USER_PUT, "PUT /Users/{id}"
    if not put.ok:
        return Finding(area, item, "-", put.short(), Verdict.REFUSED)
    if read is None or not read.ok or read.resource is None:
        observed = f"{put.status}; read back failed: {read.short() if read else 'no answer'}"
        return Finding(area, item, "-", observed, Verdict.FAILED)
    resource = read.resource
    kept_paths = [p for p, v in changed.items() if kept(v, attribute(resource, p))]
    lost = [p for p in changed if p not in kept_paths]
    parts = [f"kept {', '.join(map(_label, kept_paths))}"] if kept_paths else []
    if lost:
        parts.append(f"not kept {', '.join(map(_label, lost))}")
    verdict = Verdict.OK if not lost else Verdict.PARTLY_KEPT if kept_paths else Verdict.NOT_KEPT
    return Finding(area, item, "-", f"{put.status}; {'; '.join(parts)}", verdict)


# ---------------------------------------------------------------------------- ETag


def versions(read: Answer, announced: Announced) -> Finding:
    """Does a read carry a version (ETag header, meta.version), as announced?"""
    area, item, says = Area.ETAG, "version of a read user", announced.says("etag")
    if not read.ok or read.resource is None:
        return refused_or_failed(area, item, says, read)
    meta = _get(read.resource, "meta")
    version = _get(meta, "version") if isinstance(meta, Mapping) else None
    seen = [f"ETag header {clean(read.etag)}"] if read.etag else []
    if isinstance(version, str) and version:
        seen.append(f"meta.version {clean(version)}")
    if seen == [] and announced.supports("etag"):
        return Finding(area, item, says, "none, although announced", Verdict.NOTE)
    if seen and not announced.supports("etag"):
        return Finding(area, item, says, f"{'; '.join(seen)} (not announced)", Verdict.NOTE)
    return Finding(area, item, says, "; ".join(seen) or "none", Verdict.OK)


def if_match(answer: Answer, announced: Announced) -> Finding:
    """A PATCH with `If-Match` and a wrong version: refused with 412?"""
    area, item, says = Area.ETAG, "If-Match with a wrong version", announced.says("etag")
    if answer.status == 412:
        return Finding(area, item, says, "412: refused", Verdict.OK)
    if answer.ok:
        if announced.supports("etag"):
            return Finding(area, item, says, f"{answer.status}: applied anyway", Verdict.NOTE)
        observed = f"{answer.status}: ignored (no ETag support, as announced)"
        return Finding(area, item, says, observed, Verdict.OK)
    return Finding(area, item, says, answer.short(), Verdict.REFUSED)


# ---------------------------------------------------------------------------- groups


def member_ids(read: Answer | None) -> frozenset[str] | None:
    """The member ids of a group read back; None if the read failed."""
    if read is None or not read.ok or read.resource is None:
        return None
    members = _get(read.resource, "members")
    return frozenset(
        str(_get(m, "value"))
        for m in (members if isinstance(members, list) else [])
        if isinstance(m, Mapping) and _get(m, "value") is not None
    )


def members_finding(
    item: str,
    subject: str,
    answer: Answer,
    read: Answer | None,
    present: Iterable[str] = (),
    absent: Iterable[str] = (),
    announced: str = "-",
) -> Finding:
    """A group write: did the members that should be there (and not) end up so when read back?"""
    area = Area.GROUP
    if not answer.ok:
        return Finding(area, item, announced, answer.short(), Verdict.REFUSED, subject)
    ids = member_ids(read)
    if ids is None:
        observed = f"{answer.status}; read back failed: {read.short() if read else 'no answer'}"
        return Finding(area, item, announced, observed, Verdict.FAILED, subject)
    missing = [m for m in present if m not in ids]
    left = [m for m in absent if m in ids]
    if not missing and not left:
        return Finding(area, item, announced, f"{answer.status}; done", Verdict.OK, subject)
    parts = []
    if missing:
        parts.append(f"{len(missing)} member(s) not there")
    if left:
        parts.append(f"{len(left)} member(s) still there")
    observed = f"{answer.status}, but {' and '.join(parts)} when read back"
    return Finding(area, item, announced, observed, Verdict.NOT_KEPT, subject)


def unverified(area: Area, item: str, why: str, subject: str = "") -> Finding:
    """A probe that could not be done meaningfully, and why."""
    return Finding(area, item, "-", why, Verdict.SKIPPED, subject)


# ---------------------------------------------------------------------------- Bulk


def bulk(answer: Answer, announced: Announced) -> Finding:
    """A POST /Bulk with one operation: answered, and the operation done?"""
    area, item, says = Area.BULK, "POST /Bulk (one PATCH)", announced.says("bulk")
    if not answer.ok:
        return Finding(area, item, says, answer.short(), Verdict.REFUSED)
    operations = _get(answer.resource or {}, "Operations")
    first = operations[0] if isinstance(operations, list) and operations else None
    status = _get(first, "status") if isinstance(first, Mapping) else None
    code = _status_code(status)
    if code is None:
        return Finding(area, item, says, f"{answer.status}, no operation status", Verdict.FAILED)
    if 200 <= code < 300:
        return Finding(area, item, says, f"{answer.status}; operation {code}", Verdict.OK)
    return Finding(area, item, says, f"{answer.status}; operation {code}", Verdict.REFUSED)


def _status_code(status: object) -> int | None:
    """A Bulk operation's status: "200", 200 or {"code": "200"} (RFC 7644 examples vary)."""
    if isinstance(status, Mapping):
        status = _get(status, "code")
    if isinstance(status, int) and not isinstance(status, bool):
        return status
    if isinstance(status, str) and status.strip()[:3].isdigit():
        return int(status.strip()[:3])
    return None


# ---------------------------------------------------------------------------- cleanup


def removed(what: str, delete: Answer | None, after: Answer | None, left: str) -> Finding:
    """The DELETE of a throwaway resource, checked by reading it again (404 expected).

    `left` names the resource for people to remove by hand if it stays behind.
    """
    area = Area.CLEANUP
    if delete is None:
        return Finding(area, what, "-", f"could not delete: left behind ({left})", Verdict.FAILED)
    if not delete.ok and delete.status != 404:
        observed = f"{delete.short()}: left behind ({left})"
        return Finding(area, what, "-", observed, Verdict.FAILED)
    if after is not None and after.status == 404:
        return Finding(area, what, "-", f"{delete.status}; gone (404)", Verdict.OK)
    seen = after.short() if after is not None else "no answer"
    observed = f"{delete.status}, but read again: {seen}; may be left behind ({left})"
    return Finding(area, what, "-", observed, Verdict.FAILED)
