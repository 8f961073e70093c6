"""Large reads from the state store come as a stream: every row, in chunks on PostgreSQL (not
the whole result held by the driver), errors as the store's own, the connection usable after."""

from __future__ import annotations

import psycopg
import pytest

from connector.hr.records import EmployeeKey
from connector.known import Digests, KnownUser
from connector.state import Location, StateError, StateStore
from connector.state.database import POSTGRESQL, connect


def _numbers(where: Location) -> None:
    db = connect(where)
    db.execute("CREATE TABLE numbers (n INTEGER PRIMARY KEY)")
    db.executemany("INSERT INTO numbers VALUES (?)", [(n,) for n in range(25)])
    db.close()


def test_a_stream_gives_every_row_in_order_across_chunks(state_location: Location) -> None:
    _numbers(state_location)
    db = connect(state_location)
    rows = db.stream("SELECT n FROM numbers WHERE n >= ? ORDER BY n", (3,), size=4)
    assert [n for (n,) in rows] == list(range(3, 25))


def test_the_connection_answers_after_a_stream_left_part_way(state_location: Location) -> None:
    _numbers(state_location)
    db = connect(state_location)
    rows = db.stream("SELECT n FROM numbers ORDER BY n", size=4)
    assert next(rows) == (0,)
    rows.close()  # as when loading stops on an error
    assert db.execute("SELECT count(*) FROM numbers").fetchone()[0] == 25


def test_a_failing_stream_raises_the_stores_error_naming_it(state_location: Location) -> None:
    db = connect(state_location)
    with pytest.raises(StateError, match=r"state store .*no_such_table"):
        list(db.stream("SELECT * FROM no_such_table"))


def test_with_a_libpq_older_than_17_rows_stream_one_at_a_time(
    state_location: Location, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = connect(state_location)
    if db.dialect.name != POSTGRESQL:
        pytest.skip("libpq's chunked results concern PostgreSQL only")
    _numbers(state_location)

    def before_libpq_17(check: bool = False) -> bool:  # as psycopg answers with libpq 16
        if check:
            raise psycopg.NotSupportedError("Cursor.stream() with 'size' needs libpq 17")
        return False

    monkeypatch.setattr(psycopg.capabilities, "has_stream_chunked", before_libpq_17)
    assert [n for (n,) in db.stream("SELECT n FROM numbers ORDER BY n")] == list(range(25))


def test_more_people_than_one_chunk_are_all_loaded_with_relations_and_rights(
    state_location: Location,
) -> None:
    store = StateStore.open(state_location)
    people = 2_100  # more than two chunks of 1,000
    with store.transaction():
        for number in range(people):
            store.save_user(
                KnownUser(
                    key=f"k{number}",
                    label=f"85.07.30-{number:03}.**",
                    scim_id=f"id{number}",
                    user_name=f"p{number}@x.be",
                    active=True,
                    digests=Digests.of({"userName": b"digest-1"}),
                    employee_keys=frozenset({EmployeeKey("0216293766", f"E{number}")}),
                )
            )
            if number % 3 == 0:
                store.add_membership(f"k{number}", "Premiezoeker Gebruiker")
    known = store.load_known()
    assert len(known.users) == people
    last = known.users[f"k{people - 1}"]
    assert last.employee_keys == frozenset({EmployeeKey("0216293766", f"E{people - 1}")})
    holders = {key for key, user in known.users.items() if user.memberships}
    assert holders == {f"k{number}" for number in range(0, people, 3)}
