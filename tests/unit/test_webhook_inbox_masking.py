"""The inbox never keeps a national number in clear, whatever its JSON type or place in an event.

A number in the record (a value of any type, or a key) is stored masked; an event whose
`event_id` or `employee_id` holds one is refused (400), since those are keys kept as sent.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.keys import Keyring
from connector.nationalid import find_national_ids, mask_national_ids
from connector.service.webhook import Refused, parse_event
from connector.state import StateStore
from tests.factories import GENT, format_nn, make_bis, make_nn, masked_nn

KEYRING = Keyring(b"the state store's secret in these tests")
RECEIVED = "2026-11-29T08:00:00.000+00:00"

births = st.dates(min_value=dt.date(1930, 1, 1), max_value=dt.date(2009, 12, 31))
numbers = st.one_of(
    st.builds(make_nn, births, st.integers(1, 998)),
    st.builds(make_bis, births, st.integers(1, 998)),
)


@st.composite
def spelled(draw: st.DrawFn) -> Any:
    """A national number as an event may carry it: a JSON string in any usual form, embedded
    in text, a JSON integer, a float, in exponent notation."""
    digits = draw(numbers)
    form = draw(st.sampled_from(["digits", "formatted", "spaced", "in_text", "int", "float"]))
    if form == "digits":
        return digits
    if form == "formatted":
        return format_nn(digits)
    if form == "spaced":
        return f"{digits[:6]} {digits[6:9]} {digits[9:]}"
    if form == "in_text":
        return f"{draw(st.text(max_size=5))} {format_nn(digits)}/{draw(st.text(max_size=5))}"
    if form == "int":
        return int(digits)
    return float(int(digits)) + draw(st.sampled_from([0.0, 0.5, 0.25]))


plain = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
keys = st.one_of(st.text(min_size=1, max_size=12), numbers, numbers.map(format_nn))
records = st.dictionaries(keys, st.one_of(plain, spelled()), max_size=6)


def stored_text(path: Path) -> str:
    """Everything the inbox table holds, as text."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT * FROM inbox").fetchall()
    return json.dumps(rows)


@settings(max_examples=150)
@given(
    record=st.one_of(st.none(), records),
    event_id=st.one_of(st.just("ev-1"), numbers, numbers.map(lambda d: f"ev-{d}")),
    employee_id=st.one_of(st.just("E0001"), numbers),
)
def test_no_valid_national_number_is_stored_in_clear_whatever_the_event_looks_like(
    record: dict[str, Any] | None, event_id: str, employee_id: str
) -> None:
    body = {
        "event_id": event_id,
        "type": "employee.updated",
        "organisation_code": GENT,
        "employee_id": employee_id,
    }
    if record is not None:
        body["record"] = record
    try:
        event = parse_event(json.dumps(body).encode())
    except Refused as refused:
        assert refused.status == 400
        assert find_national_ids(event_id) or find_national_ids(employee_id)
        assert not find_national_ids(refused.reason)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.db"
        store = StateStore.open(path)
        try:
            assert store.add_event(event.to_inbox(RECEIVED, KEYRING))
        finally:
            store.close()
        assert find_national_ids(stored_text(path)) == []


def test_a_national_number_sent_as_a_json_number_is_kept_masked_as_text() -> None:
    digits = make_nn(dt.date(1985, 7, 30), serial=33)
    body = (
        f'{{"event_id": "ev-1", "type": "employee.updated", "organisation_code": "{GENT}", '
        f'"employee_id": "E0001", "record": {{"national_id": {digits}, '
        f'"as_float": {digits}.0, "exp": 8.5073e4, "{digits}": "key"}}}}'
    )
    stored = parse_event(body.encode()).to_inbox(RECEIVED, KEYRING)
    assert stored.record == {
        "national_id": masked_nn(digits),
        "as_float": masked_nn(digits),
        "exp": 85073.0,
        masked_nn(digits): "key",
    }


def test_an_event_id_or_employee_id_holding_a_national_number_is_refused() -> None:
    digits = make_nn(dt.date(1985, 7, 30), serial=33)
    for field in ("event_id", "employee_id"):
        body = {
            "event_id": "ev-1",
            "type": "employee.updated",
            "organisation_code": GENT,
            "employee_id": "E0001",
            field: f"x-{format_nn(digits)}" if field == "event_id" else digits,
        }
        try:
            parse_event(json.dumps(body).encode())
        except Refused as refused:
            assert refused.status == 400
            assert field in refused.reason and digits[:6] not in refused.reason
        else:
            raise AssertionError(f"an event with a national number as {field} was accepted")


@st.composite
def clashing_keys(draw: st.DrawFn) -> list[str]:
    """Field names of which several mask alike: one national number in several spellings, its
    masked form written out (with or without a suffix), and other names."""
    names: list[str] = []
    for digits in draw(st.lists(numbers, min_size=1, max_size=2)):
        spellings = [
            digits,
            format_nn(digits),
            f"{digits[:6]} {digits[6:9]} {digits[9:]}",
            masked_nn(digits),
            f"{masked_nn(digits)} (2)",
            f"{masked_nn(digits)} (3)",
        ]
        names += draw(st.lists(st.sampled_from(spellings), min_size=1, max_size=6, unique=True))
    names += draw(st.lists(st.text(min_size=1, max_size=8), max_size=3))
    return draw(st.permutations(list(dict.fromkeys(names))))


@settings(max_examples=200)
@given(names=clashing_keys())
def test_field_names_that_mask_alike_are_all_kept_under_distinct_names(names: list[str]) -> None:
    record = {name: index for index, name in enumerate(names)}  # each value says whose it was
    body = {
        "event_id": "ev-1",
        "type": "employee.updated",
        "organisation_code": GENT,
        "employee_id": "E0001",
        "record": record,
    }
    stored = parse_event(json.dumps(body).encode()).to_inbox(RECEIVED, KEYRING).record
    assert stored is not None
    assert sorted(stored.values()) == list(range(len(names)))  # no value lost
    for name, index in stored.items():
        assert not find_national_ids(name)
        original = mask_national_ids(names[index])
        assert name == original or (name.startswith(f"{original} (") and name.endswith(")"))
    with tempfile.TemporaryDirectory() as folder:
        store = StateStore.open(Path(folder) / "state.db")
        try:
            assert store.add_event(
                parse_event(json.dumps(body).encode()).to_inbox(RECEIVED, KEYRING)
            )
            kept = store.event("ev-1")
        finally:
            store.close()
    assert kept is not None and kept.record == stored


def test_two_spellings_of_one_number_as_field_names_keep_both_values() -> None:
    digits = make_nn(dt.date(1990, 1, 1), serial=1)
    record = {digits: "first", format_nn(digits): "second", "name": "An"}
    body = {
        "event_id": "ev-1",
        "type": "employee.updated",
        "organisation_code": GENT,
        "employee_id": "E0001",
        "record": record,
    }
    stored = parse_event(json.dumps(body).encode()).to_inbox(RECEIVED, KEYRING).record
    assert stored == {
        masked_nn(digits): "first",
        f"{masked_nn(digits)} (2)": "second",
        "name": "An",
    }
