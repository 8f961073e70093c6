"""Rights as group memberships: the right's group found, adopted or created (with its first
members where the target keeps them); members added and removed in batches, each checked
(`connector.apply.members`); only what the connector added is ever removed."""

from __future__ import annotations

from collections import defaultdict

import structlog
from scim2_models import Group, GroupMember

from connector.apply.members import MemberWrites, member_ids
from connector.errors import TargetError
from connector.known import KnownState
from connector.plan import MembershipOp, OpKind
from connector.target.errors import Conflict, InvalidResponse, NotFound, Rejected

log = structlog.get_logger(__name__)

# The attribute named in `TargetProfile.untrusted_filters` when displayName filters are wrong.
DISPLAY_NAME = "displayname"

Pending = list[tuple[MembershipOp, str]]
"""Membership operations to write, each with the SCIM id of its user."""


class GroupOps(MemberWrites):
    """Membership operations, per right."""

    async def _memberships(self, ops: list[MembershipOp], known: KnownState) -> None:
        by_right: dict[str, list[MembershipOp]] = defaultdict(list)
        for op in ops:
            if op.person not in self.correlated:  # held: reported as a correlation case
                by_right[op.right].append(op)
        for right, right_ops in sorted(by_right.items()):
            try:
                group, placed = await self._ensure_group(right, right_ops, known)
            except TargetError as exc:
                for op in right_ops:
                    self._fail(op.person, op.label, op.kind.value, str(exc))
                continue
            placed_ids = {id(op) for op in placed}
            rest = [op for op in right_ops if id(op) not in placed_ids]
            await self._change_members(right, group, rest)

    async def _ensure_group(
        self, right: str, ops: list[MembershipOp], known: KnownState
    ) -> tuple[Group, list[MembershipOp]]:
        """The right's group as the target holds it now, members included, and the grants it
        was created with (recorded done).

        The state store's group; else (never recorded, or deleted in the target since) the group
        found by displayName, adopted; else a new one, with the first grants' members where the
        target keeps them. Its SCIM id is recorded.
        """
        display_name = ops[0].group
        group_id = known.groups.get(right)
        if group_id is not None:
            try:
                return await self._read_group(group_id), []
            except NotFound:
                self._forget_members(right, known)
        found = await self._find_group(right, display_name)
        first: Pending = []
        if found is not None:
            group, how = await self._read_group(found), "adopted"
        else:
            first = self._first_members(ops)
            group, how = await self._create_group(right, display_name, first)
            if how == "adopted":
                first = []
        if group.id is None:
            raise InvalidResponse("ensure group", "the target gave the group no id")
        self.store.save_group(right, group.id, display_name)
        self.store.journal(self.run_id, "group", "done", detail=f"{right}: {how} {group.id}")
        if not first:
            return group, []
        return await self._placed_on_create(right, group, first)

    async def _find_group(self, right: str, display_name: str) -> str | None:
        """The SCIM id of the group called `display_name` (ignoring case), if there is one.

        By filter where the target's displayName filters are trusted; else, and when the filter
        finds nothing, by listing every group. A filter that missed a group the listing found is
        not trusted again (the profile remembers).
        """
        by_filter = (
            self.client.capabilities.filter and DISPLAY_NAME not in self.profile.untrusted_filters
        )
        found: list[Group] = []
        if by_filter:
            try:
                found = await self._call(
                    "find group", lambda: self.client.find_groups_by_display_name(display_name)
                )
            except Rejected as exc:
                log.info("apply.group_filter_refused", run_id=self.run_id, reason=str(exc))
        if not found:
            found = await self._list_groups_named(display_name)
            if found and by_filter:
                self._learn(untrusted_filters=self.profile.untrusted_filters | {DISPLAY_NAME})
        if len(found) > 1:
            log.warning("apply.groups_ambiguous", run_id=self.run_id, right=right, n=len(found))
        return next((group.id for group in found if group.id), None)

    async def _list_groups_named(self, display_name: str) -> list[Group]:
        groups: list[Group] = await self._call(
            "list groups", lambda: self.client.find_groups_by_listing(display_name)
        )
        return groups

    def _first_members(self, ops: list[MembershipOp]) -> Pending:
        """The grants to send with a new group (one batch), unless the target drops them."""
        if self.profile.drops_members_on_write:
            return []
        first: dict[str, MembershipOp] = {}  # SCIM id -> its (first) grant
        for op in ops:
            scim_id = self.scim_ids.get(op.person)
            if op.kind is OpKind.GRANT and scim_id and op.person not in self.failed:
                first.setdefault(scim_id, op)
        return [(op, scim_id) for scim_id, op in first.items()][: self.batch_size]

    async def _create_group(
        self, right: str, display_name: str, first: Pending
    ) -> tuple[Group, str]:
        """A new group with these first members, and "created"; else the group the target turns
        out to hold, and "adopted": when it answers 409 (a group the lookup did not see), or
        when a create whose answer was lost is tried again (the lost one may have been made)."""
        with self.store.transaction():  # committed before the group is sent
            for op, _ in first:
                self.store.journal(self.run_id, "grant", "intent", op.person, op.label, right)
            self.store.mark_uncertain([(op.person, right, "grant") for op, _ in first], self.run_id)
        members = [GroupMember(value=scim_id) for _, scim_id in first] or None
        new = Group(display_name=display_name, members=members)
        attempts = 0

        async def find_then_create() -> tuple[Group, str]:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                found = await self._find_group(right, display_name)
                if found is not None:
                    return await self._read_group(found), "adopted"
            try:
                return await self.client.create_group(new), "created"
            except Conflict:
                named = await self._list_groups_named(display_name)
                if not named or not named[0].id:
                    raise
                self._journal_failed(right, first)  # refused: none of it happened
                log.info("apply.group_exists", run_id=self.run_id, right=right, id=named[0].id)
                return await self._read_group(named[0].id), "adopted"

        try:
            created: tuple[Group, str] = await self._call("create group", find_then_create)
        except TargetError:
            self._journal_failed(right, first)
            raise
        return created

    async def _placed_on_create(
        self, right: str, group: Group, first: Pending
    ) -> tuple[Group, list[MembershipOp]]:
        """Record the grants a new group holds as created (its answer shows them, else one read
        does); a target that kept none of them drops members sent with a create: the profile
        remembers, and they are added by PATCH."""
        if group.members is None:
            group = await self._read_group(group.id or "")
        held = member_ids(group)
        placed = [op for op, scim_id in first if scim_id in held]
        if not placed:
            self._learn(drops_members_on_write=True)
        with self.store.transaction():
            for op in placed:
                self.store.add_membership(op.person, right)
                self.store.clear_uncertain(op.person, right)
                self.store.journal(self.run_id, "grant", "done", op.person, op.label, right)
                self.result.done[op.kind.value] += 1
        return group, placed

    def _journal_failed(self, right: str, pending: Pending) -> None:
        for op, _ in pending:
            self.store.journal(self.run_id, op.kind.value, "failed", op.person, op.label, right)

    def _forget_members(self, right: str, known: KnownState) -> None:
        """The right's group was deleted in the target, and its members with it: forget them, so
        that the next run adds again whoever still holds the right (`--full`: this run)."""
        log.warning("apply.group_vanished", run_id=self.run_id, right=right)
        self.store.journal(self.run_id, "group", "note", detail=f"{right}: deleted in the target")
        with self.store.transaction():
            for key, user in known.users.items():
                if right in user.memberships | user.foreign_memberships:
                    self.store.remove_membership(key, right)

    async def _change_members(self, right: str, group: Group, ops: list[MembershipOp]) -> None:
        """Add and remove what the target does not have yet, in batches (one PUT without PATCH)."""
        members = member_ids(group)
        pending: Pending = []
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
        # Without PATCH each write is a PUT of the whole member list: one, for every change.
        size = self.batch_size if self.client.capabilities.patch else len(pending)
        for start in range(0, len(pending), size):
            await self._member_batch(right, group, pending[start : start + size])

    def _already_member(self, right: str, op: MembershipOp) -> None:
        """A grant whose member is already there: someone else's, unless the connector's own
        earlier attempt got through without being recorded (a run stopped or a request timed
        out in between), or the person's account was found again by their externalId after the
        state store lost its record (`relinked`: the ownership rule, their HR grant of the
        right has begun); someone else's membership is never withdrawn by the connector."""
        last = self.store.last_journal_entry(op.person, ("grant", "withdraw"), right)
        ours = last is not None and last.kind == "grant" and last.phase in ("intent", "failed")
        ours = ours or op.person in self.relinked
        self.store.add_membership(op.person, right, owned=ours)
        if ours:
            self.store.journal(self.run_id, "grant", "done", op.person, op.label, right)
        else:
            detail = f"{right}: already a member, added by someone else; left theirs"
            self.store.journal(self.run_id, "grant", "note", op.person, op.label, detail)
        self.result.done[op.kind.value] += 1

    async def _member_batch(self, right: str, group: Group, batch: Pending) -> None:
        """Journal, write (checked), record: each operation done only where its effect shows."""
        add = [scim_id for op, scim_id in batch if op.kind is OpKind.GRANT]
        remove = [scim_id for op, scim_id in batch if op.kind is OpKind.WITHDRAW]
        with self.store.transaction():  # committed before the batch is sent
            for op, _ in batch:
                self.store.journal(self.run_id, op.kind.value, "intent", op.person, op.label, right)
            marks = [(op.person, right, op.kind.value) for op, _ in batch]
            self.store.mark_uncertain(marks, self.run_id)
        # A member change that failed keeps its mark (its outcome is read back next run).
        failed = await self._write_members(group, add, remove)
        with self.store.transaction():
            for op, scim_id in batch:
                if scim_id in failed:
                    continue
                if op.kind is OpKind.GRANT:
                    self.store.add_membership(op.person, right)
                else:
                    self.store.remove_membership(op.person, right)
                self.store.clear_uncertain(op.person, right)
                self.store.journal(self.run_id, op.kind.value, "done", op.person, op.label, right)
                self.result.done[op.kind.value] += 1
        for op, scim_id in batch:
            if scim_id in failed:
                self._fail(op.person, op.label, op.kind.value, failed[scim_id])
                self.store.journal(self.run_id, op.kind.value, "failed", op.person, op.label, right)
