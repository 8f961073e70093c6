"""Rights as group memberships: the right's group found, adopted or created; members added and
removed in batches (PATCH, else a PUT of the member list); only what the connector added is
ever removed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from functools import partial

import structlog
from scim2_models import Group, GroupMember

from connector.apply.context import ApplyContext
from connector.errors import TargetError
from connector.known import KnownState
from connector.plan import MembershipOp, OpKind
from connector.target.errors import (
    InvalidResponse,
    NotFound,
    PreconditionFailed,
)

log = structlog.get_logger(__name__)


# Tries at PUTting a group's member list back (targets without PATCH) when someone else's change
# keeps getting in between (412 Precondition Failed).
REPLACE_ATTEMPTS = 3


class GroupOps(ApplyContext):
    """Membership operations, per right."""

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
