"""The HR webhook's contract: signatures, the replay window, event bodies and their reasons."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import pytest

from connector.keys import Keyring
from connector.service import webhook
from connector.service.webhook import Refused, parse_event, signature, signed_headers, verify
from tests.factories import GENT, format_kbo, format_nn, make_nn, masked_nn

KEYRING = Keyring(b"the state store's secret in these tests")
SECRET = "7bd5d47e446fcec2a3d811736110e5781bcccea696762e6116c6e9c92d99bf35"  # openssl rand -hex 32
NOW = 1_800_000_000.0
NN = make_nn(dt.date(1985, 7, 30), serial=33)


def body(**fields: Any) -> bytes:
    event: dict[str, Any] = {
        "event_id": "ev-1",
        "type": "employee.terminated",
        "organisation_code": GENT,
        "employee_id": "E0001",
    }
    event.update(fields)
    return json.dumps({k: v for k, v in event.items() if v is not ...}).encode()


def refusal(call: Any) -> Refused:
    with pytest.raises(Refused) as caught:
        call()
    return caught.value


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    payload = body()
    expected = hmac.new(SECRET.encode(), b"1800000000." + payload, hashlib.sha256).hexdigest()
    assert signature(SECRET, "1800000000", payload) == f"sha256={expected}"
    headers = signed_headers(SECRET, payload, NOW)
    assert headers == {
        "X-Scim-Connector-Timestamp": "1800000000",
        "X-Scim-Connector-Signature": f"sha256={expected}",
    }


def test_a_correctly_signed_recent_body_passes() -> None:
    payload = body()
    headers = signed_headers(SECRET, payload, NOW - 299)
    verify(
        SECRET, headers[webhook.TIMESTAMP_HEADER], headers[webhook.SIGNATURE_HEADER], payload, NOW
    )
    upper = headers[webhook.SIGNATURE_HEADER].upper().replace("SHA256=", "sha256=")
    verify(SECRET, headers[webhook.TIMESTAMP_HEADER], upper, payload, NOW)  # hex in any case


@pytest.mark.parametrize(
    ("secret", "tamper", "reason"),
    [
        ("another secret", lambda b: b, "does not match"),
        (SECRET, lambda b: b.replace(b"E0001", b"E0002"), "does not match"),
    ],
)
def test_a_wrong_secret_or_a_changed_body_is_unauthorized(
    secret: str, tamper: Any, reason: str
) -> None:
    payload = body()
    headers = signed_headers(secret, payload, NOW)
    refused = refusal(
        lambda: verify(
            SECRET,
            headers[webhook.TIMESTAMP_HEADER],
            headers[webhook.SIGNATURE_HEADER],
            tamper(payload),
            NOW,
        )
    )
    assert (refused.status, refused.error) == (401, "unauthorized")
    assert reason in refused.reason


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_a_timestamp_outside_five_minutes_is_unauthorized_even_if_signed(offset: int) -> None:
    payload = body()
    headers = signed_headers(SECRET, payload, NOW + offset)
    refused = refusal(
        lambda: verify(
            SECRET,
            headers[webhook.TIMESTAMP_HEADER],
            headers[webhook.SIGNATURE_HEADER],
            payload,
            NOW,
        )
    )
    assert refused.status == 401 and "300 seconds" in refused.reason


@pytest.mark.parametrize(
    ("timestamp", "signature_header"),
    [
        (None, "sha256=" + "0" * 64),
        ("", "sha256=" + "0" * 64),
        ("12:00", "sha256=" + "0" * 64),
        ("-5", "sha256=" + "0" * 64),
        ("1800000000", None),
        ("1800000000", "0" * 64),
        ("1800000000", "sha1=" + "0" * 40),
        ("1800000000", "sha256=" + "z" * 64),
    ],
)
def test_missing_or_malformed_headers_are_unauthorized(
    timestamp: str | None, signature_header: str | None
) -> None:
    refused = refusal(lambda: verify(SECRET, timestamp, signature_header, body(), NOW))
    assert refused.status == 401


def test_a_valid_event_is_parsed_with_its_organisation_code_normalised() -> None:
    event = parse_event(body(organisation_code=f"BE {format_kbo(GENT)}"))
    assert event.organisation_code == GENT
    assert event.type == "employee.terminated"
    assert event.record is None


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (b"not json", "body: is not valid JSON"),
        (b"[1, 2]", "body: must be a JSON object"),
        (body(type="employee.moved"), "type:"),
        (body(event_id=...), "event_id:"),
        (body(event_id="has spaces"), "event_id:"),
        (body(employee_id=" E1"), "employee_id:"),
        (body(employee_id=""), "employee_id:"),
        (body(organisation_code="0207451228"), "organisation_code:"),
        (body(unexpected="x"), "unexpected:"),
        (body(record=["a"]), "record:"),
        (body(record={"employee_id": "E0002"}), "record.employee_id differs"),
        (body(record={"organisation_code": "OVO000001"}), "record.organisation_code differs"),
    ],
)
def test_a_bad_body_is_a_bad_request_with_a_reason(payload: bytes, where: str) -> None:
    refused = refusal(lambda: parse_event(payload))
    assert (refused.status, refused.error) == (400, "bad_request")
    assert where in refused.reason


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"nested": {"str": "x", "int": 1}}, "record.nested: " + webhook.PLAIN_VALUES),
        ({"given_name": "An", "roles": ["a", "b"]}, "record.roles: " + webhook.PLAIN_VALUES),
        ({"a": [], "b": {}}, "record.a, record.b: " + webhook.PLAIN_VALUES),
        ({"a field name": [1]}, 'record."a field name": ' + webhook.PLAIN_VALUES),
        ("text", "record: must be a JSON object of field names and values, or null"),
    ],
)
def test_a_record_with_nested_values_is_refused_with_one_clear_reason(
    record: Any, reason: str
) -> None:
    refused = refusal(lambda: parse_event(body(record=record)))
    assert (refused.status, refused.reason) == (400, reason)


def test_reasons_never_echo_a_national_number() -> None:
    payload = body(record={NN: {"nested": NN}}, employee_id=NN + " ")
    refused = refusal(lambda: parse_event(payload))
    assert NN not in refused.reason


def test_the_record_is_kept_for_the_inbox_with_national_numbers_masked() -> None:
    record = {"national_id": NN, "given_name": "An", "note": f"was {format_nn(NN)}", "n": 3}
    event = parse_event(body(record=record, employee_id="E0001"))
    stored = event.to_inbox("2026-11-29T08:00:00.000+00:00", KEYRING)
    assert stored.record is not None
    text = json.dumps(stored.record)
    assert NN not in text and format_nn(NN) not in text
    assert stored.record["national_id"] == masked_nn(NN)
    assert stored.record["note"] == f"was {masked_nn(NN)}"
    assert stored.record["given_name"] == "An" and stored.record["n"] == 3
    assert (stored.event_id, stored.organisation_code, stored.employee_id) == (
        "ev-1",
        GENT,
        "E0001",
    )


def test_the_published_schema_lists_the_three_event_types() -> None:
    schema = webhook.event_schema()
    assert set(schema["required"]) == {"event_id", "type", "organisation_code", "employee_id"}
    assert schema["properties"]["type"]["enum"] == list(webhook.EVENT_TYPES)
    assert schema["additionalProperties"] is False
