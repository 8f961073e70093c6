"""What the connector learned a target really does, kept per target in the state store.

Discovery says what a target announces; runs learn what it does: which form of a member
removal it takes, whether it takes a user PATCH of a given attribute or only a PUT, which
attributes it silently drops, whether its filters can be trusted. A run starts from what the
last run learned (so it does not fail its way down the same ladder again), records what it
learns, and reports a fact once, when it is new, not every run. `plan` reads the profile too,
so that its preview matches what `sync` will send (no attribute the target never keeps).

The profile is a cache, never a source of truth: a lost or garbled profile is an empty one,
and the connector then learns again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, ValidationError

from connector.target.fit import TargetFit
from connector.target.schema import DeclaredSchema, declared_schema


class MemberRemoval(StrEnum):
    """The forms of removing group members, most efficient first (the ladder's rungs)."""

    FILTER = "filter"  # one `remove` with path `members[value eq "a" or value eq "b"]`
    VALUE_FILTER = "value_filter"  # one `remove` per member, path `members[value eq "a"]`
    VALUE_LIST = "value_list"  # `remove` with path `members` and a value list
    REPLACE = "replace"  # PUT of the group with its whole member list


class TargetProfile(BaseModel):
    """The facts learned about one target (see the module's docstring)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    # The rung of the member-removal ladder that last worked (start there).
    member_removal: MemberRemoval = MemberRemoval.FILTER
    # Attribute paths (as `Change.path`) whose PATCH the target refused, written by PUT instead.
    put_paths: frozenset[str] = frozenset()
    # Attribute paths the target accepts but does not keep (read back without them).
    not_kept: frozenset[str] = frozenset()
    # Group members sent in a POST or PUT are dropped: members are added by PATCH only.
    drops_members_on_write: bool = False
    # Filters whose results were found wrong (an attribute the target ignores in a filter):
    # the attribute names, casefolded; such lookups go by listing instead.
    untrusted_filters: frozenset[str] = frozenset()
    # What discovery established, for `plan` (which contacts nobody): the User extensions the
    # target serves (casefolded URNs), None while no run has discovered the target.
    user_extensions: frozenset[str] | None = None
    # The target's /Schemas answer as JSON text (None: none published, or not discovered yet).
    schemas: str | None = None
    # What discovery had to assume (an announcement missing, refused or malformed).
    notes: frozenset[str] = frozenset()

    def discovered(
        self, user_extensions: frozenset[str], schemas: object | None, notes: Iterable[str]
    ) -> TargetProfile:
        """This profile with what a discovery of the target established."""
        return self.model_copy(
            update={
                "user_extensions": user_extensions,
                "schemas": None if schemas is None else json.dumps(schemas, sort_keys=True),
                "notes": frozenset(notes),
            }
        )

    def fit(self) -> TargetFit:
        """What desired users are shaped by for this target (see `connector.target.fit`)."""
        declared = DeclaredSchema.unknown()
        if self.schemas is not None:
            with contextlib.suppress(ValueError):
                declared = declared_schema(json.loads(self.schemas))
        return TargetFit(self.user_extensions, declared, self.not_kept)

    def merged(self, checked: TargetProfile) -> TargetProfile:
        """This profile with what a check of the target verified (`check-target`): its
        member-removal form, and its other facts added to what runs learned."""
        return self.model_copy(
            update={
                "member_removal": checked.member_removal,
                "put_paths": self.put_paths | checked.put_paths,
                "not_kept": self.not_kept | checked.not_kept,
                "drops_members_on_write": self.drops_members_on_write
                or checked.drops_members_on_write,
                "untrusted_filters": self.untrusted_filters | checked.untrusted_filters,
                "user_extensions": checked.user_extensions
                if checked.user_extensions is not None
                else self.user_extensions,
            }
        )

    def to_json(self) -> str:
        """The profile as stored."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | None) -> TargetProfile:
        """A stored profile; an empty one when there is none or it cannot be read."""
        if not text:
            return cls()
        try:
            return cls.model_validate_json(text)
        except ValidationError:
            return cls()

    def news(self, before: TargetProfile) -> list[str]:
        """What this profile knows that `before` did not, one sentence per fact (to report once)."""
        said: list[str] = []
        if self.member_removal != before.member_removal:
            said.append(f"member removals go as '{self.member_removal.value}'")
        for path in sorted(self.put_paths - before.put_paths):
            said.append(f"PATCH of {path} is refused: written by PUT")
        for path in sorted(self.not_kept - before.not_kept):
            said.append(
                f"{path} is not kept by the target as sent: "
                "written when HR changes it, never compared"
            )
        if self.drops_members_on_write and not before.drops_members_on_write:
            said.append("members sent with a group create or replace are dropped: added by PATCH")
        for name in sorted(self.untrusted_filters - before.untrusted_filters):
            said.append(f"filters on {name} give wrong results: found by listing instead")
        said.extend(sorted(self.notes - before.notes))
        return said
