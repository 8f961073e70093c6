"""The state store's schema, as one ordered list of migrations for both databases:
`MIGRATIONS[n - 1]` brings a store from version n - 1 to n (SQLite's `user_version`; on
PostgreSQL the table `schema_version`).

A migration is SQL as SQLite spells it (`Dialect.ddl` gives PostgreSQL's types: BYTEA for
BLOB, identity columns for AUTOINCREMENT), a `PerDialect` pair where more differs, or a
Python function run on the store's `Database` (data migrations, on either database).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

from connector.keys import DIGEST_SIZE
from connector.known import Digests
from connector.state.database import Database


def _packed_digests(db: Database) -> None:
    """Migration 4: per-attribute digests packed (`known.Digests`) instead of a JSON object,
    and what the pushed values were mapped from (`known.MappedFrom`, unknown for old rows).

    The old digests were the first 32 hex digits of the same HMAC; their first DIGEST_SIZE
    bytes are what `Keyring.digest` gives now, so nothing is pushed again because of this.
    The whole digest cannot be derived: until a person next changes, their digests are compared
    path by path (correct, a little slower). The old `digests` column stays (SQLite before 3.35
    cannot drop a column), emptied and unused.
    """
    db.script(
        db.dialect.ddl(
            "ALTER TABLE users ADD COLUMN digest_paths TEXT NOT NULL DEFAULT '';"
            "ALTER TABLE users ADD COLUMN digest_values BLOB NOT NULL DEFAULT x'';"
            "ALTER TABLE users ADD COLUMN digest_whole BLOB NOT NULL DEFAULT x'';"
            "ALTER TABLE users ADD COLUMN mapped_source BLOB;"
            "ALTER TABLE users ADD COLUMN mapped_since TEXT;"
            "ALTER TABLE users ADD COLUMN mapped_until TEXT"
        )
    )
    rows = db.execute("SELECT key, digests FROM users").fetchall()
    for key, text in rows:
        old: dict[str, str] = json.loads(text or "{}")
        digests = Digests.of({p: bytes.fromhex(h)[:DIGEST_SIZE] for p, h in old.items()})
        db.execute(
            "UPDATE users SET digest_paths = ?, digest_values = ?, digest_whole = ?, "
            "digests = '' WHERE key = ?",
            (*digests.pack(), key),
        )


def _one_person_per_account(db: Database) -> None:
    """Migration 6: correlation cases (`state.cases`), and two people never linked to one SCIM
    id (a UNIQUE index on users.scim_id).

    A store that already links several people to one account (an adoption without proof of
    identity, before this version) cannot tell which of them the account is: every one of those
    links is dropped and becomes an open correlation case, so that the next run reports them
    and holds those people until `scim-connector resolve` says which account is whose. What
    the store knew of those people (their memberships included) goes with the link: the
    connector manages them again once their case is resolved.
    """
    db.script(
        db.dialect.ddl(
            """
        CREATE TABLE correlation_cases (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            person_key TEXT NOT NULL,
            label TEXT NOT NULL,
            name TEXT,
            employee_keys TEXT NOT NULL,
            scim_id TEXT NOT NULL,
            account_user_name TEXT,
            account_external_id TEXT,
            account_national_id TEXT,
            reason TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open',
            resolution TEXT,
            link_scim_id TEXT,
            opened_at TEXT NOT NULL,
            run_id TEXT,
            resolved_at TEXT,
            closed_at TEXT,
            closed_by_run TEXT
        )
        """
        )
    )
    db.execute(
        "CREATE UNIQUE INDEX correlation_cases_one_per_person "
        "ON correlation_cases (person_key) WHERE status != 'closed'"
    )
    shared = db.execute(
        "SELECT key, label, scim_id, user_name FROM users WHERE scim_id IN "
        "(SELECT scim_id FROM users GROUP BY scim_id HAVING count(*) > 1) ORDER BY scim_id, key"
    ).fetchall()
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    for key, label, scim_id, user_name in shared:
        employees = db.execute(
            "SELECT organisation_code || ':' || employee_id FROM relations WHERE person_key = ? "
            "ORDER BY 1",
            (key,),
        ).fetchall()
        db.execute(
            "INSERT INTO correlation_cases (person_key, label, employee_keys, scim_id, "
            "account_user_name, reason, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                label,
                " ".join(e for (e,) in employees),
                scim_id,
                user_name,
                "the state store linked this account to another person as well "
                "(found when the state store was upgraded)",
                now,
            ),
        )
        db.execute("DELETE FROM users WHERE key = ?", (key,))
    db.execute("CREATE UNIQUE INDEX users_one_per_account ON users (scim_id)")


@dataclass(frozen=True)
class PerDialect:
    """A migration whose SQL differs between the databases beyond their types."""

    sqlite: str
    postgresql: str


Migration = str | PerDialect | Callable[[Database], None]


def apply(migration: Migration, db: Database) -> None:
    """Run one migration on `db` (inside the caller's transaction)."""
    if isinstance(migration, PerDialect):
        db.script(migration.sqlite if db.dialect.name == "sqlite" else migration.postgresql)
    elif isinstance(migration, str):
        db.script(db.dialect.ddl(migration))
    else:
        migration(db)


# The inbox (migration 2). Its events are taken oldest first, in order of arrival among equal
# times: SQLite's `rowid` gives that order; on PostgreSQL an identity column of that name does.
_INBOX = """
    CREATE TABLE inbox (
        event_id TEXT PRIMARY KEY,
        received_at TEXT NOT NULL,
        type TEXT NOT NULL,
        organisation_code TEXT NOT NULL,
        employee_id TEXT NOT NULL,
        record TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        processed_at TEXT,
        run_id TEXT,
        outcome TEXT{rowid}
    );
    CREATE INDEX inbox_pending ON inbox (processed_at, received_at);
    """

MIGRATIONS: list[Migration] = [
    # 1: the first schema.
    """
    CREATE TABLE users (
        key TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        scim_id TEXT NOT NULL,
        user_name TEXT NOT NULL,
        active INTEGER NOT NULL,
        digests TEXT NOT NULL,
        deactivated_on TEXT,
        failed_runs INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
    );
    CREATE TABLE relations (
        person_key TEXT NOT NULL REFERENCES users(key) ON DELETE CASCADE,
        organisation_code TEXT NOT NULL,
        employee_id TEXT NOT NULL,
        PRIMARY KEY (person_key, organisation_code, employee_id)
    );
    CREATE INDEX relations_by_employee ON relations (organisation_code, employee_id);
    CREATE TABLE memberships (
        person_key TEXT NOT NULL REFERENCES users(key) ON DELETE CASCADE,
        right_name TEXT NOT NULL,
        owned INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (person_key, right_name)
    );
    CREATE TABLE groups (
        right_name TEXT PRIMARY KEY,
        scim_id TEXT NOT NULL,
        display_name TEXT NOT NULL
    );
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        command TEXT NOT NULL,
        as_of TEXT NOT NULL,
        dry_run INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,
        counts TEXT,
        exit_code INTEGER
    );
    CREATE TABLE journal (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        at TEXT NOT NULL,
        person_key TEXT,
        label TEXT,
        kind TEXT NOT NULL,
        phase TEXT NOT NULL,
        detail TEXT
    );
    CREATE INDEX journal_by_person ON journal (person_key);
    CREATE INDEX journal_by_run ON journal (run_id);
    """,
    # 2: the HR webhook's inbox (`serve`): every accepted event, stored before it is answered.
    # `record` is the event's optional HR record as JSON, national numbers masked.
    PerDialect(
        sqlite=_INBOX.format(rowid=""),
        postgresql=_INBOX.format(rowid=",\n        rowid BIGINT GENERATED BY DEFAULT AS IDENTITY"),
    ),
    # 3: consecutive failed runs per person (created or not yet), and approvals of stopped runs.
    """
    CREATE TABLE person_failures (
        person_key TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        failed_runs INTEGER NOT NULL,
        last_error TEXT,
        last_run_id TEXT
    );
    CREATE TABLE approvals (
        run_id TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        approved_at TEXT NOT NULL,
        used_by_run TEXT
    );
    ALTER TABLE runs ADD COLUMN fingerprint TEXT
    """,
    # 4: packed digests (a tenth of the memory and no JSON to parse per person).
    _packed_digests,
    # 5: what the connector learned each target really does (`connector.target.profile`).
    """
    CREATE TABLE target_profiles (
        base_url TEXT PRIMARY KEY,
        profile TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    # 6: the contract columns of each input file ("hr", "grants") as the last sync that applied
    # its plan read them: a column missing later is header drift (`connector.hr.columns`).
    """
    CREATE TABLE source_columns (
        source TEXT PRIMARY KEY,
        columns TEXT NOT NULL,
        run_id TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    # 7: correlation cases, and one person per SCIM id (see `_one_person_per_account`).
    _one_person_per_account,
    # 8: writes whose outcome is unknown, marked before they are sent and cleared once their
    # answer is checked: what they touched is read back from the target by the next run.
    # `right_name` is '' for the user itself, else the right whose membership was written.
    """
    CREATE TABLE uncertain (
        person_key TEXT NOT NULL,
        right_name TEXT NOT NULL,
        kind TEXT NOT NULL,
        run_id TEXT NOT NULL,
        PRIMARY KEY (person_key, right_name)
    )
    """,
    # 9: each managed person's work relations as last pushed (`known.PushedRelation`, a JSON
    # list), so that a rejected row keeps its relation as pushed and a vanished person is
    # ended like a leaver. Unknown (NULL) for people not written since.
    "ALTER TABLE users ADD COLUMN pushed_relations TEXT",
    # 10: a keyed digest of each webhook event's record as sent (`Keyring.record_digest`), so
    # that an event id sent again with another record is told apart (409) from a retry (200),
    # though the record is kept masked. NULL for events stored before, and without a record.
    "ALTER TABLE inbox ADD COLUMN record_digest TEXT",
    # 11: several `serve` replicas on one store. An event being processed is claimed (`claim`,
    # a token of the replica's claim) until `claimed_until` (unix seconds, a lease the replica
    # renews while it works): when its replica dies, another takes it over once the lease has
    # run out; a failed event waits there until its retry. Each scheduled sync's slot
    # (`schedule_runs`) is claimed by the one replica that runs it.
    """
    ALTER TABLE inbox ADD COLUMN claim TEXT;
    ALTER TABLE inbox ADD COLUMN claimed_until DOUBLE PRECISION;
    CREATE TABLE schedule_runs (
        slot TEXT PRIMARY KEY,
        replica TEXT NOT NULL,
        claimed_at TEXT NOT NULL
    )
    """,
    # 12: which installation the store belongs to (`state.installation`): the fingerprint of
    # its state secret (`Keyring.fingerprint`), recorded by the first sync that opens it.
    """
    CREATE TABLE installation (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )
    """,
    # 13: a schedule slot's claim is a lease (`claimed_until`, unix seconds) that its replica
    # renews until the slot's sync has ended (`done_at`): a slot whose replica died before its
    # sync ended is taken over by another replica once the lease has run out. The slots claimed
    # before this version are taken as done.
    """
    ALTER TABLE schedule_runs ADD COLUMN claimed_until DOUBLE PRECISION;
    ALTER TABLE schedule_runs ADD COLUMN done_at TEXT;
    UPDATE schedule_runs SET done_at = claimed_at
    """,
    # 14: the run marker in the store, shared by every replica (`state.run_marker`): the last
    # run that began writing to the target, the transaction and timeline that wrote it
    # (PostgreSQL: a store loaded from a dump or recovered to a point in time is told by them),
    # and why the next run must recover ownership (a restore), until a run has done so.
    """
    CREATE TABLE run_marker (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        run_id TEXT,
        written_in TEXT,
        recover TEXT
    )
    """,
]
