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


# Creates go before the changes of people already managed: an account is looked for (and its
# proof of identity judged) as the target held it before this run changed anyone, whichever
# way it is matched (a lookup per person, or every user read once at the start).
USER_PHASES = (
    (OpKind.CREATE,),
    (OpKind.ACTIVATE, OpKind.UPDATE),
    (OpKind.DEACTIVATE,),
    (OpKind.DELETE,),
)


class Applier(BulkOps, GroupOps):
    """Applies one plan (see the package's docstring)."""

    async def apply(self, plan: Plan, known: KnownState) -> ApplyResult:
        """Apply every operation of `plan`, in its order."""
        self.scim_ids = {key: user.scim_id for key, user in known.users.items()}
        self.owners = {user.scim_id: key for key, user in known.users.items()}
        user_ops = [op for op in plan.operations if isinstance(op, UserOp)]
        member_ops = [op for op in plan.operations if isinstance(op, MembershipOp)]
        creates, changes, deactivations, deletions = (
            [op for op in user_ops if op.kind in kinds] for kinds in USER_PHASES
        )
        await self._prefetch(len(creates))
        await self._users(creates)
        await self._users(changes)
        await self._memberships(member_ops, known)
        await self._users(deactivations)
        await self._users(deletions)
        return self.result


def known_user_ids(known: KnownState) -> dict[str, KnownUser]:
    """Managed users by SCIM id."""
    return {user.scim_id: user for user in known.users.values()}
