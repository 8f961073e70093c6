"""The state store's webhook inbox: every accepted HR event, stored before it is answered,
until a run has processed it."""

from __future__ import annotations

import json
from collections.abc import Iterable

from connector.state.base import StoreBase
from connector.state.records import _INBOX_COLUMNS, InboxEvent, _inbox_event


class WebhookInbox(StoreBase):
    """The inbox's events, kept by the StateStore."""

    # --- the webhook inbox -------------------------------------------------------------------

    def add_event(self, event: InboxEvent) -> bool:
        """Store a received event; False (and nothing changed) if its id is already there."""
        cursor = self._db.execute(
            "INSERT INTO inbox (event_id, received_at, type, organisation_code, employee_id, "
            "record, record_digest) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(event_id) DO NOTHING",
            (
                event.event_id,
                event.received_at,
                event.type,
                event.organisation_code,
                event.employee_id,
                json.dumps(event.record, sort_keys=True) if event.record is not None else None,
                event.record_digest,
            ),
        )
        return cursor.rowcount == 1

    def event(self, event_id: str) -> InboxEvent | None:
        """One event of the inbox, processed or not."""
        row = self._db.execute(
            f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE event_id = ?", (event_id,)
        ).fetchone()
        return _inbox_event(row) if row else None

    def pending_events(self, limit: int = 100) -> list[InboxEvent]:
        """Events not processed yet, oldest first."""
        rows = self._db.execute(
            f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE processed_at IS NULL "
            "ORDER BY received_at, rowid LIMIT ?",
            (limit,),
        )
        return [_inbox_event(row) for row in rows]

    def pending_event_count(self) -> int:
        """How many events wait to be processed."""
        row = self._db.execute("SELECT count(*) FROM inbox WHERE processed_at IS NULL").fetchone()
        return int(row[0])

    def finish_events(self, event_ids: Iterable[str], outcome: str, run_id: str | None) -> None:
        """Mark events processed, with the run that processed them and how it went."""
        now = self._now()
        with self.transaction():
            self._db.executemany(
                "UPDATE inbox SET processed_at = ?, outcome = ?, run_id = ? "
                "WHERE event_id = ? AND processed_at IS NULL",
                [(now, outcome, run_id, event_id) for event_id in event_ids],
            )

    def retry_events(self, event_ids: Iterable[str], error: str) -> None:
        """Count a failed attempt at processing events; they stay pending."""
        with self.transaction():
            self._db.executemany(
                "UPDATE inbox SET attempts = attempts + 1, last_error = ? WHERE event_id = ?",
                [(error, event_id) for event_id in event_ids],
            )
