"""The HR webhook's contract: the event body, its HMAC-SHA256 signature, and their checks.

The HR side signs every request with the shared secret:

    signature = hex(HMAC-SHA256(secret, timestamp + "." + body))
    X-Scim-Connector-Timestamp: <timestamp, unix seconds>
    X-Scim-Connector-Signature: sha256=<signature>

and the connector accepts it when the signature matches (constant-time compare) and the
timestamp is within five minutes of its own clock. Everything here is pure: no I/O, the clock
is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from connector.keys import Keyring
from connector.nationalid import find_national_ids, mask_national_ids
from connector.organisation import InvalidOrganisationCode, normalise_organisation_code
from connector.state import InboxEvent

TIMESTAMP_HEADER = "X-Scim-Connector-Timestamp"
SIGNATURE_HEADER = "X-Scim-Connector-Signature"
SIGNATURE_SCHEME = "sha256"
REPLAY_WINDOW_SECONDS = 300
EVENT_TYPES = ("employee.created", "employee.updated", "employee.terminated")

EventType = Literal["employee.created", "employee.updated", "employee.terminated"]

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(rf"{SIGNATURE_SCHEME}=([0-9a-fA-F]{{64}})")
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}$"
ORGANISATION_CODE_PATTERN = r"^\s*(?:[Oo][Vv][Oo][0-9]{6}|(?:[Bb][Ee])?[0-9 .\-]+)\s*$"
EMPLOYEE_ID_PATTERN = r"^[^\x00-\x20\x7f]+(?: +[^\x00-\x20\x7f]+)*$"


class Refused(Exception):
    """A webhook request the connector does not accept: HTTP status and a reason to answer."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason


def unauthorized(reason: str) -> Refused:
    """401: the request is not signed with the shared secret (or not recently)."""
    return Refused(401, "unauthorized", reason)


def bad_request(reason: str) -> Refused:
    """400: the body is not a valid event."""
    return Refused(400, "bad_request", reason)


def too_large(limit: int) -> Refused:
    """413: the body is larger than `service.max_body_bytes`."""
    return Refused(413, "too_large", f"the body is larger than {limit} bytes")


def too_slow(timeout: float) -> Refused:
    """408: the body was not all sent within `service.body_timeout_seconds`."""
    return Refused(408, "timeout", f"the body was not sent within {timeout:g} seconds")


# ---------------------------------------------------------------------------- signature


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for a body sent at `timestamp`: `sha256=<hex>`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_SCHEME}={mac.hexdigest()}"


def signed_headers(secret: str, body: bytes, now: float) -> dict[str, str]:
    """The two headers the HR side sends with `body` at unix time `now`."""
    timestamp = str(int(now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(
    secret: str, timestamp: str | None, signature_header: str | None, body: bytes, now: float
) -> None:
    """Raise Refused (401) unless the body is signed with `secret` within the replay window."""
    if not timestamp or not _TIMESTAMP.fullmatch(timestamp.strip()):
        raise unauthorized(f"{TIMESTAMP_HEADER} must be the unix time in seconds")
    if not signature_header:
        raise unauthorized(f"{SIGNATURE_HEADER} is missing")
    match = _SIGNATURE.fullmatch(signature_header.strip())
    if match is None:
        raise unauthorized(f"{SIGNATURE_HEADER} must be {SIGNATURE_SCHEME}=<64 hex digits>")
    timestamp = timestamp.strip()
    expected = signature(secret, timestamp, body)
    given = f"{SIGNATURE_SCHEME}={match.group(1).lower()}"
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise unauthorized("the signature does not match the body and timestamp")
    if abs(now - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        raise unauthorized(
            f"{TIMESTAMP_HEADER} is more than {REPLAY_WINDOW_SECONDS} seconds from the "
            "connector's clock"
        )


# ---------------------------------------------------------------------------- body


def _organisation_code(value: str) -> str:
    try:
        return normalise_organisation_code(value)
    except InvalidOrganisationCode as exc:
        raise ValueError(str(exc)) from None


RecordValue = str | int | float | bool | None
PLAIN_VALUES = "a record holds only text, numbers, booleans or null values"
_SHOWN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,40}")


class _Problem(ValueError):
    """A problem with a part of the body, where pydantic would name a less readable place."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def _shown_key(key: str) -> str:
    """A record's field name as a reason shows it: as is when short and plain, else quoted and
    cut (national numbers are masked in every reason anyway)."""
    if _SHOWN_KEY.fullmatch(key):
        return key
    quoted = json.dumps(key, ensure_ascii=False)
    return quoted if len(quoted) <= 42 else quoted[:40] + '…"'


class WebhookEvent(BaseModel):
    """The body of `POST /hr/events`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "event_id": "hr-2026-000123",
                "type": "employee.terminated",
                "organisation_code": "0207451227",
                "employee_id": "E1234",
            }
        },
    )

    event_id: Annotated[
        str,
        Field(
            pattern=EVENT_ID_PATTERN,
            description="Unique id of the event, chosen by the HR system; a repeated id is a "
            "duplicate and processed once. Letters, digits and ._:@/+=- (at most 128).",
        ),
    ]
    type: Annotated[
        EventType,
        Field(description="What happened; every type leads to a resync of the employee."),
    ]
    organisation_code: Annotated[
        str,
        Field(
            min_length=1,
            max_length=32,
            description="KBO number (10 digits, dots, spaces or BE prefix allowed) or OVO code.",
            # Documented, not enforced as such: the validator's reasons are clearer.
            json_schema_extra={"pattern": ORGANISATION_CODE_PATTERN},
        ),
        AfterValidator(_organisation_code),
    ]
    employee_id: Annotated[
        str,
        Field(
            pattern=EMPLOYEE_ID_PATTERN,
            max_length=128,
            description="The HR key of the work relation, unique per organisation.",
        ),
    ]
    record: Annotated[
        dict[str, RecordValue] | None,
        Field(
            description="Optional: the employee's HR record (the HR input's field names). "
            "Kept with the event for the audit trail, national numbers masked; the HR export "
            "stays the source of truth.",
        ),
    ] = None

    @field_validator("record", mode="before")
    @classmethod
    def _record_holds_plain_values(cls, value: Any) -> Any:
        # Before pydantic's own check, which names every alternative of every nested value.
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _Problem("record", "must be a JSON object of field names and values, or null")
        nested = [key for key, item in value.items() if isinstance(item, dict | list)]
        if nested:
            where = ", ".join(f"record.{_shown_key(key)}" for key in nested[:5])
            more = f" (and {len(nested) - 5} more)" if len(nested) > 5 else ""
            raise _Problem(where + more, PLAIN_VALUES)
        return value

    @model_validator(mode="after")
    def _no_national_number_as_a_key(self) -> WebhookEvent:
        # The event id and the employee id are keys: kept, logged and answered as they are, so
        # masking would merge distinct events. Such an event is refused instead.
        for name in ("event_id", "employee_id"):
            if find_national_ids(getattr(self, name)):
                raise ValueError(f"{name} must not be or contain a national number")
        return self

    @model_validator(mode="after")
    def _record_is_about_this_employee(self) -> WebhookEvent:
        if self.record is None:
            return self
        employee_id = self.record.get("employee_id")
        if employee_id not in (None, "") and str(employee_id) != self.employee_id:
            raise ValueError("record.employee_id differs from employee_id")
        code = self.record.get("organisation_code")
        if code not in (None, ""):
            try:
                same = normalise_organisation_code(str(code)) == self.organisation_code
            except InvalidOrganisationCode:
                same = False
            if not same:
                raise ValueError("record.organisation_code differs from organisation_code")
        return self

    def to_inbox(self, received_at: str, keyring: Keyring) -> InboxEvent:
        """The event as the inbox keeps it: the record's national numbers masked, and a keyed
        digest of the record as sent (to tell a retry from another event under the same id)."""
        record = None if self.record is None else masked_record(self.record)
        canonical = canonical_record(self.record)
        return InboxEvent(
            event_id=self.event_id,
            received_at=received_at,
            type=self.type,
            organisation_code=self.organisation_code,
            employee_id=self.employee_id,
            record=record,
            record_digest=None if canonical is None else keyring.record_digest(canonical),
        )


def canonical_record(record: dict[str, RecordValue] | None) -> str | None:
    """The record as one text whatever its spelling in the body: keys sorted, no spaces, a whole
    number the same as int or float (`1` = `1.0`); None when there is none or it is empty."""
    if not record:
        return None
    plain = {
        key: int(value)
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53
        else value
        for key, value in record.items()
    }
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def same_event(stored: InboxEvent, received: InboxEvent) -> bool:
    """Whether `received` is the event stored under its id sent again (a duplicate), rather than
    a different event (409): same type, organisation, employee and record. The record is
    compared by its keyed digest; for an event stored before digests were kept, by its masked
    form (the best there is)."""
    if (stored.type, stored.organisation_code, stored.employee_id) != (
        received.type,
        received.organisation_code,
        received.employee_id,
    ):
        return False
    if stored.record_digest is None and stored.record:
        return stored.record == received.record
    return stored.record_digest == received.record_digest


def masked_record(record: dict[str, RecordValue]) -> dict[str, RecordValue]:
    """The record with national numbers masked in its field names and values. Field names that
    mask alike (`90010100123` and `90.01.01-001.23`) are all kept: the first in the body keeps
    the masked name, the next ones get ` (2)`, ` (3)`, ... (a name no other field has)."""
    names = [mask_national_ids(key) for key in record]
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    taken = set(names)
    given: set[str] = set()
    masked: dict[str, RecordValue] = {}
    for name, value in zip(names, record.values(), strict=True):
        if seen[name] > 1 and name in given:
            number = 2
            while f"{name} ({number})" in taken:
                number += 1
            name = f"{name} ({number})"
            taken.add(name)
        given.add(name)
        masked[name] = _masked_value(value)
    return masked


def _masked_value(value: RecordValue) -> RecordValue:
    """A record value with its national numbers masked, whatever its JSON type: a number that
    holds one (85073003328, 85073003328.0) is kept as the masked text instead."""
    if isinstance(value, str):
        return mask_national_ids(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        text = str(int(value))
    else:
        text = repr(value)
    masked = mask_national_ids(text)
    if masked != text or mask_national_ids(repr(value)) != repr(value):
        return masked
    return value


def parse_event(body: bytes) -> WebhookEvent:
    """The event in a request body; Refused (400) with a reason that never echoes the input."""
    try:
        return WebhookEvent.model_validate_json(body)
    except ValidationError as exc:
        raise bad_request(_reason(exc)) from None


def _reason(exc: ValidationError) -> str:
    """Pydantic's errors as `field: message` lines, without the values sent."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "body"
        message = error["msg"]
        if error["type"] == "json_invalid":
            where, message = "body", "is not valid JSON"
        elif error["type"] == "model_type":
            where, message = "body", "must be a JSON object"
        elif error["type"] == "value_error":
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, _Problem):
                where, message = cause.where, cause.message
            else:
                message = str(cause if cause is not None else message)
        problems.append(f"{where}: {message}")
    return mask_national_ids("; ".join(problems[:10]))


def event_schema() -> dict[str, Any]:
    """The JSON Schema of the event body (for the OpenAPI description)."""
    return WebhookEvent.model_json_schema()
