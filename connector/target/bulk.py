"""SCIM Bulk (RFC 7644 §3.7) as JSON: operations, batches within the target's limits, outcomes.

Pure: nothing here sends a request. Operations are encoded once, compactly, exactly as they go
on the wire, so that a batch's size is known before it is sent: a batch never holds more than
`maxOperations` operations nor more than `maxPayloadSize` bytes. The request carries no
`failOnErrors`: the target processes every operation, and each one's `status` in the
BulkResponse decides its outcome. An operation the response does not account for has an
unknown outcome (None): the caller must find out for itself whether it happened.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

K = TypeVar("K")

_PREFIX = b'{"schemas":["' + BULK_REQUEST.encode() + b'"],"Operations":['
_SUFFIX = b"]}"


def dumps(value: Any) -> bytes:
    """JSON as httpx2 sends it: compact, UTF-8, no NaN."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True, slots=True)
class BulkOperation(Generic[K]):
    """One operation of a bulk request, encoded; `key` is the caller's (e.g. its plan operation).

    POSTs carry a `bulkId` (required by RFC 7644 for POST); other methods are recognised in the
    response by their location (`path`'s resource id).
    """

    key: K
    method: str  # POST | PATCH | PUT | DELETE
    path: str  # /Users or /Users/{id}
    encoded: bytes
    bulk_id: str | None = None

    @property
    def size(self) -> int:
        """Bytes this operation adds to a request (its encoding; separators counted apart)."""
        return len(self.encoded)

    @property
    def resource_id(self) -> str | None:
        """The id in `path` (`/Users/{id}`), for operations on an existing resource."""
        _, _, rest = self.path.strip("/").partition("/")
        return rest or None


def operation(
    key: K, method: str, path: str, data: dict[str, Any] | None, bulk_id: str | None = None
) -> BulkOperation[K]:
    """Encode one bulk operation."""
    body: dict[str, Any] = {"method": method, "path": path}
    if bulk_id is not None:
        body["bulkId"] = bulk_id
    if data is not None:
        body["data"] = data
    return BulkOperation(key, method, path, dumps(body), bulk_id)


def patch_data(operations: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A PatchOp message: `replace` each (path, value); a None value is a `remove`."""
    return {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "remove", "path": path}
            if value is None
            else {"op": "replace", "path": path, "value": value}
            for path, value in operations
        ],
    }


def request_size(operations: Sequence[BulkOperation[Any]]) -> int:
    """The size in bytes of the request body `request_body(operations)`."""
    commas = max(len(operations) - 1, 0)
    return len(_PREFIX) + sum(op.size for op in operations) + commas + len(_SUFFIX)


def request_body(operations: Sequence[BulkOperation[Any]]) -> bytes:
    """The BulkRequest body (no failOnErrors: every operation is processed)."""
    return _PREFIX + b",".join(op.encoded for op in operations) + _SUFFIX


def batches(
    operations: Iterable[BulkOperation[K]], max_operations: int, max_payload: int
) -> tuple[list[list[BulkOperation[K]]], list[BulkOperation[K]]]:
    """Split operations, in order, into requests within both limits; and those too large to
    go in any bulk request on their own."""
    out: list[list[BulkOperation[K]]] = []
    too_large: list[BulkOperation[K]] = []
    current: list[BulkOperation[K]] = []
    size = len(_PREFIX) + len(_SUFFIX)
    empty = size
    for op in operations:
        if empty + op.size > max_payload:
            too_large.append(op)
            continue
        added = op.size + (1 if current else 0)
        if current and (len(current) >= max_operations or size + added > max_payload):
            out.append(current)
            current, size = [], empty
            added = op.size
        current.append(op)
        size += added
    if current:
        out.append(current)
    return out, too_large


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the target says happened to one operation."""

    status: int
    resource_id: str | None = None  # of the created (or changed) resource, when given
    detail: str = ""
    scim_type: str | None = None

    @property
    def ok(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300


def outcomes(operations: Sequence[BulkOperation[K]], response: object) -> list[Outcome | None]:
    """Each operation's outcome from a BulkResponse body, in request order; None where the
    response does not account for the operation (or is not a BulkResponse at all)."""
    found: list[Outcome | None] = [None] * len(operations)
    listed = response.get("Operations") if isinstance(response, dict) else None
    if not isinstance(listed, list):
        return found
    by_bulk_id: dict[str, int] = {}
    by_resource: dict[tuple[str, str], int] = {}
    for i, op in enumerate(operations):
        if op.bulk_id is not None:
            by_bulk_id[op.bulk_id] = i
        elif op.resource_id:
            by_resource[(op.method, op.resource_id)] = i
    unmatched: list[tuple[int, dict[str, Any]]] = []
    for position, item in enumerate(listed):
        if not isinstance(item, dict):
            continue
        outcome = _outcome(item)
        if outcome is None:
            continue
        index = _index_of(item, by_bulk_id, by_resource)
        if index is None:
            unmatched.append((position, item))
        elif found[index] is None:
            found[index] = outcome
    # A response listing every operation, in order, but without bulkId or location: by position.
    if len(listed) == len(operations):
        for position, item in unmatched:
            method = str(item.get("method") or operations[position].method).upper()
            if found[position] is None and method == operations[position].method:
                found[position] = _outcome(item)
    return found


def _index_of(
    item: dict[str, Any],
    by_bulk_id: dict[str, int],
    by_resource: dict[tuple[str, str], int],
) -> int | None:
    bulk_id = item.get("bulkId")
    if isinstance(bulk_id, str) and bulk_id in by_bulk_id:
        return by_bulk_id[bulk_id]
    location = item.get("location")
    method = item.get("method")
    if isinstance(location, str) and isinstance(method, str):
        return by_resource.get((method.upper(), _last_segment(location) or ""))
    return None


def _outcome(item: dict[str, Any]) -> Outcome | None:
    status = _status(item.get("status"))
    if status is None:
        return None
    response = item.get("response")
    detail, scim_type, resource_id = "", None, None
    if isinstance(response, dict):
        detail = str(response.get("detail") or "")
        scim_type = response.get("scimType") if isinstance(response.get("scimType"), str) else None
        if isinstance(response.get("id"), str):
            resource_id = response["id"]
    location = item.get("location")
    if resource_id is None and isinstance(location, str) and 200 <= status < 300:
        resource_id = _last_segment(location)
    return Outcome(status, resource_id, detail, scim_type)


def _status(value: object) -> int | None:
    """An operation's status: "201" (RFC 7644), 201, or {"code": "201"} (older drafts)."""
    if isinstance(value, dict):
        value = value.get("code")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _last_segment(location: str) -> str | None:
    segment = location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return segment or None
