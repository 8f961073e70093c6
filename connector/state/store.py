"""The state store: links person -> SCIM id, digests of what was pushed, managed memberships
and groups, run history and the audit journal; in a SQLite file or a PostgreSQL database.

Persons are keyed by a keyed pseudonym (see `keys.py`); no national number is stored in clear.
The schema is versioned; `MIGRATIONS` brings any older store up to date when it is opened.
The parts of the store are in modules named after what they hold (`runs`, `inbox`, `cases`,
`uncertain`); `database` holds the connection and the differences between the databases.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path

from connector.hr.records import EmployeeKey
from connector.known import Digests, KnownState, KnownUser, MappedFrom, PushedRelation
from connector.state.address import Location
from connector.state.cases import CorrelationCases
from connector.state.database import Dialect, connect, sqlite_files
from connector.state.inbox import WebhookInbox
from connector.state.installation import Installation
from connector.state.records import Clock, StateError, _utc_now
from connector.state.run_marker import StoredRunMarker
from connector.state.runs import RunHistory
from connector.state.schema import MIGRATIONS, apply
from connector.state.uncertain import UncertainMarks
from connector.target.profile import TargetProfile


class StateStore(
    RunHistory, WebhookInbox, CorrelationCases, UncertainMarks, Installation, StoredRunMarker
):
    """A connection to one state store (a SQLite file or a PostgreSQL database)."""

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, where: Location, clock: Clock = _utc_now, *, durable: bool = False) -> StateStore:
        """Open (creating if needed) the store at `where` and bring its schema up to date.

        `durable` (SQLite): every commit reaches the disk before it returns (synchronous=FULL),
        also against power loss; the default survives a crash of the process, not of the
        machine. PostgreSQL commits are as durable as the server is configured to make them.

        A new SQLite store is created mode 0600 (its new folders 0700), whatever the umask;
        SQLite gives its `-wal` and `-shm` files the mode of the database file.
        """
        db = connect(where, durable=durable)
        store = cls(db, clock)
        try:
            store._migrate()
        except BaseException:
            db.close()
            raise
        return store

    @classmethod
    def open_read_only(cls, where: Location) -> StateStore | None:
        """Open an existing store without changing it; None when there is none yet."""
        if isinstance(where, Path) and not where.exists():
            return None
        db = connect(where, read_only=True)
        try:
            version = db.schema_version()
            if version is None:
                db.close()
                return None
            _check_version(version, db.where, read_only=True)
        except BaseException:
            db.close()
            raise
        return cls(db)

    def _migrate(self) -> None:
        """Apply the migrations this store lacks, each in its own transaction (one migrating
        connection at a time: the version is read again under the lock)."""
        version = self._db.schema_version()
        if version is not None:
            _check_version(version, self._db.where)
            if version == len(MIGRATIONS):
                return
        while True:
            with self.transaction():
                self._db.lock_schema()
                self._db.prepare_versioning()
                version = self._db.schema_version() or 0
                _check_version(version, self._db.where)
                if version == len(MIGRATIONS):
                    return
                apply(MIGRATIONS[version], self._db)
                self._db.set_schema_version(version + 1)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @property
    def dialect(self) -> Dialect:
        """Which database holds this store."""
        return self._db.dialect

    # --- what the planner needs ----------------------------------------------------------

    def load_known(self) -> KnownState:
        """Everything the connector knows it manages."""
        # At 150,000 people every object per person counts: one pass over the users with their
        # relations and memberships joined in (no intermediate dicts of sets), and equal small
        # values (organisation codes, masked labels, dates, sets of rights) shared.
        codes: dict[str, str] = {}
        labels: dict[str, str] = {}  # masked national numbers: people born the same day share one
        days: dict[str, dt.date] = {}
        right_sets: dict[str, frozenset[str]] = {"": frozenset()}
        no_keys: frozenset[EmployeeKey] = frozenset()

        def date(text: str | None) -> dt.date | None:
            if text is None:
                return None
            day = days.get(text)
            if day is None:
                day = days[text] = dt.date.fromisoformat(text)
            return day

        def rights(names: str | None) -> frozenset[str]:
            names = names or ""
            found = right_sets.get(names)
            if found is None:
                found = right_sets[names] = frozenset(names.split(_UNIT))
            return found

        def employee_keys(pairs: str | None) -> frozenset[EmployeeKey]:
            if not pairs:
                return no_keys
            keys = []
            for pair in pairs.split(_RECORD):
                org, _, emp = pair.partition(_UNIT)
                keys.append(EmployeeKey(codes.setdefault(org, org), emp))
            return frozenset(keys)

        users = {}
        for row in self._db.stream(_load_users(self._db.dialect)):
            key, label, scim_id, user_name, active, paths, packed, whole = row[:8]
            deactivated_on, source, since, until, relations, owned, foreign = row[8:]
            users[key] = KnownUser(
                key=key,
                label=labels.setdefault(label, label),
                scim_id=scim_id,
                user_name=user_name,
                active=bool(active),
                digests=Digests.unpack(paths, packed, whole),
                memberships=rights(owned),
                foreign_memberships=rights(foreign),
                employee_keys=employee_keys(relations),
                deactivated_on=date(deactivated_on),
                mapped_from=MappedFrom(source, date(since), date(until)) if source else None,
            )
        groups = dict(self._db.execute("SELECT right_name, scim_id FROM groups").fetchall())
        return KnownState(users=users, groups=groups)

    def pushed_relations(self, keys: Iterable[str]) -> dict[str, tuple[PushedRelation, ...]]:
        """The work relations last pushed for these people (those recorded; few are asked)."""
        found: dict[str, tuple[PushedRelation, ...]] = {}
        for key in keys:
            row = self._db.execute(
                "SELECT pushed_relations FROM users WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and row[0] is not None:
                found[key] = tuple(PushedRelation.from_json(r) for r in json.loads(row[0]))
        return found

    def person_for_employee(self, key: EmployeeKey) -> str | None:
        """The person key that holds this employee key, if the connector manages them."""
        row = self._db.execute(
            "SELECT person_key FROM relations WHERE organisation_code = ? AND employee_id = ?",
            (key.organisation_code, key.employee_id),
        ).fetchone()
        return row[0] if row else None

    # --- what apply records --------------------------------------------------------------

    def save_user(self, user: KnownUser) -> None:
        """Insert or replace a managed person (memberships are kept separately). Two people are
        never linked to one SCIM id: StateError if another person holds `user.scim_id`."""
        with self.transaction():
            other = self.person_for_account(user.scim_id)
            if other is not None and other != user.key:
                raise StateError(
                    f"{user.label}: account {user.scim_id} is linked to another person already"
                )
            self._db.execute(
                "INSERT INTO users (key, label, scim_id, user_name, active, digests, "
                "digest_paths, digest_values, digest_whole, deactivated_on, mapped_source, "
                "mapped_since, mapped_until, pushed_relations) "
                "VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET label=excluded.label, "
                "scim_id=excluded.scim_id, user_name=excluded.user_name, "
                "active=excluded.active, digest_paths=excluded.digest_paths, "
                "digest_values=excluded.digest_values, digest_whole=excluded.digest_whole, "
                "mapped_source=excluded.mapped_source, mapped_since=excluded.mapped_since, "
                "mapped_until=excluded.mapped_until, "
                "deactivated_on=excluded.deactivated_on, failed_runs=0, last_error=NULL, "
                "pushed_relations=coalesce(excluded.pushed_relations, users.pushed_relations)",
                (
                    user.key,
                    user.label,
                    user.scim_id,
                    user.user_name,
                    int(user.active),
                    *user.digests.pack(),
                    _iso(user.deactivated_on),
                    *_mapped_from_columns(user.mapped_from),
                    _pushed_relations_column(user.pushed_relations),
                ),
            )
            self._db.execute("DELETE FROM relations WHERE person_key = ?", (user.key,))
            self._db.executemany(
                "INSERT INTO relations VALUES (?, ?, ?)",
                [(user.key, k.organisation_code, k.employee_id) for k in user.employee_keys],
            )

    def forget_user(self, key: str) -> None:
        """Remove a person (after a delete in the target)."""
        with self.transaction():
            self._db.execute("DELETE FROM users WHERE key = ?", (key,))

    def add_membership(self, key: str, right: str, owned: bool = True) -> None:
        """Record a membership: added by the connector (owned), or found already there."""
        self._db.execute(
            "INSERT INTO memberships VALUES (?, ?, ?) ON CONFLICT(person_key, right_name) "
            "DO UPDATE SET owned = excluded.owned",
            (key, right, int(owned)),
        )

    def remove_membership(self, key: str, right: str) -> None:
        """Record that the connector removed this person from the right's group."""
        self._db.execute(
            "DELETE FROM memberships WHERE person_key = ? AND right_name = ?", (key, right)
        )

    def save_group(self, right: str, scim_id: str, display_name: str) -> None:
        """Record the SCIM id of the group that carries a right."""
        self._db.execute(
            "INSERT INTO groups VALUES (?, ?, ?) ON CONFLICT(right_name) DO UPDATE SET "
            "scim_id=excluded.scim_id, display_name=excluded.display_name",
            (right, scim_id, display_name),
        )

    def record_run_failures(
        self, run_id: str, failed: dict[str, tuple[str, str]], succeeded: Iterable[str]
    ) -> dict[str, int]:
        """Count a failed run for each failed person (key -> (label, reason)); forget the
        failures of those who succeeded. Returns consecutive failed runs per failed person."""
        with self.transaction():
            self._db.executemany(
                "DELETE FROM person_failures WHERE person_key = ?", [(k,) for k in succeeded]
            )
            self._db.executemany(
                "INSERT INTO person_failures VALUES (?, ?, 1, ?, ?) ON CONFLICT(person_key) "
                "DO UPDATE SET failed_runs = person_failures.failed_runs + 1, "
                "label = excluded.label, last_error = excluded.last_error, "
                "last_run_id = excluded.last_run_id",
                [(key, label, reason, run_id) for key, (label, reason) in failed.items()],
            )
        counts = {}
        for key in failed:
            row = self._db.execute(
                "SELECT failed_runs FROM person_failures WHERE person_key = ?", (key,)
            ).fetchone()
            counts[key] = int(row[0])
        return counts

    # --- what each target was learned to do ------------------------------------------------

    def target_profile(self, base_url: str) -> TargetProfile:
        """What the connector learned about the target at `base_url` (empty if nothing yet)."""
        row = self._db.execute(
            "SELECT profile FROM target_profiles WHERE base_url = ?", (base_url,)
        ).fetchone()
        return TargetProfile.from_json(row[0] if row else None)

    def save_target_profile(self, base_url: str, profile: TargetProfile) -> None:
        """Keep what was learned about the target at `base_url`."""
        self._db.execute(
            "INSERT INTO target_profiles (base_url, profile, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (base_url) DO UPDATE SET profile = excluded.profile, "
            "updated_at = excluded.updated_at",
            (base_url, profile.to_json(), self._now()),
        )

    # --- the input files' columns (header drift) ---------------------------------------------

    def source_columns(self) -> dict[str, tuple[str, ...]]:
        """The contract columns of each input file ("hr", "grants") the last sync that applied
        its plan read (empty before the first)."""
        rows = self._db.execute("SELECT source, columns FROM source_columns").fetchall()
        return {source: tuple(filter(None, text.split(","))) for source, text in rows}

    def save_source_columns(self, run_id: str, columns: dict[str, tuple[str, ...]]) -> None:
        """Keep the columns a sync that applied its plan read, for the next run to compare."""
        with self.transaction():
            for source, names in columns.items():
                self._db.execute(
                    "INSERT INTO source_columns (source, columns, run_id, updated_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET "
                    "columns = excluded.columns, run_id = excluded.run_id, "
                    "updated_at = excluded.updated_at",
                    (source, ",".join(names), run_id, self._now()),
                )

    def ping(self) -> None:
        """Raise StateError unless the store answers a query."""
        try:
            self._db.execute("SELECT 1").fetchone()
        except StateError as exc:
            raise StateError(f"the state store does not answer: {exc}") from None


_UNIT, _RECORD = "\x1f", "\x1e"  # separators in `_load_users`' aggregated columns


def _load_users(dialect: Dialect) -> str:
    """The query `load_known` reads the users with, their relations and memberships joined in."""
    relations = dialect.string_agg(f"organisation_code || '{_UNIT}' || employee_id", f"'{_RECORD}'")
    rights = dialect.string_agg("right_name", f"'{_UNIT}'", order=True)
    return f"""
    SELECT key, label, scim_id, user_name, active, digest_paths, digest_values, digest_whole,
        deactivated_on, mapped_source, mapped_since, mapped_until,
        (SELECT {relations} FROM relations WHERE person_key = key),
        (SELECT {rights} FROM
            (SELECT right_name FROM memberships WHERE person_key = key AND owned != 0
                ORDER BY 1) AS owned),
        (SELECT {rights} FROM
            (SELECT right_name FROM memberships WHERE person_key = key AND owned = 0
                ORDER BY 1) AS foreign_)
    FROM users
"""


def _check_version(version: int, where: str, *, read_only: bool = False) -> None:
    """StateError unless a store at `version` can be used as it is (read-only) or migrated."""
    if version > len(MIGRATIONS):
        raise StateError(f"state store {where} is from a newer scim-connector")
    if read_only and version < len(MIGRATIONS):
        raise StateError(
            f"state store {where} needs an upgrade: run `scim-connector sync` once "
            "(or any command that writes) to migrate it"
        )


def store_files(path: Path) -> tuple[Path, Path, Path]:
    """The files of the SQLite store at `path`: the database, and SQLite's `-wal` and `-shm`."""
    return sqlite_files(path)


def _pushed_relations_column(relations: tuple[PushedRelation, ...] | None) -> str | None:
    if relations is None:
        return None
    return json.dumps([r.to_json() for r in relations], separators=(",", ":"))


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _mapped_from_columns(mapped: MappedFrom | None) -> tuple[bytes | None, str | None, str | None]:
    if mapped is None:
        return None, None, None
    return mapped.source, _iso(mapped.since), _iso(mapped.until)
