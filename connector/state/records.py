"""The state store's records: what its queries give back, and its errors."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connector.errors import ConnectorError
from connector.hr.records import EmployeeKey
from connector.people_display import masked_of


class StateError(ConnectorError):
    """The state store cannot be opened or is from a newer version of the connector."""


class ApprovalRefused(StateError):
    """`approve RUN_ID` cannot approve that run: unknown, not stopped, applied or superseded."""


@dataclass(frozen=True, slots=True)
class Approval:
    """An approval of a stopped run's plan: usable once, by a sync planning the same changes,
    until it expires."""

    run_id: str
    fingerprint: str
    approved_at: dt.datetime
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One line of the audit trail."""

    run_id: str
    at: str
    person: str | None  # masked label
    kind: str
    phase: str  # "intent", "done", "failed", "note"
    detail: str | None


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """One HR webhook event in the inbox; `processed_at` is None while it waits."""

    event_id: str
    received_at: str
    type: str
    organisation_code: str
    employee_id: str
    record: dict[str, Any] | None = None
    attempts: int = 0
    last_error: str | None = None
    processed_at: str | None = None
    run_id: str | None = None
    outcome: str | None = None
    record_digest: str | None = None  # keyed digest of the record as sent (`to_inbox`)

    @property
    def employee(self) -> EmployeeKey:
        """The work relation the event is about."""
        return EmployeeKey(self.organisation_code, self.employee_id)


_INBOX_COLUMNS = (
    "event_id, received_at, type, organisation_code, employee_id, record, attempts, "
    "last_error, processed_at, run_id, outcome, record_digest"
)


def _inbox_event(row: tuple[Any, ...]) -> InboxEvent:
    values = list(row)
    values[5] = json.loads(values[5]) if values[5] is not None else None
    return InboxEvent(*values)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run, as the history keeps it."""

    run_id: str
    command: str
    as_of: str
    dry_run: bool
    started_at: str
    finished_at: str | None
    status: str
    exit_code: int | None


Clock = Callable[[], dt.datetime]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class CorrelationCase:
    """A person for whom an account was found that may not be adopted without a human's
    word: both sides, as reports show them (no national number in clear)."""

    person_key: str
    label: str  # the person's label (`people_display.label_of`: keys, masked number)
    name: str | None
    employee_keys: tuple[str, ...]  # ORG:ID
    scim_id: str  # the account's
    account_user_name: str | None
    account_external_id: str | None
    account_national_id: str | None  # masked
    reason: str
    status: str = "open"  # open (person held) | resolved (applied by the next run)
    resolution: str | None = None  # link | new_account
    link_scim_id: str | None = None
    opened_at: str | None = None
    run_id: str | None = None  # the run that found it

    def person_text(self) -> str:
        """The person as reports name them: employee keys, name, masked number."""
        keys = ", ".join(self.employee_keys) or "(no employee key)"
        name = f" {self.name}" if self.name else ""
        return f"{keys}{name} ({masked_of(self.label)})"

    def account_text(self) -> str:
        """The account as reports name it: SCIM id, userName, externalId, masked number."""
        parts = [f"account {self.scim_id}"]
        if self.account_user_name:
            parts.append(f"userName {self.account_user_name}")
        if self.account_external_id:
            parts.append(f"externalId {self.account_external_id}")
        if self.account_national_id:
            parts.append(f"national number {self.account_national_id}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The case in a `--format json` report: both sides, no national number in clear."""
        return {
            "person": {
                "employees": list(self.employee_keys),
                "name": self.name,
                "national_id": masked_of(self.label),
            },
            "account": {
                "scim_id": self.scim_id,
                "user_name": self.account_user_name,
                "external_id": self.account_external_id,
                "national_id": self.account_national_id,
            },
            "reason": self.reason,
            "status": self.status,
            "opened_at": self.opened_at,
            "run_id": self.run_id,
        }
