"""Apply a plan to the target: SCIM calls with bounded concurrency, every write journalled
before and after, the state store updated as each operation succeeds.

One failing person does not stop the run: their remaining operations are skipped, the
failure is recorded and reported, and the next run tries again.

Where the target serves SCIM Bulk (RFC 7644 §3.7), user creates and PATCHes (update, activate,
deactivate) go in Bulk requests, within its maxOperations and maxPayloadSize, several in flight
up to `concurrency`. Each operation's status in the BulkResponse decides its outcome; one that
failed, or whose outcome is unknown (the request failed as a whole, the connection dropped, the
response does not list it), is done again alone, by the single-operation path: a create looks
the person up in the target first (and adopts what a lost Bulk request did create, or what a
409 names), a PATCH answered 404 matches the person again. Nothing is lost or duplicated.
A create goes in a Bulk request only when no lookup is needed for that person: the target is
empty, or its users were read and none matches (see `_prefetch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import structlog
from scim2_models import Group, GroupMember, PatchOperation

from connector.errors import TargetError
from connector.known import KnownState, KnownUser
from connector.mapping import ACMIDM
from connector.plan import Change, MembershipOp, OpKind, Plan, UserOp
from connector.report import Failure
from connector.scim_models import national_id_of
from connector.state import StateStore
from connector.target import bulk
from connector.target.bulk import BulkOperation
from connector.target.client import ScimUser, TargetClient
from connector.target.errors import (
    Conflict,
    InvalidResponse,
    NotFound,
    PreconditionFailed,
    Rejected,
    TargetRequestError,
    TargetUnavailable,
)
from connector.target.retry import RetryPolicy

log = structlog.get_logger(__name__)

# Tries at PUTting a group's member list back (targets without PATCH) when someone else's change
# keeps getting in between (412 Precondition Failed).
REPLACE_ATTEMPTS = 3

USER_PHASES = (
    (OpKind.CREATE, OpKind.ACTIVATE, OpKind.UPDATE),
    (OpKind.DEACTIVATE,),
    (OpKind.DELETE,),
)


@dataclass(slots=True)
class ApplyResult:
    """What applying a plan achieved."""

    done: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    adopted: int = 0
    restored: int = 0
    requests: int = 0

    def counts(self) -> dict[str, int]:
        """Operations done per kind (every kind present)."""
        return {kind.value: self.done.get(kind.value, 0) for kind in OpKind}


# How new people are matched, decided by the target's size (`GET /Users?count=0`) in `_prefetch`:
# - an empty target: not at all (nothing can match), every create goes straight out;
# - at most PREFETCH_FACTOR users per create (or a target that cannot filter): every user is
#   read once, in pages of PREFETCH_PAGE_SIZE, and matched here; that reads at most twice as
#   many users as per-person lookups would, in 1/500th of the requests;
# - more (a few joiners on a big target): each new person is looked up (see `_match`).
# A target that does not give its size is read whole from PREFETCH_FROM creates on.
PREFETCH_FACTOR = 2
PREFETCH_FROM = 50
PREFETCH_PAGE_SIZE = 500

# Bulk: below BULK_FROM candidate operations, single requests. Limits for a target that
# announces Bulk without them, and a cap on operations per request whatever it announces.
BULK_FROM = 2
BULK_MAX_OPERATIONS = 100
BULK_MAX_PAYLOAD = 1_048_576
BULK_MAX_OPERATIONS_CAP = 1000

Record = Callable[[], None]
"""What an operation that succeeded writes to the state store (in its `done` transaction)."""


@dataclass(slots=True)
class TargetIndex:
    """The target's users by externalId, national number and userName (case-insensitive)."""

    by_external_id: dict[str, list[str]] = field(default_factory=dict)
    by_national_id: dict[str, list[str]] = field(default_factory=dict)
    by_user_name: dict[str, list[str]] = field(default_factory=dict)
    count: int = 0

    def add(self, user: ScimUser) -> None:
        """Index one user."""
        if user.id is None:
            return
        self.count += 1
        if user.external_id:
            self.by_external_id.setdefault(user.external_id, []).append(user.id)
        if digits := national_id_of(user):
            self.by_national_id.setdefault(digits, []).append(user.id)
        if user.user_name:
            self.by_user_name.setdefault(user.user_name.casefold(), []).append(user.id)

    def pages(self, page_size: int) -> int:
        """How many list requests reading the index took."""
        return max(1, -(-self.count // page_size))

    def match(self, person: str, digits: str | None, user_name: str) -> str | None:
        """Like a live lookup: externalId, then national number, then userName."""
        for found in (
            self.by_external_id.get(person, []),
            self.by_national_id.get(digits, []) if digits else [],
            self.by_user_name.get(user_name.casefold(), []),
        ):
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise Conflict("match user", "several users in the target match this person")
        return None


@dataclass(slots=True)
class Applier:
    """Applies one plan; holds the run's collaborators and what it learned along the way."""

    client: TargetClient
    store: StateStore
    run_id: str
    retry: RetryPolicy
    concurrency: int = 8
    batch_size: int = 100
    result: ApplyResult = field(default_factory=ApplyResult)
    scim_ids: dict[str, str] = field(default_factory=dict)  # person key -> SCIM id
    failed: set[str] = field(default_factory=set)  # person keys that failed this run
    failure_reasons: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> label, why
    # The target's users, when known without asking per person: every user read once, or none
    # at all (an empty target). None: look each new person up.
    index: TargetIndex | None = None
    use_bulk: bool = True  # switched off for the rest of the run if the target refuses /Bulk
    # One POST .search per new person (`target.lookup_in_one_search`; off if the target refuses).
    combined_lookup: bool = False
    _bulk_ids: Iterator[int] = field(default_factory=itertools.count)

    async def apply(self, plan: Plan, known: KnownState) -> ApplyResult:
        """Apply every operation of `plan`, in its order."""
        self.scim_ids = {key: user.scim_id for key, user in known.users.items()}
        user_ops = [op for op in plan.operations if isinstance(op, UserOp)]
        member_ops = [op for op in plan.operations if isinstance(op, MembershipOp)]
        first, deactivations, deletions = (
            [op for op in user_ops if op.kind in kinds] for kinds in USER_PHASES
        )
        await self._prefetch(sum(op.kind is OpKind.CREATE for op in first))
        await self._users(first)
        await self._memberships(member_ops, known)
        await self._users(deactivations)
        await self._users(deletions)
        return self.result

    # --- running -----------------------------------------------------------------------------

    async def _users(self, ops: list[UserOp]) -> None:
        """User operations, `concurrency` requests at a time: in Bulk requests where the target
        takes them, else one by one."""
        limit = asyncio.Semaphore(self.concurrency)
        batches, alone = self._bulk_batches(ops)
        async with asyncio.TaskGroup() as group:
            for batch in batches:
                group.create_task(self._bulk(batch, group, limit))
            for op in alone:
                group.create_task(self._guarded(op, limit))

    async def _guarded(
        self, op: UserOp, limit: asyncio.Semaphore, *, after_bulk: bool = False
    ) -> None:
        async with limit:
            await self._guard(
                op.person,
                op.label,
                op.kind.value,
                lambda: self._user_op(op, live=after_bulk),
                journalled=after_bulk,
            )

    async def _guard(
        self,
        person: str,
        label: str,
        kind: str,
        action: Callable[[], Awaitable[Record | None]],
        *,
        journalled: bool = False,
    ) -> None:
        """Journal the intent (unless already done), act, then record what the action returns
        and journal it done, in one transaction; a TargetError fails this person only."""
        if person in self.failed:
            self._fail(person, label, kind, "skipped: an earlier operation for this person failed")
            return
        if not journalled:
            self.store.journal(self.run_id, kind, "intent", person, label)
        try:
            record = await action()
        except TargetError as exc:
            self.failed.add(person)
            self._fail(person, label, kind, str(exc))
            self.store.journal(self.run_id, kind, "failed", person, label, str(exc))
            return
        with self.store.transaction():
            if record is not None:
                record()
            self.store.journal(self.run_id, kind, "done", person, label)
        self.result.done[kind] += 1

    def _fail(self, person: str, label: str, kind: str, reason: str) -> None:
        self.failure_reasons.setdefault(person, (label, reason))
        self.result.failures.append(Failure(person=label, operation=kind, reason=reason))
        log.warning("apply.failed", run_id=self.run_id, person=label, operation=kind, reason=reason)

    async def _call(self, what: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        self.result.requests += 1
        return await self.retry.call(what, fn)

    # --- bulk ----------------------------------------------------------------------------------

    def _bulk_batches(
        self, ops: list[UserOp]
    ) -> tuple[list[list[BulkOperation[UserOp]]], list[UserOp]]:
        """The operations that go in Bulk requests, in batches within the target's limits; and
        those that go alone (no Bulk, a lookup needed first, a delete, too large...)."""
        capabilities = self.client.capabilities
        max_operations = capabilities.bulk_max_operations or BULK_MAX_OPERATIONS
        max_payload = capabilities.bulk_max_payload or BULK_MAX_PAYLOAD
        if not (self.use_bulk and capabilities.bulk) or max_operations < BULK_FROM:
            return [], ops
        candidates: list[BulkOperation[UserOp]] = []
        alone: list[UserOp] = []
        for op in ops:
            encoded = None if op.person in self.failed else self._bulk_operation(op)
            if encoded is None:
                alone.append(op)
            else:
                candidates.append(encoded)
        if len(candidates) < BULK_FROM:
            return [], ops
        batches, too_large = bulk.batches(
            candidates, min(max_operations, BULK_MAX_OPERATIONS_CAP), max_payload
        )
        return batches, alone + [op.key for op in too_large]

    def _bulk_operation(self, op: UserOp) -> BulkOperation[UserOp] | None:
        """The bulk operation for one user operation; None if it must go alone."""
        endpoint = self.client.user_endpoint
        if op.kind is OpKind.CREATE:
            assert op.resource is not None
            if self.index is None:
                return None  # the person must be looked up first
            try:
                if self.index.match(op.person, op.national_digits, op.resource["userName"]):
                    return None  # adopted, alone
            except Conflict:
                return None  # reported, alone
            data = self.client.user_payload(op.resource)
            return bulk.operation(op, "POST", endpoint, data, f"u{next(self._bulk_ids)}")
        if op.kind is OpKind.DELETE or not self.client.capabilities.patch:
            return None
        if not self.client.fits_user_paths(change.path for change in op.changes):
            return None  # let the single path refuse it, with its reasons
        scim_id = self.scim_ids.get(op.person, op.scim_id)
        data = bulk.patch_data((change.path, change.value) for change in op.changes)
        return bulk.operation(op, "PATCH", f"{endpoint}/{scim_id}", data)

    async def _bulk(
        self,
        batch: list[BulkOperation[UserOp]],
        group: asyncio.TaskGroup,
        limit: asyncio.Semaphore,
    ) -> None:
        """One Bulk request: journal every intent, send, record what succeeded (one transaction
        each); every operation that failed, or whose outcome is unknown, goes again alone."""
        async with limit:
            with self.store.transaction():
                for item in batch:
                    op = item.key
                    self.store.journal(self.run_id, op.kind.value, "intent", op.person, op.label)
            found: list[bulk.Outcome | None]
            try:
                response = await self._call("bulk", partial(self._send_bulk, batch))
                found = bulk.outcomes(batch, response)
                unknown = "not in the bulk response"
            except TargetError as exc:
                found = [None] * len(batch)
                unknown = f"bulk request failed: {exc}"
                self._bulk_refused(exc)
            again: list[UserOp] = []
            with self.store.transaction():
                for item, outcome in zip(batch, found, strict=True):
                    if not self._bulk_done(item, outcome):
                        again.append(item.key)
                        why = unknown if outcome is None else _outcome_reason(item, outcome)
                        op = item.key
                        detail = f"bulk: {why}; sent alone"
                        self.store.journal(
                            self.run_id, op.kind.value, "note", op.person, op.label, detail
                        )
        for op in again:
            group.create_task(self._guarded(op, limit, after_bulk=True))

    async def _send_bulk(self, batch: list[BulkOperation[UserOp]]) -> object:
        """POST the batch; only a 429 or 503 answer (the target declined it) is worth sending
        the same request again. Any other failure leaves each operation's outcome unknown."""
        try:
            return await self.client.send_bulk(bulk.request_body(batch))
        except TargetUnavailable as exc:
            if exc.status in (429, 503):
                raise
            raise _OutcomeUnknown(str(exc)) from None

    def _bulk_refused(self, exc: TargetError) -> None:
        """A target announcing Bulk but not serving it: no more Bulk in this run."""
        status = exc.status if isinstance(exc, TargetRequestError) else None
        if status in (404, 405, 501) and self.use_bulk:
            self.use_bulk = False
            log.warning("apply.bulk_refused", run_id=self.run_id, reason=str(exc))

    def _bulk_done(self, item: BulkOperation[UserOp], outcome: bulk.Outcome | None) -> bool:
        """Record one operation a BulkResponse says succeeded (inside the caller's
        transaction); False when it did not, or when it is not known to have."""
        op = item.key
        if outcome is None or not outcome.ok:
            return False
        assert op.after is not None
        if op.kind is OpKind.CREATE:
            if not outcome.resource_id:
                return False  # created, but under which id? the single path finds it
            scim_id = outcome.resource_id
        else:
            scim_id = self.scim_ids.get(op.person, op.scim_id or "")
        self.scim_ids[op.person] = scim_id
        self.store.save_user(replace(op.after, scim_id=scim_id))
        self.store.journal(self.run_id, op.kind.value, "done", op.person, op.label)
        self.result.done[op.kind.value] += 1
        return True

    # --- users -------------------------------------------------------------------------------

    async def _user_op(self, op: UserOp, live: bool = False) -> Record:
        """Do one user operation; what to record once it is done. `live`: never trust the
        index (a Bulk request may have done part of it)."""
        if op.kind is OpKind.CREATE:
            return await self._create(op, live)
        if op.kind is OpKind.DELETE:
            return await self._delete(op)
        return await self._modify(op)

    async def _create(self, op: UserOp, live: bool = False) -> Record:
        assert op.resource is not None and op.after is not None
        resource = op.resource
        user_name: str = resource["userName"]

        attempts = 0

        async def match_then_create() -> tuple[str, bool]:
            nonlocal attempts
            attempts += 1
            # After a failed attempt the create may have happened: look in the target itself.
            index = self.index if attempts == 1 and not live else None
            if index is not None:
                existing = index.match(op.person, op.national_digits, user_name)
            else:
                existing = await self._match(op.person, op.national_digits, user_name)
            if existing is not None:
                return existing, True
            try:
                created = await self.client.create_user_json(resource)
            except Conflict:
                existing = await self._match(op.person, op.national_digits, user_name)
                if existing is None:
                    raise
                return existing, True
            return created, False

        scim_id, adopted = await self._call("create user", match_then_create)
        if adopted:
            changes = tuple(Change(p, v) for p, v in _owned_paths(resource))
            await self._write_changes(scim_id, changes)
        self.scim_ids[op.person] = scim_id
        after = replace(op.after, scim_id=scim_id)

        def record() -> None:
            if adopted:
                self.result.adopted += 1
                self.store.journal(self.run_id, "adopt", "done", op.person, op.label, scim_id)
            self.store.save_user(after)

        return record

    async def _prefetch(self, creates: int) -> None:
        """Decide, by the target's size, how new people are matched (see PREFETCH_FACTOR)."""
        if creates == 0:
            return
        self.result.requests += 1
        try:
            total = await self.client.count_users()
        except Rejected:
            total = None  # no count=0 here: decide as if the size were unknown
        small = total is not None and total <= PREFETCH_FACTOR * creates
        listing = small or (total is None and creates >= PREFETCH_FROM)
        if total == 0:
            self.index = TargetIndex()  # nothing to match: every create goes straight out
            how = "empty target"
        elif listing or not self.client.capabilities.filter:
            self.index = await self._read_all_users()
            how = "listed"
        else:
            how = "looked up one by one"
        log.info("apply.matching", run_id=self.run_id, creates=creates, users=total, how=how)

    async def _read_all_users(self) -> TargetIndex:
        index = TargetIndex()
        async for user in self.client.iter_users(page_size=PREFETCH_PAGE_SIZE):
            index.add(user)
        self.result.requests += index.pages(PREFETCH_PAGE_SIZE)
        return index

    async def _match(self, person: str, digits: str | None, user_name: str) -> str | None:
        """Find the person in the target: externalId, then national number, then userName.

        One equality lookup after the other; with `combined_lookup`
        (`target.lookup_in_one_search`), one `POST .search` with the three in an `or` filter
        where the target searches, its answer classified here with the same precedence.
        """
        if self.combined_lookup and self.client.capabilities.search:
            self.result.requests += 1
            try:
                found = await self.client.find_user_candidates(person, digits, user_name)
            except Rejected as exc:
                if exc.status not in (400, 501):
                    raise
                self.combined_lookup = False
                log.info("apply.combined_lookup_refused", run_id=self.run_id, reason=str(exc))
            else:
                candidates = TargetIndex()
                for user in found:
                    candidates.add(user)
                return candidates.match(person, digits, user_name)
        lookups: list[Callable[[], Awaitable[list[ScimUser]]]] = [
            lambda: self.client.find_users_by_external_id(person),
        ]
        if digits:
            lookups.append(lambda: self.client.find_users_by_national_id(digits))
        lookups.append(lambda: self.client.find_users_by_user_name(user_name))
        for lookup in lookups:
            self.result.requests += 1
            users = await lookup()
            if len(users) == 1 and users[0].id:
                return users[0].id
            if len(users) > 1:
                raise Conflict("match user", "several users in the target match this person")
        return None

    async def _modify(self, op: UserOp) -> Record:
        assert op.scim_id is not None and op.after is not None
        scim_id = self.scim_ids.get(op.person, op.scim_id)
        try:
            await self._write_changes(scim_id, op.changes)
        except NotFound:
            # The user vanished or was recreated under another id: match again, never recreate.
            found = await self._match(op.person, None, op.after.user_name)
            if found is None:
                raise
            scim_id = found
            await self._write_changes(scim_id, op.changes)
        self.scim_ids[op.person] = scim_id
        after = replace(op.after, scim_id=scim_id)
        return partial(self.store.save_user, after)

    async def _write_changes(self, scim_id: str, changes: Iterable[Change]) -> None:
        if self.client.capabilities.patch:
            operations: list[PatchOperation[Any]] = [
                PatchOperation(op="remove", path=c.path)
                if c.value is None
                else PatchOperation(op="replace", path=c.path, value=c.value)
                for c in changes
            ]
            await self._call("patch user", lambda: self.client.patch_user(scim_id, operations))
            return
        current = await self._call("read user", lambda: self.client.get_user(scim_id))
        body = current.model_dump()
        for change in changes:
            _set_path(body, change.path, change.value)
        replacement = type(current).model_validate(body)
        await self._call("replace user", lambda: self.client.replace_user(replacement))

    async def _delete(self, op: UserOp) -> Record:
        assert op.scim_id is not None
        with contextlib.suppress(NotFound):  # already gone: the goal is reached
            await self._call("delete user", lambda: self.client.delete_user(op.scim_id or ""))
        return partial(self.store.forget_user, op.person)

    # --- memberships ---------------------------------------------------------------------------

    async def _memberships(self, ops: list[MembershipOp], known: KnownState) -> None:
        by_right: dict[str, list[MembershipOp]] = defaultdict(list)
        for op in ops:
            by_right[op.right].append(op)
        for right, right_ops in sorted(by_right.items()):
            try:
                group = await self._ensure_group(right, right_ops[0].group, known)
            except TargetError as exc:
                for op in right_ops:
                    self._fail(op.person, op.label, op.kind.value, str(exc))
                continue
            await self._change_members(right, group, right_ops)

    async def _ensure_group(self, right: str, display_name: str, known: KnownState) -> Group:
        """The right's group as the target holds it now, members included.

        The state store's group; else (never recorded, or deleted in the target since) the group
        found by displayName, adopted; else a new one. Its SCIM id is recorded.
        """
        group_id = known.groups.get(right)
        if group_id is not None:
            try:
                return await self._read_group(group_id)
            except NotFound:
                self._forget_members(right, known)
        found = await self._call(
            "find group", lambda: self.client.find_groups_by_display_name(display_name)
        )
        if len(found) > 1:
            log.warning("apply.groups_ambiguous", run_id=self.run_id, right=right, n=len(found))
        if found and found[0].id:
            group = await self._read_group(found[0].id)  # a listing may leave the members out
            how = "adopted"
        else:
            new = Group(display_name=display_name)
            group = await self._call("create group", lambda: self.client.create_group(new))
            how = "created"
        if group.id is None:
            raise InvalidResponse("ensure group", "the target gave the group no id")
        self.store.save_group(right, group.id, display_name)
        self.store.journal(self.run_id, "group", "done", detail=f"{right}: {how} {group.id}")
        return group

    def _forget_members(self, right: str, known: KnownState) -> None:
        """The right's group was deleted in the target, and its members with it: forget them, so
        that the next run adds again whoever still holds the right (`--full`: this run)."""
        log.warning("apply.group_vanished", run_id=self.run_id, right=right)
        self.store.journal(self.run_id, "group", "note", detail=f"{right}: deleted in the target")
        with self.store.transaction():
            for key, user in known.users.items():
                if right in user.memberships | user.foreign_memberships:
                    self.store.remove_membership(key, right)

    async def _read_group(self, group_id: str) -> Group:
        group: Group = await self._call("read group", lambda: self.client.get_group(group_id))
        return group

    async def _change_members(self, right: str, group: Group, ops: list[MembershipOp]) -> None:
        """Add and remove what the target does not have yet, PATCH in batches (else one PUT)."""
        members = _member_ids(group)
        pending: list[tuple[MembershipOp, str]] = []
        for op in ops:
            scim_id = self.scim_ids.get(op.person)
            if op.person in self.failed or scim_id is None:
                self._fail(op.person, op.label, op.kind.value, "skipped: the user is not in place")
                continue
            if op.kind is OpKind.GRANT and scim_id in members:
                self._already_member(right, op)
                continue
            if op.kind is OpKind.WITHDRAW and scim_id not in members:
                # Already out (taken out by hand, or by a run that stopped before recording it).
                self.store.remove_membership(op.person, right)
                detail = f"{right}: not a member any more"
                self.store.journal(self.run_id, "withdraw", "note", op.person, op.label, detail)
                self.result.done[op.kind.value] += 1
                continue
            pending.append((op, scim_id))
        if not pending:
            return
        group_id = group.id or ""
        if not self.client.capabilities.patch:
            await self._member_batch(
                right, pending, lambda add, remove: self._replace_members(group, add, remove)
            )
            return

        async def patch(add: list[str], remove: list[str]) -> None:
            await self._call(
                "patch group members",
                lambda: self.client.patch_group_members(group_id, add, remove),
            )

        for start in range(0, len(pending), self.batch_size):
            await self._member_batch(right, pending[start : start + self.batch_size], patch)

    def _already_member(self, right: str, op: MembershipOp) -> None:
        """A grant whose member is already there: someone else's, unless the connector's own
        earlier attempt got through without being recorded (a run stopped or a request timed
        out in between); someone else's membership is never withdrawn by the connector."""
        last = self.store.last_journal_entry(op.person, ("grant", "withdraw"), right)
        ours = last is not None and last.kind == "grant" and last.phase in ("intent", "failed")
        self.store.add_membership(op.person, right, owned=ours)
        if ours:
            self.store.journal(self.run_id, "grant", "done", op.person, op.label, right)
        else:
            detail = f"{right}: already a member, added by someone else; left theirs"
            self.store.journal(self.run_id, "grant", "note", op.person, op.label, detail)
        self.result.done[op.kind.value] += 1

    async def _member_batch(
        self,
        right: str,
        batch: list[tuple[MembershipOp, str]],
        write: Callable[[list[str], list[str]], Awaitable[None]],
    ) -> None:
        """Journal, write (one request: `write(add, remove)` with user ids), record."""
        add = [scim_id for op, scim_id in batch if op.kind is OpKind.GRANT]
        remove = [scim_id for op, scim_id in batch if op.kind is OpKind.WITHDRAW]
        for op, _ in batch:
            self.store.journal(self.run_id, op.kind.value, "intent", op.person, op.label, right)
        try:
            await write(add, remove)
        except TargetError as exc:
            for op, _ in batch:
                self._fail(op.person, op.label, op.kind.value, str(exc))
                self.store.journal(self.run_id, op.kind.value, "failed", op.person, op.label, right)
            return
        with self.store.transaction():
            for op, _ in batch:
                if op.kind is OpKind.GRANT:
                    self.store.add_membership(op.person, right)
                else:
                    self.store.remove_membership(op.person, right)
                self.store.journal(self.run_id, op.kind.value, "done", op.person, op.label, right)
                self.result.done[op.kind.value] += 1

    async def _replace_members(self, group: Group, add: list[str], remove: list[str]) -> None:
        """For targets without PATCH: PUT the group back with the changes applied to its full
        current member list. With ETags the PUT is conditional on the version read; when
        someone changed the group in between, it is read again and the changes re-applied."""
        current = group
        for attempt in range(1, REPLACE_ATTEMPTS + 1):
            replacement = _with_members(current, add, remove)
            try:
                await self._call(
                    "replace group members", partial(self.client.replace_group, replacement)
                )
                return
            except PreconditionFailed:
                if attempt == REPLACE_ATTEMPTS:
                    raise
                current = await self._read_group(group.id or "")


class _OutcomeUnknown(TargetError):
    """A Bulk request failed in a way that leaves its operations' outcomes unknown."""


def _outcome_reason(item: BulkOperation[UserOp], outcome: bulk.Outcome) -> str:
    """Why one bulk operation did not succeed, as the errors of `connector.target.errors` say
    it (national numbers masked)."""
    if outcome.ok:
        return f"{outcome.status} without the created user's id"
    what = "create user" if item.method == "POST" else "patch user"
    error = TargetRequestError(
        what, outcome.detail or "failed", status=outcome.status, scim_type=outcome.scim_type
    )
    return str(error)


def _member_ids(group: Group) -> set[str]:
    """The SCIM ids of a group's members."""
    return {member.value for member in group.members or [] if member.value}


def _with_members(group: Group, add: list[str], remove: list[str]) -> Group:
    """The group with these user ids added and removed; every other member kept as it was."""
    gone = set(remove)
    kept = [member for member in group.members or [] if member.value not in gone]
    present = {member.value for member in kept}
    kept += [GroupMember(value=scim_id) for scim_id in dict.fromkeys(add) if scim_id not in present]
    return group.model_copy(update={"members": kept})


def _owned_paths(resource: dict[str, Any]) -> list[tuple[str, Any]]:
    """The owned attribute paths and values of a full User resource."""
    out: list[tuple[str, Any]] = []
    for key, value in resource.items():
        if key == "schemas":
            continue
        if key.startswith("urn:"):
            out.extend((f"{key}:{attr}", v) for attr, v in value.items())
        else:
            out.append((key, value))
    return out


def _set_path(body: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with None remove) an owned attribute in a User's JSON body."""
    if path.startswith("urn:"):
        urn, _, attribute = path.rpartition(":")
        extension = body.setdefault(urn, {})
        if value is None:
            extension.pop(attribute, None)
        else:
            extension[attribute] = value
            if urn not in body.get("schemas", []):
                body.setdefault("schemas", []).append(urn)
    elif value is None:
        body.pop(path, None)
    else:
        body[path] = value


def known_user_ids(known: KnownState) -> dict[str, KnownUser]:
    """Managed users by SCIM id."""
    return {user.scim_id: user for user in known.users.values()}


__all__ = ["ACMIDM", "Applier", "ApplyResult", "known_user_ids"]
