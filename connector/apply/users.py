"""User operations one at a time: create (after a lookup; adopt a match), update, activate,
deactivate, delete."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import replace
from functools import partial
from typing import Any

import structlog
from scim2_models import PatchOperation

from connector.apply.context import Record
from connector.apply.matching import Matching
from connector.plan import Change, OpKind, UserOp
from connector.target import fit
from connector.target.errors import (
    Conflict,
    NotFound,
)

log = structlog.get_logger(__name__)


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
            answer = await self._call(
                "patch user", lambda: self.client.patch_user(scim_id, operations)
            )
            if answer is not None:  # the user as the target holds it now
                sent = {c.path: c.value for c in changes if c.value is not None}
                self.not_kept.update(fit.not_kept(sent, answer.model_dump()))
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
