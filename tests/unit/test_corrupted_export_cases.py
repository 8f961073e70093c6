"""What the corrupted-export property (test_corrupted_export.py) found, each as a small case."""

from __future__ import annotations

from connector.known import KnownState
from connector.plan import make_plan
from tests.unit.test_holds import DIGITS, grant_hold, relation_hold
from tests.unit.test_plan import D, desire, people, rec


def test_a_rejected_grant_row_of_someone_never_in_scope_holds_nothing_and_plans_nothing() -> None:
    # Left before the connector first ran, so never created; their grants row has a typo.
    ps = people(rec(1, digits=DIGITS, end=D(2026, 1, 1)))
    desired = desire(ps, KnownState(), D(2026, 6, 1), holds=[grant_hold()])
    assert not desired.users and not desired.held and not desired.hold_notes
    assert make_plan(desired, KnownState(), D(2026, 6, 1)).empty


def test_a_rejected_row_of_a_future_starter_not_yet_provisioned_plans_nothing() -> None:
    ps = people(rec(1, digits=DIGITS, start=D(2026, 9, 1)))
    desired = desire(ps, KnownState(), D(2026, 6, 1), holds=[relation_hold(key=None)])
    assert not desired.users and not desired.held and not desired.hold_notes

