"""The state store: links person -> SCIM id, digests of what was pushed, managed memberships
and groups, what each target was learned to do, run history, the audit journal and the inbox.

`store` holds the StateStore, `schema` its migrations, `records` what its queries return,
`lock` the one-sync-at-a-time lock, `database` the connection to SQLite or PostgreSQL,
`transfer` the copy of a SQLite store into PostgreSQL, `backup` (and `postgres_backup`) the
commands' backups and restores, `run_marker` the store's own record of its last run and of a
restore.
"""

from connector.state.address import Location, PostgresAddress
from connector.state.lock import AdvisoryLock, StateLock, lock_path, service_lock_path, sync_lock
from connector.state.records import (
    Approval,
    ApprovalRefused,
    CorrelationCase,
    InboxEvent,
    JournalEntry,
    RunRecord,
    StateError,
)
from connector.state.schema import MIGRATIONS
from connector.state.store import StateStore, store_files

__all__ = [
    "MIGRATIONS",
    "AdvisoryLock",
    "Approval",
    "ApprovalRefused",
    "CorrelationCase",
    "InboxEvent",
    "JournalEntry",
    "Location",
    "PostgresAddress",
    "RunRecord",
    "StateError",
    "StateLock",
    "StateStore",
    "lock_path",
    "service_lock_path",
    "store_files",
    "sync_lock",
]
