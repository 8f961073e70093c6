"""The member-removal ladder: which forms to try, in what order, what counts as a refusal, and
what a write's effect says about it.

Pure. A removal starts at the rung the target's profile remembers and moves one rung down when
the target refuses the form (400, 405, 500, 501: the form, not the target, is the problem) or
answers it as done while the members are still there (the effect is what counts).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from connector.errors import TargetError
from connector.target.errors import TargetRequestError
from connector.target.profile import MemberRemoval

# The HTTP answers that refuse a form of request rather than the change it asks for: 400 (bad
# request: a filter or value it cannot parse), 405 (method not allowed), 501 (not implemented),
# and a 500 that stays after retries (a server that fails on exactly that form).
REFUSALS = frozenset({400, 405, 500, 501})

_LADDER = tuple(MemberRemoval)


def is_refusal(exc: TargetError) -> bool:
    """Whether a failed write refused its form (try the next rung) rather than failed outright."""
    return isinstance(exc, TargetRequestError) and exc.status in REFUSALS


def removal_rungs(
    start: MemberRemoval, members: int, *, patch: bool, replace: bool
) -> list[MemberRemoval]:
    """The forms to try, in order, to remove `members` members, from `start` down the ladder.

    For one member FILTER and VALUE_FILTER are the same request: it is sent once. Without PATCH
    only REPLACE is left; REPLACE only where a PUT keeps the members it carries (`replace`), and
    a target remembered at REPLACE that no longer allows it starts from the top again.
    """
    if not patch:
        return [MemberRemoval.REPLACE] if replace else []
    rungs = list(_LADDER[_LADDER.index(start) :])
    if not replace:
        rungs.remove(MemberRemoval.REPLACE)
        rungs = rungs or list(_LADDER[:-1])  # REPLACE was the rung to start at: from the top
    if members == 1 and MemberRemoval.FILTER in rungs:
        rungs.remove(MemberRemoval.VALUE_FILTER)
    return rungs


@dataclass(frozen=True, slots=True)
class Effect:
    """What a membership write left undone, as the group read back shows it."""

    not_added: tuple[str, ...] = ()  # user ids to add that are not members
    not_removed: tuple[str, ...] = ()  # user ids to remove that are still members

    @property
    def complete(self) -> bool:
        """Whether everything asked for is in place."""
        return not self.not_added and not self.not_removed


def effect(members: Collection[str], add: Iterable[str], remove: Iterable[str]) -> Effect:
    """What of `add` and `remove` (user ids) the group's `members` do not show done."""
    return Effect(
        not_added=tuple(user_id for user_id in add if user_id not in members),
        not_removed=tuple(user_id for user_id in remove if user_id in members),
    )
