"""How a user's attribute changes are written (pure): which by PATCH and which by PUT, the body
of a PUT, which failures say the target does not take a PATCH, and what is recorded of changes
written in part.

A target may refuse the PATCH of some attributes (501, 405, or 400 invalidPath, noTarget or
mutability) and take a PUT of the whole user. The paths it refused are kept in its profile
(`TargetProfile.put_paths`); each change is then split: PATCH for the paths it takes, PUT for
the others. A PUT replaces the whole user, so its body is the user as the target holds it,
read just before, with the owned changes applied: every attribute the connector does not own
is sent back as it was, and `externalId` is never left out (a target resets what a PUT omits).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from connector.keys import DIGEST_SIZE
from connector.known import Digests, KnownUser
from connector.plan import Change
from connector.target.errors import Rejected, TargetRequestError, TargetUnavailable

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ACTIVE = "active"

# What a PATCH refusal looks like: the operation is not implemented or not allowed (501, 405),
# or the target says the path cannot be patched (400 with one of these scimTypes, RFC 7644
# §3.12). Not a 404 (the user is gone), 409, 412 (a clash, a version), 429 or 5xx (try later).
REFUSED_STATUSES = frozenset({405, 501})
REFUSED_SCIM_TYPES = frozenset({"invalidpath", "notarget", "mutability"})

# readOnly attributes of a User (RFC 7643 §3.1, §4.1.2) left out of a PUT: the target keeps its own.
READ_ONLY = frozenset({"meta", "groups"})

# The digest recorded for a path whose change was not written: no value has it (the odds are
# those of a digest collision, 2**-64), so the next run plans the change again.
UNWRITTEN = bytes(DIGEST_SIZE)


def split(
    changes: Iterable[Change], put_paths: frozenset[str]
) -> tuple[tuple[Change, ...], tuple[Change, ...]]:
    """The changes to write by PATCH, and those to write by PUT (their paths in `put_paths`)."""
    changes = tuple(changes)
    by_patch = tuple(c for c in changes if c.path not in put_paths)
    by_put = tuple(c for c in changes if c.path in put_paths)
    return by_patch, by_put


def refuses_patch(exc: TargetRequestError) -> bool:
    """Whether a failed PATCH says the target does not take that PATCH (so: write it by PUT):
    a refusal, or a 500 that persisted through the retries (a server that fails on that form
    of PATCH: django-scim2 on a `replace` of the complex `name`). A PUT of it does no harm."""
    if isinstance(exc, TargetUnavailable) and exc.status == 500:
        return True
    if not isinstance(exc, Rejected) or exc.status is None:
        return False  # refused before sending, or not a refusal at all
    if exc.status in REFUSED_STATUSES:
        return True
    return exc.status == 400 and (exc.scim_type or "").casefold() in REFUSED_SCIM_TYPES


def merged(current: dict[str, Any], changes: Iterable[Change], external_id: str) -> dict[str, Any]:
    """The body of a PUT: the user as the target holds it (`current`, as read), with the owned
    `changes` applied as a PATCH `replace` (or, for None, `remove`) would apply them; every
    other attribute kept as it is, readOnly `meta` and `groups` left out, and `externalId`
    kept (`external_id` when the target gave none)."""
    body = {key: copy.deepcopy(value) for key, value in current.items() if key not in READ_ONLY}
    body.setdefault("schemas", [CORE_USER])
    for change in changes:
        _apply(body, change.path, change.value)
    if not body.get("externalId"):
        body["externalId"] = external_id
    return body


def _apply(body: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with None remove) an owned attribute path in a User's JSON body."""
    if path.startswith("urn:"):
        urn, _, attribute = path.rpartition(":")
        extension = body.get(urn)
        if not isinstance(extension, dict):
            if value is None:
                return
            extension = body[urn] = {}
        target, key = extension, attribute
        if value is not None and urn not in body["schemas"]:
            body["schemas"] = [*body["schemas"], urn]
    else:
        target, key = body, path
    if value is None:
        target.pop(key, None)
    else:
        target[key] = _replaced(target.get(key), value)


def _replaced(old: Any, new: Any) -> Any:
    """A value replaced as PATCH `replace` does (RFC 7644 §3.5.2.3): a complex value's
    sub-attributes that `new` does not name are left as they were; anything else is `new`."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {**old, **copy.deepcopy(new)}
    return copy.deepcopy(new)


def partly_written(after: KnownUser, unwritten: Iterable[str]) -> KnownUser:
    """What the state store records of a user whose changes were written in part: `after` (as if
    all were written) with the digest of each unwritten path replaced by UNWRITTEN, so that the
    next run plans those changes again, and what the values were mapped from unknown.

    `active` must have been written: the user's active state is recorded as it is now.
    """
    missing = set(unwritten)
    if ACTIVE in missing:
        raise ValueError("an unwritten `active` is not recorded as written in part")
    pairs = [(path, UNWRITTEN if path in missing else d) for path, d in after.digests.items()]
    pairs += [(path, UNWRITTEN) for path in sorted(missing - set(after.digests))]
    return replace(after, digests=Digests.of(pairs), mapped_from=None)


def paths(changes: Sequence[Change]) -> frozenset[str]:
    """The attribute paths of some changes."""
    return frozenset(change.path for change in changes)
