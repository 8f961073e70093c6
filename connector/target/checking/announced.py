"""What the target's announcements told the check, as the later probes use it: the features
/ServiceProviderConfig announces (`Announced`) and where /ResourceTypes puts Users and Groups
(`Endpoints`). Pure; read from the answers in `connector.target.checking.announcements`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where Users and Groups are, relative to the base URL, and what the User type declares."""

    users: str = "/Users"
    groups: str = "/Groups"
    user_extensions: frozenset[str] | None = None  # casefolded URNs; None if not known
