"""One answer of the target as the check saw it (`Answer`), and the pure helpers every
judgement reads answers with.

Everything taken from an answer for display is shortened and has national-number-like digits
masked (`clean`); the renderer prints it without markup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connector.nationalid import mask_national_ids
from connector.target.check import Area, Finding, Verdict

SCHEMA_PREFIX = "urn:ietf:params:scim:schemas:"
DETAIL_CHARS = 120


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer as the check saw it: status, JSON body (None: none, or not JSON), ETag,
    and the media type it said it was (`text/html`; "" when it said none)."""

    status: int
    body: object = None
    etag: str | None = None
    content_type: str = ""

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


def named(mapping: Mapping[str, Any], key: str) -> Any:
    """The value under a key, names ignoring case (RFC 7643 §2.1); None if absent."""
    wanted = key.casefold()
    for name, value in mapping.items():
        if name.casefold() == wanted:
            return value
    return None


def attribute(resource: Mapping[str, Any], path: str) -> Any:
    """The value at a path (`name.givenName`, `urn:...:User:employeeNumber`), names ignoring
    case (RFC 7643 §2.1); None if absent."""
    if path.casefold().startswith("urn:"):
        urn, _, name = path.rpartition(":")
        extension = named(resource, urn)
        return named(extension, name) if isinstance(extension, Mapping) else None
    value: Any = resource
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = named(value, part)
    return value


def short_urn(urn: str) -> str:
    """A schema URN without `urn:ietf:params:scim:schemas:` (`extension:enterprise:2.0:User`)."""
    return urn[len(SCHEMA_PREFIX) :] if urn.casefold().startswith(SCHEMA_PREFIX) else urn


def label(path: str) -> str:
    """An attribute path for people: extension URNs shortened."""
    if path.casefold().startswith("urn:"):
        urn, _, name = path.rpartition(":")
        return f"{short_urn(urn)}:{name}"
    return path


def read_back(read: Answer | None) -> dict[str, Any] | None:
    """The resource a read back holds; None if the read failed."""
    if read is None or not read.ok:
        return None
    return read.resource


def read_back_failed(write: Answer, read: Answer | None) -> str:
    """What a write answered, and that reading its resource back failed."""
    return f"{write.status}; read back failed: {read.short() if read else 'no answer'}"


def refused_or_failed(area: Area, item: str, announced: str, answer: Answer) -> Finding:
    """The finding for an answer that is not what the probe needs: an error status, or garble."""
    if not answer.ok:
        return Finding(area, item, announced, answer.short(), Verdict.REFUSED)
    return Finding(area, item, announced, f"{answer.status}, but not SCIM JSON", Verdict.FAILED)


def unverified(area: Area, item: str, why: str, subject: str = "") -> Finding:
    """A probe that could not be done meaningfully, and why."""
    return Finding(area, item, "-", why, Verdict.SKIPPED, subject)
