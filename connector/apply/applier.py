"""The order of one apply run: users created and updated, then memberships, then deactivations
and deletions."""

from __future__ import annotations

import structlog

from connector.apply.bulk import BulkOps
from connector.apply.context import ApplyResult
from connector.apply.groups import GroupOps
from connector.known import KnownState, KnownUser
from connector.plan import MembershipOp, OpKind, Plan, UserOp

log = structlog.get_logger(__name__)


USER_PHASES = (
    (OpKind.CREATE, OpKind.ACTIVATE, OpKind.UPDATE),
    (OpKind.DEACTIVATE,),
    (OpKind.DELETE,),
)


class Applier(BulkOps, GroupOps):
    """Applies one plan (see the package's docstring)."""

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


def known_user_ids(known: KnownState) -> dict[str, KnownUser]:
    """Managed users by SCIM id."""
    return {user.scim_id: user for user in known.users.values()}
