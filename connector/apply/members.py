"""Writing one batch of member changes to a group, and checking that they happened.

Adds go in a PATCH of their own (never with a removal the target may refuse: a refused PATCH
changes nothing, adds included). Removals go down the ladder (`connector.apply.ladder`) from the
rung the target's profile remembers. A target without PATCH gets the group PUT back whole.

Then the effect is checked, from the last answer when it lists the members, else by reading the
group once per batch: a change the target answered as done but did not make is a failure (and
is tried again next run), and a removal form whose effect is missing counts as refused. What
is learned (the rung that worked, a target that drops members sent by PUT) goes into
`self.profile`, so that the next run starts there.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import structlog
from scim2_models import Group, GroupMember

from connector.apply.context import ApplyContext
from connector.apply.ladder import effect, is_refusal, removal_rungs
from connector.errors import TargetError
from connector.target.errors import PreconditionFailed
from connector.target.members import Operation, add_operations, removal_operations
from connector.target.profile import MemberRemoval

log = structlog.get_logger(__name__)

# Tries at PUTting a group's member list back when someone else's change keeps getting in
# between (412 Precondition Failed).
REPLACE_ATTEMPTS = 3

NOT_ADDED = "the target answered the addition as done, but the member is not in the group"
NOT_REMOVED = "the target answered the removal as done, but the member is still in the group"


class MemberWrites(ApplyContext):
    """Member changes of one group, batch by batch, checked."""

    async def _write_members(
        self, group: Group, add: list[str], remove: list[str]
    ) -> dict[str, str]:
        """Add and remove members (user ids); the ids whose change is not in place, and why."""
        if not self.client.capabilities.patch:
            return await self._put_members(group, add, remove)
        group_id = group.id or ""
        failed: dict[str, str] = {}
        members: frozenset[str] | None = None
        if add:
            try:
                members = await self._patch_group(group_id, add_operations(add))
            except TargetError as exc:
                failed.update(dict.fromkeys(add, str(exc)))
        if remove:
            after, not_removed = await self._remove_members(group_id, remove)
            members = after if after is not None else members
            failed.update(not_removed)
        added = [user_id for user_id in add if user_id not in failed]
        if added:
            try:
                members = members if members is not None else await self._read_members(group_id)
            except TargetError as exc:
                return failed | dict.fromkeys(added, f"added, but not confirmed: {exc}")
            failed.update(dict.fromkeys(effect(members, added, ()).not_added, NOT_ADDED))
        return failed

    async def _remove_members(
        self, group_id: str, remove: Sequence[str]
    ) -> tuple[frozenset[str] | None, dict[str, str]]:
        """Remove members down the ladder until their removal shows; the members the group has
        afterwards (None if no answer or read told), and the ids still in it, with why."""
        start = self.profile.member_removal
        replace = not self.profile.drops_members_on_write
        remaining, why = list(remove), "no form of removing members is left to try"
        members: frozenset[str] | None = None
        for rung in removal_rungs(start, len(remaining), patch=True, replace=replace):
            refused, retries = False, self.retry.retries
            try:
                members = await self._remove_in(rung, group_id, remaining)
            except TargetError as exc:
                if not is_refusal(exc):
                    return members, dict.fromkeys(remaining, str(exc))
                refused, why, members = True, str(exc), None
                log.info("apply.member_removal_refused", run_id=self.run_id, form=rung, reason=why)
                if self.retry.retries == retries:
                    continue  # refused at once: a refused PATCH changes nothing
                # Refused when tried again: the attempt before (its answer lost) may have done it.
            try:
                members = members if members is not None else await self._read_members(group_id)
            except TargetError as exc:
                return None, dict.fromkeys(remaining, f"removal not confirmed: {exc}")
            left = effect(members, (), remaining).not_removed
            if not left:
                if not refused and rung is not start:
                    self._learn(member_removal=rung)
                return members, {}
            if refused:
                remaining = list(left)
                continue
            why = f"{rung.value}: {NOT_REMOVED}"
            log.warning("apply.member_removal_without_effect", run_id=self.run_id, form=rung)
            if rung is MemberRemoval.REPLACE:
                self._learn(drops_members_on_write=True)
            remaining = list(left)
        return members, dict.fromkeys(remaining, f"member removal failed in every form; {why}")

    async def _remove_in(
        self, rung: MemberRemoval, group_id: str, remove: Sequence[str]
    ) -> frozenset[str] | None:
        """Send one removal in one form; the members its answer lists (None: it lists none)."""
        if rung is not MemberRemoval.REPLACE:
            return await self._patch_group(group_id, removal_operations(rung, remove))
        current = await self._read_group(group_id)  # fresh: this run's adds included
        replaced = await self._replace_members(current, [], remove)
        return _listed_members(replaced)

    async def _put_members(self, group: Group, add: list[str], remove: list[str]) -> dict[str, str]:
        """For targets without PATCH: one PUT of the group with the changes applied, checked."""
        try:
            replaced = await self._replace_members(group, add, remove)
            members = _listed_members(replaced)
            if members is None:
                members = await self._read_members(group.id or "")
        except TargetError as exc:
            return dict.fromkeys([*add, *remove], str(exc))
        left = effect(members, add, remove)
        if not left.complete:
            self._learn(drops_members_on_write=True)
        return dict.fromkeys(left.not_added, NOT_ADDED) | dict.fromkeys(
            left.not_removed, NOT_REMOVED
        )

    async def _replace_members(
        self, group: Group, add: Sequence[str], remove: Sequence[str]
    ) -> Group:
        """PUT the group back with the changes applied to its full current member list. With
        ETags the PUT is conditional on the version read; when someone changed the group in
        between, it is read again and the changes re-applied. Returns the target's answer."""
        current = group
        for attempt in range(1, REPLACE_ATTEMPTS + 1):
            replacement = _with_members(current, add, remove)
            try:
                replaced: Group = await self._call(
                    "replace group members", partial(self.client.replace_group, replacement)
                )
                return replaced
            except PreconditionFailed:
                if attempt == REPLACE_ATTEMPTS:
                    raise
                current = await self._read_group(group.id or "")
        raise AssertionError("unreachable")  # pragma: no cover

    async def _patch_group(
        self, group_id: str, operations: list[Operation]
    ) -> frozenset[str] | None:
        """One PATCH of the group; the members its answer lists (None: it lists none)."""
        members: frozenset[str] | None = await self._call(
            "patch group members", lambda: self.client.patch_group(group_id, operations)
        )
        return members

    async def _read_group(self, group_id: str) -> Group:
        group: Group = await self._call("read group", lambda: self.client.get_group(group_id))
        return group

    async def _read_members(self, group_id: str) -> frozenset[str]:
        """The user ids of the group's members, as the target holds them now."""
        return frozenset(member_ids(await self._read_group(group_id)))

    def _learn(self, **facts: object) -> None:
        """Keep facts about the target in the profile this run hands back."""
        self.profile = self.profile.model_copy(update=facts)
        log.info("apply.target_learned", run_id=self.run_id, **facts)


def member_ids(group: Group) -> set[str]:
    """The SCIM ids of a group's members."""
    return {member.value for member in group.members or [] if member.value}


def _listed_members(group: Group) -> frozenset[str] | None:
    """The members a group as answered lists; None when it has no `members` attribute."""
    return None if group.members is None else frozenset(member_ids(group))


def _with_members(group: Group, add: Sequence[str], remove: Sequence[str]) -> Group:
    """The group with these user ids added and removed; every other member kept as it was."""
    gone = set(remove)
    kept = [member for member in group.members or [] if member.value not in gone]
    present = {member.value for member in kept}
    kept += [GroupMember(value=scim_id) for scim_id in dict.fromkeys(add) if scim_id not in present]
    return group.model_copy(update={"members": kept})
