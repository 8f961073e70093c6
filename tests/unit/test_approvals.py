"""Approvals of stopped runs: they match only the very same changes (values included), are
used once, expire, and are refused for runs that were applied or superseded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from connector.desired import desired_state
from connector.keys import Keyring
from connector.known import KnownState
from connector.mapping import load_mapping
from connector.plan import _fingerprinted as fingerprinted
from connector.plan import make_plan
from connector.state import ApprovalRefused, Location, StateStore
from tests.unit.test_plan import D, people, plan_and_apply, rec

DAY = dt.date(2026, 12, 2)
HOURS_24 = dt.timedelta(hours=24)
KEYS = Keyring(b"test-secret")


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def passes(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(state_location: Location, clock: Clock) -> StateStore:
    opened = StateStore.open(state_location, clock=clock)
    yield opened  # type: ignore[misc]
    opened.close()


def stopped(store: StateStore, clock: Clock, run_id: str, fingerprint: str = "f" * 32) -> str:
    clock.passes(seconds=1)
    store.record_stopped(run_id, "sync", DAY, fingerprint)
    return run_id


def test_a_plan_with_other_values_for_the_same_people_and_paths_has_another_fingerprint() -> None:
    _, known = plan_and_apply(people(rec(1), rec(2)), KnownState(), D(2026, 12, 1))
    mapping = load_mapping()

    def fingerprint(email: str) -> str:
        ps = people(rec(1, email=email), rec(2))
        desired = desired_state(ps, mapping, known, KEYS, DAY)
        return make_plan(desired, known, DAY).fingerprint()

    same = fingerprint("new@0216293766.example.be")
    assert same == fingerprint("new@0216293766.example.be")  # the same changes: it matches
    assert same != fingerprint("other@0216293766.example.be")  # same person and path, other value


def test_a_fingerprint_never_holds_a_national_number_in_clear() -> None:
    digits = "85073003328"
    plan, _ = plan_and_apply(people(rec(1, digits=digits)), KnownState(), D(2026, 12, 1))
    assert plan.operations and digits not in plan.fingerprint()
    assert all(digits not in fingerprinted(op) for op in plan.operations)


def test_an_approval_is_used_once(store: StateStore, clock: Clock) -> None:
    run = stopped(store, clock, "run-1")
    store.approve(run, HOURS_24)
    assert store.use_approval("f" * 32, "run-2", HOURS_24) == run
    assert store.use_approval("f" * 32, "run-3", HOURS_24) is None  # a second use refuses


def test_an_approval_matches_only_its_fingerprint(store: StateStore, clock: Clock) -> None:
    store.approve(stopped(store, clock, "run-1"), HOURS_24)
    assert store.use_approval("e" * 32, "run-2", HOURS_24) is None
    assert store.use_approval("f" * 32, "run-2", HOURS_24) == "run-1"


def test_approving_a_run_whose_approval_was_applied_says_so(
    store: StateStore, clock: Clock
) -> None:
    store.approve(stopped(store, clock, "run-1"), HOURS_24)
    store.use_approval("f" * 32, "run-2", HOURS_24)
    with pytest.raises(ApprovalRefused, match="already approved and its plan applied by run run-2"):
        store.approve("run-1", HOURS_24)


def test_an_approval_expires(store: StateStore, clock: Clock) -> None:
    approval = store.approve(stopped(store, clock, "run-1"), HOURS_24)
    assert approval.expires_at == clock.now + HOURS_24
    clock.passes(hours=24, seconds=1)
    assert store.use_approval("f" * 32, "run-2", HOURS_24) is None
    expired = store.expired_approval("f" * 32, HOURS_24)
    assert expired is not None and expired.run_id == "run-1"


def test_an_approval_is_good_until_it_expires(store: StateStore, clock: Clock) -> None:
    store.approve(stopped(store, clock, "run-1"), dt.timedelta(hours=2))
    clock.passes(hours=1, minutes=59)
    assert store.use_approval("f" * 32, "run-2", dt.timedelta(hours=2)) == "run-1"


def test_approving_an_expired_approval_again_renews_it(store: StateStore, clock: Clock) -> None:
    store.approve(stopped(store, clock, "run-1"), HOURS_24)
    clock.passes(hours=30)
    store.approve("run-1", HOURS_24)
    assert store.use_approval("f" * 32, "run-2", HOURS_24) == "run-1"


def test_approving_a_superseded_run_says_so(store: StateStore, clock: Clock) -> None:
    first = stopped(store, clock, "run-1")
    stopped(store, clock, "run-2", "e" * 32)  # a later sync planned something else
    with pytest.raises(ApprovalRefused, match="superseded by a later sync, run run-2"):
        store.approve(first, HOURS_24)
    store.approve("run-2", HOURS_24)  # the latest stopped run can be approved


def test_approving_a_run_superseded_by_an_applied_run_says_so(
    store: StateStore, clock: Clock
) -> None:
    first = stopped(store, clock, "run-1")
    clock.passes(seconds=1)
    store.begin_run("run-2", "sync", DAY, dry_run=False)
    store.finish_run("run-2", "done", {}, 0)
    with pytest.raises(ApprovalRefused, match=r"superseded by a later sync, run run-2 .*done"):
        store.approve(first, HOURS_24)


def test_approvals_last_24_hours_unless_configured(tmp_path: Path) -> None:
    from connector.config import load_config

    config = tmp_path / "connector.toml"
    config.write_text('[source]\npath = "hr.csv"\n[target]\nbase_url = "http://127.0.0.1:1/v2"\n')
    assert load_config(config).safety.approval_valid_for == HOURS_24
    config.write_text(config.read_text() + "[safety]\napproval_valid_hours = 4\n")
    assert load_config(config).safety.approval_valid_for == dt.timedelta(hours=4)


def test_approving_a_run_that_was_not_stopped_says_so(store: StateStore, clock: Clock) -> None:
    store.begin_run("run-1", "sync", DAY, dry_run=False)
    store.finish_run("run-1", "done", {}, 0)
    with pytest.raises(ApprovalRefused, match="not stopped by a safety check"):
        store.approve("run-1", HOURS_24)
    with pytest.raises(ApprovalRefused, match="no run run-9"):
        store.approve("run-9", HOURS_24)


def test_an_approval_is_void_once_a_later_run_of_its_command_superseded_it(
    store: StateStore, clock: Clock
) -> None:
    approved = stopped(store, clock, "run-2")
    store.approve(approved, HOURS_24)
    later = stopped(store, clock, "run-3", fingerprint="e" * 32)  # other HR: stopped too
    clock.passes(seconds=1)
    store.begin_run("run-4", "sync", DAY, dry_run=False)  # HR reverted: run-2's plan again
    assert store.use_approval("f" * 32, "run-4", HOURS_24) is None
    assert store.superseded_approval("f" * 32, "run-4") == (approved, later)


def test_the_run_that_asks_does_not_supersede_the_approval_it_uses(
    store: StateStore, clock: Clock
) -> None:
    approved = stopped(store, clock, "run-2")
    store.approve(approved, HOURS_24)
    clock.passes(seconds=1)
    store.begin_run("run-3", "sync", DAY, dry_run=False)
    assert store.superseded_approval("f" * 32, "run-3") is None
    assert store.use_approval("f" * 32, "run-3", HOURS_24) == approved
