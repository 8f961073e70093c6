"""Group member changes as they go on the wire: the PATCH operations of each form, and the members
an answer shows.

Pure: nothing here sends a request. Adds always go in a PATCH of their own; a removal goes in
the form of one rung of the ladder (`connector.target.profile.MemberRemoval`):

- FILTER: one `remove` per MAX_MEMBERS_PER_REMOVE members, path
  `members[value eq "a" or value eq "b"]` (a valuePath filter, RFC 7644 §3.5.2.2 / §3.4.2.2);
- VALUE_FILTER: one `remove` per member, path `members[value eq "a"]`;
- VALUE_LIST: one `remove` per MAX_MEMBERS_PER_REMOVE members, path `members` and the members
  as its value (`"value": [{"value": "a"}]`, which RFC 7644 §3.5.2.2 allows for multi-valued
  attributes);
- REPLACE is no PATCH: the group is PUT back with its whole member list.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from connector.target.profile import MemberRemoval

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
# Members named in one `remove` operation (a longer batch gets several).
MAX_MEMBERS_PER_REMOVE = 100

Operation = dict[str, Any]
"""One PATCH operation, as JSON."""


def add_operations(user_ids: Sequence[str]) -> list[Operation]:
    """The PATCH operations that add these users (one `add` with path `members`)."""
    if not user_ids:
        return []
    return [{"op": "add", "path": "members", "value": [{"value": i} for i in user_ids]}]


def removal_operations(form: MemberRemoval, user_ids: Sequence[str]) -> list[Operation]:
    """The PATCH operations that remove these users in one form of the ladder (not REPLACE)."""
    if form is MemberRemoval.REPLACE:
        raise ValueError("a replace is a PUT of the group, not a PATCH operation")
    step = 1 if form is MemberRemoval.VALUE_FILTER else MAX_MEMBERS_PER_REMOVE
    operations: list[Operation] = []
    for start in range(0, len(user_ids), step):
        chosen = user_ids[start : start + step]
        if form is MemberRemoval.VALUE_LIST:
            value = [{"value": user_id} for user_id in chosen]
            operations.append({"op": "remove", "path": "members", "value": value})
        else:
            condition = " or ".join(f"value eq {_quoted(user_id)}" for user_id in chosen)
            operations.append({"op": "remove", "path": f"members[{condition}]"})
    return operations


def patch_body(operations: Sequence[Operation]) -> dict[str, Any]:
    """A PatchOp request (RFC 7644 §3.5.2) carrying these operations."""
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def member_ids_in(answer: object) -> frozenset[str] | None:
    """The user ids of the members a group as answered lists; None when the answer lists no
    `members` attribute (a 204, or a group without it): then only a read tells."""
    if not isinstance(answer, dict):
        return None
    members = answer.get("members")
    if not isinstance(members, list):
        return None
    return frozenset(
        member["value"]
        for member in members
        if isinstance(member, dict) and isinstance(member.get("value"), str)
    )


def _quoted(value: str) -> str:
    """A SCIM filter string literal (a JSON string, RFC 7644 §3.4.2.2)."""
    return json.dumps(value, ensure_ascii=False)
