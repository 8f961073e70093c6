"""Apply a plan to the target: SCIM calls with bounded concurrency, every write journalled
before and after, the state store updated as each operation succeeds.

One failing person does not stop the run: the failure is recorded and reported, and the next
run tries again. Their remaining operations are skipped only when their user is not in place (a
failed create, a user gone from the target); a failed attribute change holds up neither their
memberships nor their activation or deactivation (`context.blocks_person`, `PartlyDone`).

A user's attribute changes go by PATCH, except the paths the target refuses by PATCH (learned,
`TargetProfile.put_paths`), which go by PUT: the user read, the changes merged in, put back
(`user_writes`).

Where the target serves SCIM Bulk (RFC 7644 §3.7), user creates and PATCHes (update, activate,
deactivate) go in Bulk requests, within its maxOperations and maxPayloadSize, several in flight
up to `concurrency`. Each operation's status in the BulkResponse decides its outcome; one that
failed, or whose outcome is unknown (the request failed as a whole, the connection dropped, the
response does not list it), is done again alone, by the single-operation path: a create looks
the person up in the target first (and adopts what a lost Bulk request did create, or what a
409 names), a PATCH answered 404 matches the person again. Nothing is lost or duplicated.
A create goes in a Bulk request only when no lookup is needed for that person: the target is
empty, or its users were read and none matches (see `_prefetch`).

Modules, in the order a run uses them: `context` (what a run holds, journalling and failure
handling), `matching` (finding new people in the target), `users` (user operations one by one;
`user_writes`: which changes go by PATCH and which by PUT, and a PUT's body, pure), `bulk`
(user operations in SCIM Bulk requests), `groups` (rights as group memberships: the group
found, adopted or created), `members` (one batch of member changes, written and checked),
`ladder` (the forms of a member removal, in the order they are tried), `applier` (the
order of it all).
"""

from connector.apply.applier import Applier, known_user_ids
from connector.apply.context import ApplyResult
from connector.apply.matching import TargetIndex

__all__ = ["Applier", "ApplyResult", "TargetIndex", "known_user_ids"]
