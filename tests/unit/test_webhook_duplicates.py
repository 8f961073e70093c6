"""One event id, one event: the same body sent again is a duplicate (200), anything else under
that id is a different event (409), the record included.

The record is kept masked, so two records that differ only in a national number look alike in
the inbox; they are told apart by a keyed digest of the record as sent, which holds no number.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from connector.keys import Keyring
from connector.nationalid import find_national_ids
from connector.service.webhook import parse_event, same_event
from connector.state import InboxEvent, StateStore
from tests.factories import GENT, format_nn, make_nn

KEYRING = Keyring(b"the state store's secret in these tests")
RECEIVED = "2026-11-29T08:00:00.000+00:00"
NN = make_nn(dt.date(1985, 7, 30), serial=33)
SAME_BIRTH_DATE = make_nn(dt.date(1985, 7, 30), serial=35)  # masks alike: 85.07.30-***.**


def stored(record: Any = ..., keyring: Keyring = KEYRING, **fields: Any) -> InboxEvent:
    event: dict[str, Any] = {
        "event_id": "ev-1",
        "type": "employee.updated",
        "organisation_code": GENT,
        "employee_id": "E0001",
        **fields,
    }
    if record is not ...:
        event["record"] = record
    return parse_event(json.dumps(event).encode()).to_inbox(RECEIVED, keyring)


RECORD = {"national_id": NN, "end_date": "2026-11-30", "fte": 1, "manager": None}


@pytest.mark.parametrize(
    "again",
    [
        RECORD,
        dict(reversed(list(RECORD.items()))),  # another key order
        {**RECORD, "fte": 1.0},  # the same number written as a float
    ],
)
def test_the_same_event_sent_again_is_a_duplicate(again: dict[str, Any]) -> None:
    assert same_event(stored(RECORD), stored(again))


def test_no_record_and_an_empty_record_are_the_same_event() -> None:
    assert same_event(stored(), stored({}))
    assert same_event(stored(None), stored())


@pytest.mark.parametrize(
    ("what", "again"),
    [
        (
            "another national number, masked alike",
            stored({**RECORD, "national_id": SAME_BIRTH_DATE}),
        ),
        ("the number spelled otherwise", stored({**RECORD, "national_id": format_nn(NN)})),
        ("another end date", stored({**RECORD, "end_date": "2026-12-31"})),
        ("a field more", stored({**RECORD, "note": "x"})),
        ("a field less", stored({k: v for k, v in RECORD.items() if k != "manager"})),
        ("no record", stored()),
        ("another type", stored(RECORD, type="employee.terminated")),
        ("another employee", stored(RECORD, employee_id="E0002")),
        ("another organisation", stored(RECORD, organisation_code="OVO000001")),
    ],
)
def test_anything_else_under_the_same_id_is_a_different_event(what: str, again: InboxEvent) -> None:
    first = stored(RECORD)
    assert not same_event(first, again), what


def test_records_differing_only_in_a_masked_number_are_stored_alike_but_digested_apart() -> None:
    first, second = stored(RECORD), stored({**RECORD, "national_id": SAME_BIRTH_DATE})
    assert first.record == second.record  # what the inbox shows
    assert first.record_digest != second.record_digest


def test_the_digest_is_keyed_and_holds_no_national_number() -> None:
    event = stored(RECORD)
    other_key = stored(RECORD, keyring=Keyring(b"another state store's secret"))
    assert event.record_digest is not None and other_key.record_digest is not None
    assert event.record_digest != other_key.record_digest
    assert not find_national_ids(event.record_digest)
    assert NN not in event.record_digest


def test_an_event_stored_before_digests_is_compared_by_its_masked_record() -> None:
    legacy = dataclasses.replace(stored(RECORD), record_digest=None)
    assert same_event(legacy, stored(RECORD))
    assert not same_event(legacy, stored({**RECORD, "end_date": "2026-12-31"}))
    assert same_event(dataclasses.replace(stored(), record_digest=None), stored())


def test_the_inbox_keeps_the_digest_with_the_event(tmp_path: Path) -> None:
    event = stored(RECORD)
    store = StateStore.open(tmp_path / "state.db")
    try:
        assert store.add_event(event)
        assert not store.add_event(stored({**RECORD, "national_id": SAME_BIRTH_DATE}))
        kept = store.event("ev-1")
    finally:
        store.close()
    assert kept is not None
    assert kept.record_digest == event.record_digest
    assert same_event(kept, stored(RECORD))
    assert not same_event(kept, stored({**RECORD, "national_id": SAME_BIRTH_DATE}))
