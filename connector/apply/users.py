"""User operations one at a time: create (after a lookup; adopt a match), update, activate,
deactivate, delete. Attribute changes go by PATCH where the target takes it, else by PUT
(`user_writes`); a target's refusal of a PATCH is learned (`TargetProfile.put_paths`)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import structlog
from scim2_models import PatchOperation

from connector.apply import user_writes
from connector.apply.context import PartlyDone, Record
from connector.apply.matching import Matching
from connector.apply.user_writes import ACTIVE, partly_written
from connector.errors import TargetError
from connector.plan import Change, OpKind, UserOp
from connector.target import fit
from connector.target.client import ScimUser
from connector.target.errors import (
    Conflict,
    EffectMissing,
    NotFound,
    PreconditionFailed,
    Rejected,
    TargetRequestError,
    TargetUnavailable,
)

log = structlog.get_logger(__name__)

# Tries at PUTting a user back when someone else's change keeps getting in between (412).
REPLACE_ATTEMPTS = 3


class Unwritten(TargetError):
    """Some of a user's changes were written and others not: `cause` says why; `paths`, those
    not written."""

    def __init__(self, cause: TargetError, changes: Sequence[Change], written: frozenset[str]):
        self.cause = cause
        self.paths = user_writes.paths(changes) - written
        super().__init__(str(cause))


class UserOps(Matching):
    """One user operation at a time."""

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
                created, answer = await self.client.create_user_answer(resource)
            except Conflict:
                existing = await self._match(op.person, op.national_digits, user_name)
                if existing is None:  # the target holds them, its filters did not say
                    existing = await self._match_by_listing(
                        op.person, op.national_digits, user_name
                    )
                if existing is None:
                    raise
                return existing, True
            if answer is not None:
                self.not_kept.update(fit.not_kept(fit.flat(resource), answer))
            return created, False

        scim_id, adopted = await self._call("create user", match_then_create)
        self.scim_ids[op.person] = scim_id
        after = replace(op.after, scim_id=scim_id)
        unwritten: Unwritten | None = None
        if adopted:
            changes = tuple(Change(p, v) for p, v in _owned_paths(resource))
            try:
                await self._write_changes(op.person, scim_id, changes)
            except Unwritten as exc:
                unwritten = exc
            except NotFound:
                raise
            except TargetError as exc:
                unwritten = Unwritten(exc, changes, frozenset())
            if unwritten is not None and ACTIVE in unwritten.paths:
                raise unwritten.cause  # not adopted as it should be: the next run tries again
            if unwritten is not None:
                after = partly_written(after, unwritten.paths)

        def record() -> None:
            if adopted:
                self.result.adopted += 1
                self.store.journal(self.run_id, "adopt", "done", op.person, op.label, scim_id)
            self.store.save_user(after)

        if unwritten is not None:
            raise PartlyDone(unwritten.cause, record, kind_done=True)
        return record

    async def _modify(self, op: UserOp) -> Record:
        assert op.scim_id is not None and op.after is not None
        scim_id = self.scim_ids.get(op.person, op.scim_id)
        try:
            try:
                await self._write_changes(op.person, scim_id, op.changes)
            except NotFound:
                # The user vanished or was recreated under another id: match again, never
                # recreate.
                found = await self._match(op.person, None, op.after.user_name)
                if found is None and op.kind is OpKind.DEACTIVATE:
                    return self._gone(op)  # no active account: the goal is reached
                if found is None:
                    raise
                scim_id = found
                await self._write_changes(op.person, scim_id, op.changes)
        except Unwritten as exc:
            if ACTIVE in exc.paths:
                raise exc.cause from None  # recorded as it was: all planned again
            self.scim_ids[op.person] = scim_id
            after = partly_written(replace(op.after, scim_id=scim_id), exc.paths)
            record = partial(self.store.save_user, after)
            kind_done = op.kind is not OpKind.UPDATE
            raise PartlyDone(exc.cause, record, kind_done=kind_done) from None
        self.scim_ids[op.person] = scim_id
        after = replace(op.after, scim_id=scim_id)
        return partial(self.store.save_user, after)

    def _gone(self, op: UserOp) -> Record:
        """A leaver whose account was deleted in the target (by an administrator): nothing is
        left to deactivate. Done; the state store forgets the account, so that no run creates
        one again only to hold it inactive."""
        log.info("apply.already_gone", run_id=self.run_id, person=op.label)

        def record() -> None:
            self.store.journal(
                self.run_id, op.kind.value, "note", op.person, op.label, "gone from the target"
            )
            self.store.forget_user(op.person)

        return record

    async def _write_changes(self, person: str, scim_id: str, changes: Sequence[Change]) -> None:
        """Write one user's changes (see `_write`). Raises `Unwritten` when some were written and
        others not; when the changes as a whole fail, `active` goes on its own, so that an
        attribute the target will not take never holds up an activation or deactivation."""
        written: list[str] = []
        try:
            await self._write(person, scim_id, changes, written)
        except TargetError as exc:
            cause = exc
            active = [c for c in changes if c.path == ACTIVE and ACTIVE not in written]
            if active and len(changes) > 1 and not isinstance(exc, NotFound):
                with contextlib.suppress(TargetError):  # the first failure is the one reported
                    await self._write(person, scim_id, active, written)
            if not written:
                raise
            raise Unwritten(cause, changes, frozenset(written)) from None

    async def _write(
        self, person: str, scim_id: str, changes: Sequence[Change], written: list[str]
    ) -> None:
        """Write changes by PATCH where the target takes a PATCH of their path, by PUT (read,
        merge, put back) where it does not (`profile.put_paths`, or found refused now); append
        each path to `written` once it is."""
        if not self.client.capabilities.patch:
            await self._put(person, scim_id, changes)
            written.extend(c.path for c in changes)
            return
        by_patch, by_put = user_writes.split(changes, self.profile.put_paths)
        if by_patch:
            try:
                await self._patch(scim_id, by_patch)
                written.extend(c.path for c in by_patch)
            except TargetRequestError as exc:
                if not user_writes.refuses_patch(exc):
                    raise
                refused = await self._refused(scim_id, by_patch, written)
                by_put += tuple(c for c in by_patch if c.path in refused)
        if by_put:
            await self._put(person, scim_id, by_put)
            written.extend(c.path for c in by_put)

    async def _refused(
        self, scim_id: str, changes: Sequence[Change], written: list[str]
    ) -> frozenset[str]:
        """The paths of a refused PATCH to write by PUT. One path: that one, learned. Several:
        once per run (the probe), each is sent again alone (`_patch_alone`; those it takes are
        written) and those refused are learned; after the run's probe, all of them (what the
        probe learned routes the changes planned after it)."""
        refused = user_writes.paths(changes)
        if len(changes) == 1:
            self.learn_put_paths(refused)
            return refused
        if self.patch_probed:
            return refused
        self.patch_probed = True
        alone: set[str] = set()
        try:
            for change in changes:
                if await self._patch_alone(scim_id, change):
                    written.append(change.path)
                else:
                    alone.add(change.path)
        finally:  # what was found refused stays learned, whatever stops the probe
            self.learn_put_paths(frozenset(alone))
        return frozenset(alone)

    async def _patch_alone(self, scim_id: str, change: Change) -> bool:
        """PATCH one change alone (the probe): True if the target took it, False if it refused
        it or failed on it with a 500."""
        try:
            await self._patch(scim_id, (change,), probe=True)
        except TargetRequestError as exc:
            if user_writes.refuses_patch(exc) or exc.status == 500:
                return False
            raise
        return True

    async def _patch(self, scim_id: str, changes: Sequence[Change], *, probe: bool = False) -> None:
        """One PATCH of a user; note what its answer shows the target does not keep. In a probe
        a 500 is not tried again: a server that fails on one attribute alone, just after
        refusing it with others, does not take that attribute's PATCH."""
        operations: list[PatchOperation[Any]] = [
            PatchOperation(op="remove", path=c.path)
            if c.value is None
            else PatchOperation(op="replace", path=c.path, value=c.value)
            for c in changes
        ]

        async def send() -> ScimUser | None:
            try:
                return await self.client.patch_user(scim_id, operations)
            except TargetUnavailable as exc:
                if not probe or exc.status != 500:
                    raise
                raise Rejected(exc.operation, exc.detail, status=500) from None

        answer = await self._call("patch user", send)
        if answer is not None:  # the user as the target holds it now
            self._check_answer("patch user", changes, answer.model_dump())

    async def _put(self, person: str, scim_id: str, changes: Sequence[Change]) -> None:
        """Write changes by PUT: read the user, apply them (`user_writes.merged`: what the
        connector does not own is sent back as it was), put it back; conditional on the
        version read where the target has ETags, read again when someone changed it since."""
        for attempt in range(1, REPLACE_ATTEMPTS + 1):
            current = await self._call("read user", partial(self.client.read_user_json, scim_id))
            body = user_writes.merged(current.body, changes, person)
            try:
                answer = await self._call(
                    "replace user",
                    partial(self.client.replace_user_json, scim_id, body, current.version),
                )
            except PreconditionFailed:
                if attempt == REPLACE_ATTEMPTS:
                    raise
                continue
            if answer is not None:
                self._check_answer("replace user", changes, answer)
            return

    def _check_answer(self, what: str, changes: Sequence[Change], answer: dict[str, Any]) -> None:
        """What a write's answer (the user as the target now holds it) shows: attributes it does
        not keep as sent are noted; an `active` or `userName` it does not hold is a failure."""
        sent = {c.path: c.value for c in changes if c.value is not None}
        missing = fit.missing_effects(sent, answer)
        if missing:
            shown = ", ".join(f"{path}={sent[path]!r}" for path in sorted(missing))
            raise EffectMissing(what, f"answered as done, but the user does not hold {shown}")
        self.not_kept.update(fit.not_kept(sent, answer))

    async def _delete(self, op: UserOp) -> Record:
        assert op.scim_id is not None
        with contextlib.suppress(NotFound):  # already gone: the goal is reached
            await self._call("delete user", lambda: self.client.delete_user(op.scim_id or ""))
        return partial(self.store.forget_user, op.person)


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
