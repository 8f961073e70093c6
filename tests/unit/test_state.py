"""The state store: what apply records is what the planner reads back; no national number."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from connector.hr.records import EmployeeKey
from connector.keys import Keyring
from connector.known import Digests, KnownUser, MappedFrom
from connector.state import MIGRATIONS, CorrelationCase, Location, StateError, StateStore
from connector.state.database import Database, connect
from connector.state.schema import _one_person_per_account, apply

USER = KnownUser(
    key="k1",
    label="85.07.30-***.**",
    scim_id="abc",
    user_name="an@x.be",
    active=True,
    digests=Digests.of({"userName": b"digest-1", "active": b"digest-2"}),
    employee_keys=frozenset({EmployeeKey("0216293766", "E1")}),
)


def test_saved_user_and_memberships_are_read_back(state_location: Location) -> None:
    store = StateStore.open(state_location)
    store.save_user(USER)
    store.add_membership("k1", "Premiezoeker Gebruiker")
    store.save_group("Premiezoeker Gebruiker", "g1", "Premiezoeker Gebruiker")
    known = store.load_known()
    assert known.users["k1"] == replace(USER, memberships=frozenset({"Premiezoeker Gebruiker"}))
    assert known.groups == {"Premiezoeker Gebruiker": "g1"}
    assert store.person_for_employee(EmployeeKey("0216293766", "E1")) == "k1"


def test_forgetting_a_user_drops_their_memberships(state_location: Location) -> None:
    store = StateStore.open(state_location)
    store.save_user(USER)
    store.add_membership("k1", "R")
    store.forget_user("k1")
    assert store.load_known().users == {}


def test_read_only_open_of_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    assert StateStore.open_read_only(tmp_path / "state.db") is None
    assert not (tmp_path / "state.db").exists()


def test_read_only_open_does_not_change_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    writer = StateStore.open(path)
    writer.save_user(USER)
    writer.close()  # not left to the garbage collector: closing checkpoints the WAL into the file
    before = path.read_bytes()
    store = StateStore.open_read_only(path)
    assert store is not None
    store.load_known()
    store.close()
    assert path.read_bytes() == before


def test_read_only_open_of_a_store_not_made_yet_finds_none(state_location: Location) -> None:
    assert StateStore.open_read_only(state_location) is None


def test_a_read_only_store_refuses_writes(state_location: Location) -> None:
    StateStore.open(state_location).close()
    store = StateStore.open_read_only(state_location)
    assert store is not None
    with pytest.raises(StateError):
        store.save_user(USER)
    store.close()


def test_a_store_from_a_newer_version_is_refused(state_location: Location) -> None:
    StateStore.open(state_location).close()
    db = connect(state_location)
    with db_transaction(db):
        db.set_schema_version(len(MIGRATIONS) + 1)
    db.close()
    with pytest.raises(StateError, match="newer"):
        StateStore.open(state_location)
    with pytest.raises(StateError, match="newer"):
        StateStore.open_read_only(state_location)


def test_the_schema_is_the_same_on_both_databases(state_location: Location) -> None:
    store = StateStore.open(state_location)
    assert store._db.tables() == [
        "approvals", "correlation_cases", "groups", "inbox", "installation", "journal",
        "memberships", "person_failures", "relations", "run_marker", "runs", "schedule_runs",
        "source_columns", "target_profiles", "uncertain", "users",
    ]  # fmt: skip
    assert store._db.schema_version() == len(MIGRATIONS)
    store.close()
    StateStore.open(state_location).close()  # up to date: opened again without migrating


def test_journal_is_kept_per_person_and_per_run(state_location: Location) -> None:
    clock = iter(dt.datetime(2026, 12, 1, 2, 0, s, tzinfo=dt.UTC) for s in range(60))
    store = StateStore.open(state_location, clock=lambda: next(clock))
    store.begin_run("r1", "sync", dt.date(2026, 12, 1), dry_run=False)
    store.journal("r1", "create", "intent", "k1", USER.label)
    store.journal("r1", "create", "done", "k1", USER.label, "id=abc")
    store.finish_run("r1", "done", {"create": 1}, 0)
    assert [e.phase for e in store.history(person_key="k1")] == ["intent", "done"]
    assert [e.phase for e in store.history(run_id="r1")] == ["intent", "done"]
    assert store.runs()[0].status == "done"


def test_what_values_were_mapped_from_is_read_back(state_location: Location) -> None:
    store = StateStore.open(state_location)
    user = replace(
        USER,
        digests=Digests.of({"userName": b"digest-1"}, whole=b"whole-12"),
        mapped_from=MappedFrom(b"source-1", dt.date(2026, 1, 1), None),
    )
    store.save_user(user)
    assert store.load_known().users["k1"] == user


def test_a_schema_3_store_keeps_its_digests_packed(state_location: Location) -> None:
    """Upgrading does not make the connector push everyone again: old digests still match."""
    db = _store_at(state_location, 3)
    ring = Keyring(b"secret")
    old = hmac.new(b"secret", b"value:" + b'"an@x.be"', hashlib.sha256).hexdigest()[:32]
    db.execute(
        "INSERT INTO users (key, label, scim_id, user_name, active, digests) "
        "VALUES ('k1', 'label', 'abc', 'an@x.be', 1, ?)",
        (json.dumps({"userName": old}),),
    )
    db.close()
    known = StateStore.open(state_location).load_known().users["k1"]
    assert known.digests.get("userName") == ring.digest('"an@x.be"')
    assert known.mapped_from is None


def _store_at(where: Location, version: int) -> Database:
    """A store at an older schema version (the migrations up to `version` applied)."""
    db = connect(where)
    with db_transaction(db):
        db.prepare_versioning()
        for migration in MIGRATIONS[:version]:
            apply(migration, db)
        db.set_schema_version(version)
    return db


@contextmanager
def db_transaction(db: Database) -> Iterator[None]:
    db.begin()
    yield
    db.commit()


def test_upgrading_a_store_that_links_two_people_to_one_account_opens_a_case_for_each(
    state_location: Location,
) -> None:
    """Which of the two the account is cannot be known: both links are dropped and each
    person becomes an open correlation case (held, reported) until resolved."""
    before = MIGRATIONS.index(_one_person_per_account)  # just before it: scim_id not unique
    db = _store_at(state_location, before)
    for key, label, scim_id, employee in [
        ("ka", "66.06.06-***.**", "shared", "E1"),
        ("kb", "99.09.09-***.**", "shared", "E2"),
        ("kc", "70.01.01-***.**", "own", "E3"),
    ]:
        db.execute(
            "INSERT INTO users (key, label, scim_id, user_name, active, digests) "
            "VALUES (?, ?, ?, 'jan.peeters@gent.be', 1, '')",
            (key, label, scim_id),
        )
        db.execute("INSERT INTO relations VALUES (?, '0207451227', ?)", (key, employee))
        db.execute("INSERT INTO memberships VALUES (?, 'Premiezoeker Gebruiker', 1)", (key,))
    db.close()

    store = StateStore.open(state_location)
    assert set(store.load_known().users) == {"kc"}
    cases = store.cases("open")
    assert [(c.person_key, c.scim_id, c.employee_keys) for c in cases] == [
        ("ka", "shared", ("0207451227:E1",)),
        ("kb", "shared", ("0207451227:E2",)),
    ]
    assert all(c.label.endswith("-***.**") and "another person" in c.reason for c in cases)
    with pytest.raises(StateError, match="linked to another person"):
        store.save_user(replace(USER, key="kd", scim_id="own"))
    with pytest.raises(StateError, match=r"(?i)unique"):
        store._db.execute(
            "INSERT INTO users (key, label, scim_id, user_name, active, digests) "
            "VALUES ('ke', 'l', 'own', 'x', 1, '')"
        )


def test_a_case_is_open_until_resolved_and_closed_by_the_run_that_applies_it(
    state_location: Location,
) -> None:
    store = StateStore.open(state_location)
    case = CorrelationCase(
        person_key="kb",
        label="99.09.09-***.**",
        name="Jan Peeters",
        employee_keys=("0207451227:B7",),
        scim_id="acc-a",
        account_user_name="jan.peeters@gent.be",
        account_external_id="ka",
        account_national_id="66.06.06-***.**",
        reason="its externalId is another person's",
    )
    store.open_case(case, "run-2")
    # Found again, the account changed meanwhile: still one case, opened by run 2, as it is now.
    store.open_case(replace(case, account_external_id="kz"), "run-3")
    [opened] = store.cases("open")
    assert opened.run_id == "run-2" and opened.status == "open"
    assert opened.account_external_id == "kz"
    assert store.case_of_employee("0207451227:B7") == opened
    store.resolve_case("kb", "new_account", None)
    assert store.cases("open") == []
    assert store.case_of("kb") is not None and store.case_of("kb").resolution == "new_account"
    store.close_case("kb", "run-4")
    assert store.case_of("kb") is None and store.cases("resolved") == []
    with pytest.raises(StateError, match="no correlation case"):
        store.resolve_case("kb", "link", "acc-a")


def test_an_open_case_closes_when_a_run_finds_nothing_against_the_person_any_more(
    tmp_path: Path,
) -> None:
    store = StateStore.open(tmp_path / "state.db")
    case = CorrelationCase(
        person_key="kb",
        label="0207451227:B7 (99.09.09-***.**)",
        name=None,
        employee_keys=("0207451227:B7",),
        scim_id="acc-a",
        account_user_name="jan.peeters@gent.be",
        account_external_id="ka",
        account_national_id=None,
        reason="its externalId is another person's",
    )
    store.open_case(case, "run-2")
    store.close_case("kb", "run-3")
    assert store.cases("open") == [] and store.case_of("kb") is None
    # Opened again later: a new case, found by that later run.
    store.open_case(case, "run-9")
    [again] = store.cases("open")
    assert again.run_id == "run-9"


def test_people_the_store_links_to_no_account_are_found_by_an_employee_key_they_carried(
    tmp_path: Path,
) -> None:
    store = StateStore.open(tmp_path / "state.db")
    store.journal("r1", "create", "failed", "kb", "0207451227:B7, 0200000000:X1 (99.09.09-***.**)")
    store.journal("r1", "create", "failed", "kc", "0207451227:B70 (88.08.08-***.**)")
    store.journal("r1", "create", "failed", "kd", "88.08.08-***.**")
    assert store.journalled_people("0207451227:B7") == ["kb"]
    assert store.journalled_people("0200000000:X1") == ["kb"]
    assert store.journalled_people("0207451227:B") == []


def test_a_store_keeps_the_fingerprint_of_its_state_secret_and_refuses_another(
    state_location: Location,
) -> None:
    ours, theirs = Keyring(b"ours " * 8), Keyring(b"theirs " * 8)
    store = StateStore.open(state_location)
    assert store.secret_fingerprint() is None  # recorded by the first sync that opens it
    store.claim_secret(ours.fingerprint(), "state.secret_env OURS")
    store.claim_secret(ours.fingerprint(), "state.secret_env OURS")  # the same: fine
    with pytest.raises(StateError, match=r"another state secret .*\(state.secret_env THEIRS\)"):
        store.claim_secret(theirs.fingerprint(), "state.secret_env THEIRS")
    assert store.secret_fingerprint() == ours.fingerprint() != theirs.fingerprint()
    store.close()


def test_the_stores_run_marker_says_a_restore_until_a_run_begins_writing(
    state_location: Location,
) -> None:
    store = StateStore.open(state_location)
    assert store.restored_reason() is None  # no run yet: nothing to say
    store.mark_run_began("r1")
    assert store.restored_reason() is None  # the marker as the connector wrote it
    store.mark_restored("restored from state-2026-12-01.db")
    assert store.restored_reason() == "restored from state-2026-12-01.db"
    store.close()
    other = StateStore.open(state_location)  # another replica's connection sees it too
    assert other.restored_reason() == "restored from state-2026-12-01.db"
    other.mark_run_began("r2")  # the run that recovered
    assert other.restored_reason() is None
    other.close()
