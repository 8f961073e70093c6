"""Which installation a state store belongs to: a keyed fingerprint of the state secret it is
used with (never the secret itself), and the targets it has written to.

Person keys are keyed hashes of national numbers (`connector.keys`): a store used with another
secret finds nobody it knows, and a store restored from another installation's backup plans to
create, withdraw or deactivate the wrong people. The fingerprint lets both be refused.
"""

from __future__ import annotations

import uuid

from connector.state.database import Database
from connector.state.records import StateError

SECRET_FINGERPRINT = "secret_fingerprint"  # the row of `installation` holding it
STORE_ID = "store_id"  # the row holding the store's own random name


class Installation:
    """The StateStore's record of the installation it belongs to."""

    _db: Database

    def secret_fingerprint(self) -> str | None:
        """The fingerprint of the state secret this store is used with; None before it is
        recorded (a store from before it was kept, not opened by a sync since)."""
        row = self._db.execute(
            "SELECT value FROM installation WHERE name = ?", (SECRET_FINGERPRINT,)
        ).fetchone()
        return None if row is None else str(row[0])

    def claim_secret(self, fingerprint: str, secret_name: str) -> None:
        """Record the state secret's fingerprint if the store has none yet; StateError if it
        was made with another secret (`secret_name` says where this one comes from)."""
        self._db.execute(
            "INSERT INTO installation (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (SECRET_FINGERPRINT, fingerprint),
        )
        recorded = self.secret_fingerprint()
        if recorded is not None and recorded != fingerprint:
            raise StateError(other_secret(f"the state store {self._db.where}", secret_name))

    def store_id(self) -> str:
        """The store's own name, random, made on first use: two configurations that reach the
        same store (however its address is written) read the same one."""
        self._db.execute(
            "INSERT INTO installation (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (STORE_ID, uuid.uuid4().hex),
        )
        row = self._db.execute(
            "SELECT value FROM installation WHERE name = ?", (STORE_ID,)
        ).fetchone()
        return str(row[0])

    def targets(self) -> tuple[str, ...]:
        """The targets this store learned about (`target.connect.target_key`), in order."""
        rows = self._db.execute("SELECT base_url FROM target_profiles ORDER BY base_url")
        return tuple(str(row[0]) for row in rows.fetchall())


def other_secret(what: str, secret_name: str) -> str:
    """The error for a store made with another state secret than the configured one."""
    return (
        f"{what} was made with another state secret than this installation's ({secret_name}):"
        " its people are known by keys of that secret, so every person would look new and"
        " the people it manages would be changed wrongly. Use the state secret it was made"
        " with, or the state store that belongs to this secret"
    )
