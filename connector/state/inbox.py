"""The state store's webhook inbox: every accepted HR event, stored before it is answered,
until a run has processed it; and the slots of scheduled syncs.

Several `serve` replicas may share one store (PostgreSQL). A replica claims the events it
processes: the oldest claimable event and the other pending events of that employee, for a
lease (`claimed_until`, unix seconds) that it renews while it works. Claiming skips the rows
another replica is claiming at that moment (`FOR UPDATE SKIP LOCKED`) and the events under a
live lease; an event whose replica died is claimed again once its lease has run out. A failed
event is released with a time before which nobody retries it.

Scheduled syncs fire once across replicas: a slot (`schedule_runs`) is claimed by one replica
for a lease it renews until the slot's sync has ended, then marked done. A slot whose replica
died first (its lease run out, not done) is claimed by another replica, which runs it; a slot
done is never claimed again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from connector.state.base import StoreBase
from connector.state.records import _INBOX_COLUMNS, InboxEvent, _inbox_event

# A slot another replica may claim: not done, and its lease run out (or handed back).
_SLOT_FREE = (
    "{table}done_at IS NULL AND ({table}claimed_until IS NULL OR {table}claimed_until <= ?)"
)


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

    def claim_events(
        self, token: str, now: float, lease_seconds: float, limit: int = 100
    ) -> list[InboxEvent]:
        """Claim, under `token` until `now + lease_seconds`, the oldest claimable pending event
        and the other claimable pending events of its employee (at most `limit`, oldest first);
        [] when nothing is claimable."""
        free = "processed_at IS NULL AND (claimed_until IS NULL OR claimed_until <= ?)"
        with self.transaction():
            first = self._db.execute(
                f"SELECT organisation_code, employee_id FROM inbox WHERE {free} "
                f"ORDER BY received_at, rowid LIMIT 1{self._db.dialect.skip_locked()}",
                (now,),
            ).fetchone()
            if first is None:
                return []
            organisation_code, employee_id = first
            self._db.execute(
                f"UPDATE inbox SET claim = ?, claimed_until = ? WHERE {free} AND event_id IN "
                f"(SELECT event_id FROM inbox WHERE {free} AND organisation_code = ? "
                "AND employee_id = ? ORDER BY received_at, rowid LIMIT ?)",
                (token, now + lease_seconds, now, now, organisation_code, employee_id, limit),
            )
            rows = self._db.execute(
                f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE claim = ? AND processed_at IS NULL "
                "ORDER BY received_at, rowid",
                (token,),
            ).fetchall()
        return [_inbox_event(row) for row in rows]

    def renew_claim(self, token: str, until: float) -> int:
        """Extend the lease of the events still claimed under `token`; how many there are."""
        cursor = self._db.execute(
            "UPDATE inbox SET claimed_until = ? WHERE claim = ? AND processed_at IS NULL",
            (until, token),
        )
        return cursor.rowcount

    def release_claims(self, token: str | None = None) -> None:
        """Release the pending events claimed under `token` (None: every claim, for a service
        that knows it is the only one on its store), so they can be claimed again at once."""
        where = "claim IS NOT NULL" if token is None else "claim = ?"
        self._db.execute(
            f"UPDATE inbox SET claim = NULL, claimed_until = NULL WHERE {where} "
            "AND processed_at IS NULL",
            () if token is None else (token,),
        )

    def claim_schedule_slot(
        self, slot: str, replica: str, now: float, lease_seconds: float
    ) -> bool:
        """Claim a scheduled sync's slot (e.g. `schedule:2026-12-01T02:00:00+00:00`) for
        `replica` until `now + lease_seconds`; False when it is done, or another replica (or
        this one) holds it under a live lease."""
        cursor = self._db.execute(
            "INSERT INTO schedule_runs (slot, replica, claimed_at, claimed_until) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(slot) DO UPDATE SET replica = excluded.replica, "
            "claimed_at = excluded.claimed_at, claimed_until = excluded.claimed_until "
            f"WHERE {_SLOT_FREE.format(table='schedule_runs.')}",
            (slot, replica, self._now(), now + lease_seconds, now),
        )
        return cursor.rowcount == 1

    def abandoned_schedule_slots(self, now: float) -> list[str]:
        """The slots claimed by a replica that neither ended their sync nor renewed its lease
        (it died, or stopped and handed them back), oldest first."""
        rows = self._db.execute(
            f"SELECT slot FROM schedule_runs WHERE {_SLOT_FREE.format(table='')} ORDER BY slot",
            (now,),
        )
        return [str(slot) for (slot,) in rows]

    def renew_schedule_slots(self, slots: Iterable[str], replica: str, until: float) -> int:
        """Extend the lease of `replica`'s slots not done yet; how many it still holds."""
        held = 0
        with self.transaction():
            for slot in slots:
                held += self._db.execute(
                    "UPDATE schedule_runs SET claimed_until = ? WHERE slot = ? AND replica = ? "
                    "AND done_at IS NULL",
                    (until, slot, replica),
                ).rowcount
        return held

    def finish_schedule_slots(self, slots: Iterable[str], replica: str) -> None:
        """Mark `replica`'s slots done: their sync has ended (never run again)."""
        now = self._now()
        with self.transaction():
            self._db.executemany(
                "UPDATE schedule_runs SET done_at = ?, claimed_until = NULL "
                "WHERE slot = ? AND replica = ? AND done_at IS NULL",
                [(now, slot, replica) for slot in slots],
            )

    def release_schedule_slots(self, slots: Iterable[str], replica: str) -> None:
        """Hand `replica`'s slots not done back, for another replica to claim at once."""
        with self.transaction():
            self._db.executemany(
                "UPDATE schedule_runs SET claimed_until = NULL "
                "WHERE slot = ? AND replica = ? AND done_at IS NULL",
                [(slot, replica) for slot in slots],
            )

    def pending_event_count(self) -> int:
        """How many events wait to be processed."""
        row = self._db.execute("SELECT count(*) FROM inbox WHERE processed_at IS NULL").fetchone()
        return int(row[0])

    def finish_events(self, event_ids: Iterable[str], outcome: str, run_id: str | None) -> None:
        """Mark events processed, with the run that processed them and how it went."""
        now = self._now()
        with self.transaction():
            self._db.executemany(
                "UPDATE inbox SET processed_at = ?, outcome = ?, run_id = ?, claim = NULL, "
                "claimed_until = NULL WHERE event_id = ? AND processed_at IS NULL",
                [(now, outcome, run_id, event_id) for event_id in event_ids],
            )

    def retry_events(
        self, event_ids: Iterable[str], error: str, not_before: float | None = None
    ) -> None:
        """Count a failed attempt at processing events; they stay pending, released from their
        claim, and no replica claims them before `not_before` (unix seconds; None: at once)."""
        with self.transaction():
            self._db.executemany(
                "UPDATE inbox SET attempts = attempts + 1, last_error = ?, claim = NULL, "
                "claimed_until = ? WHERE event_id = ?",
                [(error, not_before, event_id) for event_id in event_ids],
            )
