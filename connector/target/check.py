"""What `check-target` found: a target's announcements against what it really does.

A `TargetCheck` is a list of `Finding`s, one per thing looked at (an announcement, a filter, a
PATCH form, a group member removal, ...), each with what the target announced, what it was seen
to do and a verdict. `profile_from` turns the findings into the `TargetProfile` a first sync
starts from. Pure: the probing and the judging are in `connector.target.checking`, one
module per area of the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from connector.target.profile import MemberRemoval, TargetProfile


class Area(StrEnum):
    """What part of the target a finding is about (the table's first column)."""

    SERVICE_PROVIDER_CONFIG = "ServiceProviderConfig"
    RESOURCE_TYPES = "ResourceTypes"
    SCHEMAS = "Schemas"
    READ = "reading"
    FILTER = "filters"
    USER_CREATE = "user create"
    USER_PATCH = "user PATCH"
    USER_PUT = "user PUT"
    ETAG = "ETag"
    GROUP = "groups"
    BULK = "Bulk"
    CLEANUP = "cleanup"
    PROFILE = "profile"


class Verdict(StrEnum):
    """How a finding turned out."""

    OK = "ok"  # works (as announced, or as the connector needs it)
    NOTE = "note"  # works, but differently from the standard or the announcement: read it
    INFO = "info"  # an announcement, not tried
    REFUSED = "refused"  # the target answered with an error status
    NOT_KEPT = "not kept"  # accepted, but not there when read back
    PARTLY_KEPT = "partly kept"  # accepted, read back only in part
    UNTRUSTED = "untrusted"  # answered, but with wrong results
    UNVERIFIED = "unverified"  # answered, but there was nothing to verify the answer against
    SKIPPED = "skipped"  # not tried (read-only check, not announced, or nothing to try it on)
    FAILED = "failed"  # the probe itself failed: no answer, or one that makes no sense


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing looked at: what was announced, what was observed, and the verdict."""

    area: Area
    item: str
    announced: str
    observed: str
    verdict: Verdict
    # What the finding is about, for `profile_from`: an attribute path (user create, PATCH),
    # a filter's attribute, a member-removal form (`MemberRemoval` values) or "post"/"add".
    subject: str = ""

    def to_json(self) -> dict[str, str]:
        """The finding as in `--format json`."""
        return {
            "area": self.area.value,
            "item": self.item,
            "announced": self.announced,
            "observed": self.observed,
            "verdict": self.verdict.value,
            "subject": self.subject,
        }


@dataclass(frozen=True, slots=True)
class TargetCheck:
    """Everything one `check-target` run found about the target at `base_url`."""

    base_url: str
    write_test: bool
    findings: tuple[Finding, ...]
    # The extensions the User resource type declares (casefolded URNs; the ACM/IDM one only
    # when /Schemas lists it too, as discovery counts it); None when /ResourceTypes failed.
    user_extensions: frozenset[str] | None = None

    def of(self, area: Area) -> list[Finding]:
        """The findings of one area, in order."""
        return [finding for finding in self.findings if finding.area is area]

    def answered(self) -> bool:
        """Whether some probe got an answer it could judge: a finding other than failed,
        refused or skipped. The /Schemas extension rows do not count: they are judged from
        /ResourceTypes and /Schemas even when neither answered."""
        nothing = (Verdict.FAILED, Verdict.REFUSED, Verdict.SKIPPED)
        return any(
            finding.verdict not in nothing
            and not (finding.area is Area.SCHEMAS and finding.subject)
            for finding in self.findings
        )

    def counts(self) -> dict[str, int]:
        """How many findings have each verdict (verdicts that occur only)."""
        counted: dict[str, int] = {}
        for verdict in Verdict:
            number = sum(1 for finding in self.findings if finding.verdict is verdict)
            if number:
                counted[verdict.value] = number
        return counted

    def to_json(self) -> dict[str, Any]:
        """The check as in `--format json` (without the command's envelope)."""
        return {
            "base_url": self.base_url,
            "write_test": self.write_test,
            "findings": [finding.to_json() for finding in self.findings],
            "counts": self.counts(),
            "user_extensions": (
                None if self.user_extensions is None else sorted(self.user_extensions)
            ),
        }


# Removal forms in the order a sync tries them (`MemberRemoval` is most efficient first).
LADDER: tuple[MemberRemoval, ...] = tuple(MemberRemoval)
# Subjects of group findings that are not removal forms.
MEMBERS_ON_POST = "post"
MEMBERS_ADD = "add"
# The filter finding joined by `or`: not an attribute, so never an untrusted filter name.
OR_FILTER = "or"


def profile_from(check: TargetCheck) -> TargetProfile:
    """The TargetProfile a sync should start from, learned from a check.

    Only verified facts count: a read-only check teaches untrusted filters (and the User
    extensions), a `--write-test` also the member-removal form, the refused and the unkept
    attributes and whether group writes drop members. A rung nothing verified stays the default.
    """
    groups = {f.subject: f.verdict for f in check.of(Area.GROUP)}
    working = [form for form in LADDER if groups.get(form.value) is Verdict.OK]
    patch = check.of(Area.USER_PATCH)
    not_kept = [
        f.subject
        for f in (*check.of(Area.USER_CREATE), *patch)
        if f.subject and f.verdict is Verdict.NOT_KEPT
    ]
    drops = groups.get(MEMBERS_ON_POST) is Verdict.NOT_KEPT or (
        groups.get(MemberRemoval.REPLACE.value) is Verdict.NOT_KEPT
    )
    untrusted = [
        f.subject.casefold()
        for f in check.of(Area.FILTER)
        if f.verdict is Verdict.UNTRUSTED and f.subject and f.subject != OR_FILTER
    ]
    return TargetProfile(
        member_removal=working[0] if working else TargetProfile().member_removal,
        put_paths=frozenset(f.subject for f in patch if f.verdict is Verdict.REFUSED),
        not_kept=frozenset(not_kept),
        drops_members_on_write=drops,
        untrusted_filters=frozenset(untrusted),
        user_extensions=check.user_extensions,
    )
