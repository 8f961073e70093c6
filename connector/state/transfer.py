"""Moving a SQLite state store into an empty PostgreSQL database (`state migrate --to`).

The SQLite store is first brought up to this version's schema; the PostgreSQL database gets
the same schema from the same migrations, then every row of every table is copied in one
transaction (identity counters moved past the copied ids, the inbox's arrival order kept),
and the row counts of both sides are compared before it commits: a difference rolls
everything back. Both stores are locked meanwhile (no sync can write to either).

What is not in the store stays where it is: the state secret (the SQLite store's is a file
beside it, or the configured `secret_env` / `secret_file`) must be given to the PostgreSQL
configuration as `secret_file` / `secret_env`; the run marker stays beside `[state] path`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from connector.errors import ConfigError
from connector.state.address import (
    SCHEMA_NAME,
    PostgresAddress,
    is_postgres_url,
    url_password,
)
from connector.state.database import POSTGRESQL, Database, connect
from connector.state.lock import AdvisoryLock, StateLock, lock_path
from connector.state.records import StateError
from connector.state.store import StateStore

if TYPE_CHECKING:
    from connector.config import Settings

_BATCH = 5000
# Identity columns on PostgreSQL (SQLite's AUTOINCREMENT ids, and the inbox's rowid).
_IDENTITIES = {"journal": "id", "correlation_cases": "id", "inbox": "rowid"}


@dataclass(frozen=True)
class Transferred:
    """What was copied: rows per table (equal on both sides)."""

    rows: dict[str, int]


def copy_to_postgres(source: Path, target: PostgresAddress) -> Transferred:
    """Copy the SQLite store at `source` into the empty PostgreSQL database at `target`;
    raises StateError (nothing left half-copied)."""
    if not source.exists():
        raise StateError(f"no state store at {source}: nothing to migrate")
    with StateLock(lock_path(source)), AdvisoryLock(target):
        StateStore.open(source).close()  # up to this version's schema
        _check_empty(target)
        StateStore.open(target).close()  # the same schema, from the same migrations
        reader, writer = connect(source, read_only=True), connect(target)
        try:
            return _copy(reader, writer)
        finally:
            reader.close()
            writer.close()


def _check_empty(target: PostgresAddress) -> None:
    db = connect(target)
    try:
        tables = db.tables()
    finally:
        db.close()
    if tables:
        what = "schema" if target.schema else "database"
        raise StateError(
            f"the {what} {target} is not empty (it has table {tables[0]}): migrate into a new, "
            f"empty {what}"
        )


def _copy(reader: Database, writer: Database) -> Transferred:
    writer.begin()
    try:
        rows = copy_rows(reader, writer)
    except BaseException:
        writer.rollback()
        raise
    writer.commit()
    return Transferred(rows)


def copy_rows(reader: Database, writer: Database) -> dict[str, int]:
    """Copy every row of every table of the store `reader` into the same, empty tables of
    `writer` (inside the caller's transaction), either way between SQLite and PostgreSQL;
    rows per table, verified equal on both sides (StateError otherwise)."""
    tables = reader.tables()
    missing = set(tables) - set(writer.tables())
    if missing:
        raise StateError(f"the state store {writer.where} lacks tables {sorted(missing)}")
    ordered = sorted(tables, key=lambda name: name != "users")  # others refer to users
    rows: dict[str, int] = {}
    for table in ordered:
        columns = reader.columns(table)
        if _IDENTITIES.get(table) == "rowid" and "rowid" not in columns:
            columns.append("rowid")  # SQLite's own, the inbox's arrival order
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        insert = f"INSERT INTO {table} ({names}) VALUES ({marks})"
        cursor = reader.execute(f"SELECT {names} FROM {table}")
        while batch := cursor.fetchmany(_BATCH):
            writer.executemany(insert, batch)
        rows[table] = _count(reader, table)
        if _count(writer, table) != rows[table]:
            raise StateError(
                f"table {table}: {rows[table]} rows in {reader.where}, "
                f"{_count(writer, table)} copied: nothing copied"
            )
        identity = _IDENTITIES.get(table)
        if identity is not None and writer.dialect.name == POSTGRESQL:
            writer.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{identity}'), "
                f"coalesce(max({identity}), 0) + 1, false) FROM {table}"
            )
    return rows


def _count(db: Database, table: str) -> int:
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def migration_target(
    url: str,
    password_env: str | None,
    sslmode: str | None,
    sslrootcert: Path | None,
    schema: str | None = None,
) -> PostgresAddress:
    """The `--to` database of `state migrate`; ConfigError naming the option at fault."""
    if not is_postgres_url(url):
        raise ConfigError("--to", "must be a postgresql:// URL (postgresql://user@host/db)")
    if url_password(url) is not None:
        raise ConfigError("--to", "must not contain a password: give --password-env NAME")
    password = None
    if password_env is not None:
        password = os.environ.get(password_env)
        if not password:
            raise ConfigError("--password-env", f"environment variable {password_env} is not set")
    if schema is not None and not SCHEMA_NAME.fullmatch(schema):
        raise ConfigError(
            "--schema", f"{schema!r} is not a schema name: lower-case letters, digits and _"
        )
    return PostgresAddress(url, password, sslmode, sslrootcert, schema=schema)


def migration_done(
    settings: Settings, to: PostgresAddress, rows: dict[str, int], password_env: str | None = None
) -> str:
    """What `state migrate` says once done: what was copied, and the configuration to use
    (never the secret or the password themselves)."""
    state = settings.state
    if state.secret_file is not None:
        secret = f'secret_file = "{state.secret_file}"'
    elif state.secret_env is not None:
        secret = f'secret_env = "{state.secret_env}"'
    else:
        secret = f'secret_file = "{state.generated_secret_path}"'
    copied = ", ".join(f"{table} {count}" for table, count in rows.items())
    return (
        f"Copied the state store {state.path} into {to} ({copied} rows; counts verified).\n"
        "To use it, set in [state] of the configuration:\n"
        f'  url = "{to.url}"\n'
        + (f'  schema = "{to.schema}"\n' if to.schema else "")
        + f'  password_env = "{password_env or "..."}"   (or password_file: the database '
        "password)\n"
        f"  {secret}   (the secret people are keyed with: keep it private,\n"
        "  and give every machine that runs the connector the same one)\n"
        "Keep `path`: with `url` it only places the run marker. The SQLite file is left as it "
        "was; remove it once the connector runs on PostgreSQL."
    )
