"""Marks of writes whose outcome is unknown, in the state store; which failures leave one; and
which of `serve`'s scheduled syncs reconcile against the target."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from connector.apply.context import outcome_unknown
from connector.service.schedule import Reconcile, reconciles
from connector.state import MIGRATIONS, Location, StateStore
from connector.state.backup import Owner, backup, read_run_marker, restore, write_run_marker
from connector.target.errors import (
    Conflict,
    EffectMissing,
    InvalidResponse,
    NotFound,
    Rejected,
    TargetUnavailable,
)

D = dt.date


def test_a_mark_stays_until_cleared_and_a_later_write_replaces_it(
    state_location: Location,
) -> None:
    store = StateStore.open(state_location)
    store.mark_uncertain([("p1", None, "deactivate"), ("p1", "R", "grant")], "run-1")
    store.mark_uncertain([("p1", "R", "withdraw"), ("p2", None, "create")], "run-2")
    marks = store.uncertain()
    assert dict(marks.users) == {"p1": "deactivate", "p2": "create"}
    assert dict(marks.memberships) == {("p1", "R"): "withdraw"}
    assert marks.people == {"p1", "p2"}
    store.clear_uncertain("p1")
    store.clear_uncertain("p1", "R")
    assert dict(store.uncertain().users) == {"p2": "create"}
    assert not store.uncertain().memberships
    store.close()
    reopened = StateStore.open(state_location)  # marks are committed, not held in memory
    assert dict(reopened.uncertain().users) == {"p2": "create"}
    reopened.close()


@pytest.mark.parametrize(
    ("error", "unknown"),
    [
        (TargetUnavailable("patch user", "connection dropped"), True),  # no answer: lost
        (TargetUnavailable("patch user", "busy", status=503), True),  # given up after retries
        (InvalidResponse("patch user", "not SCIM"), True),
        (Conflict("create user", "taken", status=409), False),
        (NotFound("patch user", "gone", status=404), False),
        (Rejected("patch user", "refused", status=400), False),
        (EffectMissing("patch user", "answered done, not there"), False),
    ],
)
def test_only_a_failure_the_target_answered_as_such_settles_a_write(
    error: Exception, unknown: bool
) -> None:
    assert outcome_unknown(error) is unknown


@pytest.mark.parametrize(
    ("policy", "last", "expected"),
    [
        (Reconcile.NIGHTLY, None, True),  # the first scheduled sync since the service started
        (Reconcile.NIGHTLY, D(2026, 12, 1), True),  # the first of a new day
        (Reconcile.NIGHTLY, D(2026, 12, 2), False),  # the day's full sync ran: trust the store
        (Reconcile.EVERY, D(2026, 12, 2), True),
        (Reconcile.NEVER, None, False),
    ],
)
def test_which_scheduled_syncs_reconcile(
    policy: Reconcile, last: dt.date | None, expected: bool
) -> None:
    assert reconciles(policy, D(2026, 12, 2), last) is expected


def test_a_restored_backup_is_older_than_the_run_marker(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.open(path)
    store.begin_run("run-1", "sync", D(2026, 12, 1), False)
    write_run_marker(path, "run-1")
    store.close()
    backup(path, tmp_path / "backups" / "night.db")
    store = StateStore.open(path)
    store.begin_run("run-2", "sync", D(2026, 12, 2), False)
    write_run_marker(path, "run-2")
    store.close()

    owner = Owner("0" * 32, "state.secret_env S", "https://idp.example/scim/v2")
    at = "2026-12-02T08:00:00+01:00"
    assert restore(tmp_path / "backups" / "night.db", path, owner, at)  # unchecked: warned

    assert read_run_marker(path) == "run-2"
    store = StateStore.open(path)
    assert store.has_run("run-1") and not store.has_run("run-2")
    assert len(MIGRATIONS) == store._db.execute("PRAGMA user_version").fetchone()[0]
    store.close()
    assert (tmp_path / "backups" / "night.db").stat().st_mode & 0o077 == 0  # private
