"""User operations in SCIM Bulk requests (RFC 7644 §3.7), within the target's limits; what
fails or is unknown in a Bulk request goes again alone (`users`)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from functools import partial

import structlog

from connector.apply.users import UserOps
from connector.errors import TargetError
from connector.plan import OpKind, UserOp
from connector.target import bulk
from connector.target.bulk import BulkOperation
from connector.target.errors import (
    Conflict,
    TargetRequestError,
    TargetUnavailable,
)

log = structlog.get_logger(__name__)


# Bulk: below BULK_FROM candidate operations, single requests. Limits for a target that
# announces Bulk without them, and a cap on operations per request whatever it announces.
BULK_FROM = 2
BULK_MAX_OPERATIONS = 100
BULK_MAX_PAYLOAD = 1_048_576
BULK_MAX_OPERATIONS_CAP = 1000


class BulkOps(UserOps):
    """User operations, in Bulk requests where the target takes them."""

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
            if self.index is None or op.person in self.resolutions or op.person in self.rechecks:
                return None  # the person must be looked up first (or a case settled)
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
        if any(change.path in self.profile.put_paths for change in op.changes):
            return None  # the target refuses a PATCH of it: written by PUT, alone
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
            with self.store.transaction():  # committed before the request is sent
                for item in batch:
                    op = item.key
                    self.store.journal(self.run_id, op.kind.value, "intent", op.person, op.label)
                marks = [(item.key.person, None, item.key.kind.value) for item in batch]
                self.store.mark_uncertain(marks, self.run_id)
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
            self.owners[scim_id] = op.person
        else:
            scim_id = self.scim_ids.get(op.person, op.scim_id or "")
        self.scim_ids[op.person] = scim_id
        self.store.save_user(replace(op.after, scim_id=scim_id))
        self.store.journal(self.run_id, op.kind.value, "done", op.person, op.label)
        self._settled(op.person)
        self.result.done[op.kind.value] += 1
        return True


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
