"""The state store (SQLite): links person -> SCIM id, digests of what was pushed, managed
memberships and groups, run history and the audit journal.

Persons are keyed by a keyed pseudonym (see `keys.py`); no national number is stored in clear.
The schema is versioned; `MIGRATIONS` brings any older store up to date when it is opened.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from connector.hr.records import EmployeeKey
from connector.known import Digests, KnownState, KnownUser, MappedFrom, PushedRelation
from connector.private_files import PRIVATE_FILE_MODE, create_private_file
from connector.state.cases import CorrelationCases
from connector.state.records import (
    _INBOX_COLUMNS,
    Approval,
    ApprovalRefused,
    Clock,
    InboxEvent,
    JournalEntry,
    RunRecord,
    StateError,
    _inbox_event,
    _utc_now,
)
from connector.state.schema import MIGRATIONS
from connector.state.uncertain import UncertainMarks
from connector.target.profile import TargetProfile


class StateStore(CorrelationCases, UncertainMarks):
    """A connection to one state store file."""

    def __init__(self, db: sqlite3.Connection, clock: Clock = _utc_now) -> None:
        self._db = db
        self._clock = clock

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, clock: Clock = _utc_now, *, durable: bool = False) -> StateStore:
        """Open (creating if needed) the store at `path` and bring its schema up to date.

        `durable`: every commit reaches the disk before it returns (synchronous=FULL), also
        against power loss; the default survives a crash of the process, not of the machine.

        A new store is created mode 0600 (its new folders 0700), whatever the umask; SQLite
        gives its `-wal` and `-shm` files the mode of the database file.
        """
        try:
            created = create_private_file(path)
            db = sqlite3.connect(path, isolation_level=None, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            if created:  # in case this SQLite build does not copy the mode: they are new too
                for sidecar in store_files(path)[1:]:
                    if sidecar.exists():
                        os.chmod(sidecar, PRIVATE_FILE_MODE)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open state store {path}: {exc}") from None
        store = cls(db, clock)
        store._migrate(path)
        return store

    @classmethod
    def open_read_only(cls, path: Path) -> StateStore | None:
        """Open an existing store without changing it; None when there is none yet."""
        if not path.exists():
            return None
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise StateError(f"cannot read state store {path}: {exc}") from None
        if version > len(MIGRATIONS):
            raise StateError(f"state store {path} is from a newer scim-connector")
        if version < len(MIGRATIONS):
            raise StateError(
                f"state store {path} needs an upgrade: run `scim-connector sync` once "
                "(or any command that writes) to migrate it"
            )
        return cls(db)

    def _migrate(self, path: Path) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StateError(f"state store {path} is from a newer scim-connector")
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                if callable(migration):
                    migration(self._db)
                else:
                    for statement in filter(str.strip, migration.split(";")):
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the enclosed writes atomically.

        Re-entrant: a transaction opened inside another joins it, and only the outermost one
        commits (or, on an exception, rolls back everything). Never await inside one: the
        connection is shared, so another task's writes would join it.
        """
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _now(self) -> str:
        return _stamp(self._clock())

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
        for row in self._db.execute(_LOAD_USERS):
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
                "DO UPDATE SET failed_runs = failed_runs + 1, label = excluded.label, "
                "last_error = excluded.last_error, last_run_id = excluded.last_run_id",
                [(key, label, reason, run_id) for key, (label, reason) in failed.items()],
            )
        counts = {}
        for key in failed:
            row = self._db.execute(
                "SELECT failed_runs FROM person_failures WHERE person_key = ?", (key,)
            ).fetchone()
            counts[key] = int(row[0])
        return counts

    # --- approvals of runs a safety check stopped ----------------------------------------

    def record_stopped(self, run_id: str, command: str, as_of: dt.date, fingerprint: str) -> None:
        """Record a run the safety check stopped, with the fingerprint of its plan."""
        self._db.execute(
            "INSERT INTO runs (run_id, command, as_of, dry_run, started_at, finished_at, status, "
            "exit_code, fingerprint) VALUES (?, ?, ?, 0, ?, ?, 'stopped', 3, ?)",
            (run_id, command, as_of.isoformat(), self._now(), self._now(), fingerprint),
        )

    def approve(self, run_id: str, valid_for: dt.timedelta) -> Approval:
        """Approve a stopped run's plan, for one use within `valid_for`; raises ApprovalRefused
        for a run that is unknown, was not stopped, whose approval was used, or whose plan a
        later run of the same command superseded."""
        row = self._db.execute(
            "SELECT status, fingerprint, command, started_at FROM runs WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            raise ApprovalRefused(f"no run {run_id} in the state store")
        status, fingerprint, command, started_at = row
        if status != "stopped" or not fingerprint:
            raise ApprovalRefused(
                f"run {run_id} was not stopped by a safety check (it is {status}): "
                "there is nothing to approve"
            )
        used = self._db.execute(
            "SELECT used_by_run FROM approvals WHERE run_id = ? AND used_by_run IS NOT NULL",
            (run_id,),
        ).fetchone()
        if used is not None:
            raise ApprovalRefused(
                f"run {run_id} was already approved and its plan applied by run {used[0]}; "
                "an approval is used once"
            )
        later = self._db.execute(
            "SELECT run_id, status FROM runs WHERE command = ? AND dry_run = 0 "
            "AND started_at > ? AND run_id != ? ORDER BY started_at DESC LIMIT 1",
            (command, started_at, run_id),
        ).fetchone()
        if later is not None:
            what = "stopped too" if later[1] == "stopped" else f"that run is {later[1]}"
            raise ApprovalRefused(
                f"run {run_id}'s plan was superseded by a later {command}, run {later[0]} "
                f"({what}); approve the latest stopped run, if any, instead"
            )
        now = self._clock()
        self._db.execute(
            "INSERT INTO approvals VALUES (?, ?, ?, NULL) ON CONFLICT(run_id) "
            "DO UPDATE SET approved_at = excluded.approved_at",
            (run_id, fingerprint, _stamp(now)),
        )
        return Approval(run_id, str(fingerprint), now, now + valid_for)

    def use_approval(self, fingerprint: str, run_id: str, valid_for: dt.timedelta) -> str | None:
        """Consume an unused, unexpired approval of a plan with this fingerprint; the approved
        run's id."""
        since = _stamp(self._clock() - valid_for)
        with self.transaction():
            row = self._db.execute(
                "SELECT run_id FROM approvals WHERE fingerprint = ? AND used_by_run IS NULL "
                "AND approved_at >= ? ORDER BY approved_at LIMIT 1",
                (fingerprint, since),
            ).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE approvals SET used_by_run = ? WHERE run_id = ?", (run_id, row[0])
            )
        return str(row[0])

    def expired_approval(self, fingerprint: str, valid_for: dt.timedelta) -> Approval | None:
        """The latest unused approval of a plan with this fingerprint that has expired."""
        row = self._db.execute(
            "SELECT run_id, approved_at FROM approvals WHERE fingerprint = ? "
            "AND used_by_run IS NULL AND approved_at < ? ORDER BY approved_at DESC LIMIT 1",
            (fingerprint, _stamp(self._clock() - valid_for)),
        ).fetchone()
        if row is None:
            return None
        approved_at = dt.datetime.fromisoformat(row[1])
        return Approval(str(row[0]), fingerprint, approved_at, approved_at + valid_for)

    # --- runs and journal ------------------------------------------------------------------

    def begin_run(self, run_id: str, command: str, as_of: dt.date, dry_run: bool) -> None:
        """Record that a run started."""
        self._db.execute(
            "INSERT INTO runs (run_id, command, as_of, dry_run, started_at, status) "
            "VALUES (?, ?, ?, ?, ?, 'running')",
            (run_id, command, as_of.isoformat(), int(dry_run), self._now()),
        )

    def finish_run(self, run_id: str, status: str, counts: dict[str, int], exit_code: int) -> None:
        """Record how a run ended."""
        self._db.execute(
            "UPDATE runs SET finished_at = ?, status = ?, counts = ?, exit_code = ? "
            "WHERE run_id = ?",
            (self._now(), status, json.dumps(counts), exit_code, run_id),
        )

    def journal(
        self,
        run_id: str,
        kind: str,
        phase: str,
        person_key: str | None = None,
        label: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Append one line to the audit journal (written before and after every write)."""
        self._db.execute(
            "INSERT INTO journal (run_id, at, person_key, label, kind, phase, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, self._now(), person_key, label, kind, phase, detail),
        )

    def history(
        self, *, person_key: str | None = None, run_id: str | None = None, limit: int = 1000
    ) -> list[JournalEntry]:
        """The audit trail of one person or one run, oldest first."""
        if person_key is not None:
            where, arg = "person_key = ?", person_key
        elif run_id is not None:
            where, arg = "run_id = ?", run_id
        else:
            raise ValueError("history needs a person or a run")
        rows = self._db.execute(
            f"SELECT run_id, at, label, kind, phase, detail FROM journal WHERE {where} "
            "ORDER BY id LIMIT ?",
            (arg, limit),
        )
        return [JournalEntry(*row) for row in rows]

    def last_journal_entry(
        self, person_key: str, kinds: tuple[str, ...], detail: str
    ) -> JournalEntry | None:
        """The latest journal line of a person with one of `kinds` and exactly this detail."""
        marks = ", ".join("?" for _ in kinds)
        row = self._db.execute(
            "SELECT run_id, at, label, kind, phase, detail FROM journal "
            f"WHERE person_key = ? AND detail = ? AND kind IN ({marks}) ORDER BY id DESC LIMIT 1",
            (person_key, detail, *kinds),
        ).fetchone()
        return JournalEntry(*row) if row else None

    def has_applied_run(self) -> bool:
        """True iff a sync (or resync) has ever applied a plan here: ended, with or without
        failures (before that, syncs are the initial load)."""
        row = self._db.execute(
            "SELECT 1 FROM runs WHERE NOT dry_run AND status IN ('done', 'failed') LIMIT 1"
        ).fetchone()
        return row is not None

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent runs, newest first."""
        rows = self._db.execute(
            "SELECT run_id, command, as_of, dry_run, started_at, finished_at, status, exit_code "
            "FROM runs ORDER BY started_at DESC LIMIT ?",
            (limit,),
        )
        return [RunRecord(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6], r[7]) for r in rows]

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

    def interrupt_run(self, run_id: str) -> None:
        """Record that a run was stopped part-way (it stays 'running' in the history otherwise)."""
        self._db.execute(
            "UPDATE runs SET finished_at = ?, status = 'interrupted' "
            "WHERE run_id = ? AND status = 'running'",
            (self._now(), run_id),
        )

    def has_run(self, run_id: str | None = None) -> bool:
        """Whether this store recorded run `run_id` (None: any run that began writing)."""
        if run_id is None:
            row = self._db.execute("SELECT 1 FROM runs WHERE status != 'stopped' LIMIT 1")
        else:
            row = self._db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,))
        return row.fetchone() is not None

    def interrupt_abandoned_runs(self) -> list[str]:
        """Record as interrupted every run still 'running': called with the state lock held, so
        their process is gone (killed, or its machine stopped). Their ids, oldest first."""
        rows = self._db.execute(
            "SELECT run_id FROM runs WHERE status = 'running' ORDER BY started_at"
        ).fetchall()
        for (run_id,) in rows:
            self.interrupt_run(run_id)
        return [run_id for (run_id,) in rows]

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
            self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise StateError(f"the state store does not answer: {exc}") from None


_UNIT, _RECORD = "\x1f", "\x1e"  # separators in `_LOAD_USERS`' aggregated columns
_LOAD_USERS = f"""
    SELECT key, label, scim_id, user_name, active, digest_paths, digest_values, digest_whole,
        deactivated_on, mapped_source, mapped_since, mapped_until,
        (SELECT group_concat(organisation_code || '{_UNIT}' || employee_id, '{_RECORD}')
            FROM relations WHERE person_key = key),
        (SELECT group_concat(right_name, '{_UNIT}') FROM
            (SELECT right_name FROM memberships WHERE person_key = key AND owned ORDER BY 1)),
        (SELECT group_concat(right_name, '{_UNIT}') FROM
            (SELECT right_name FROM memberships WHERE person_key = key AND NOT owned ORDER BY 1))
    FROM users
"""


def store_files(path: Path) -> tuple[Path, Path, Path]:
    """The files of the store at `path`: the database, and SQLite's `-wal` and `-shm`."""
    return path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _pushed_relations_column(relations: tuple[PushedRelation, ...] | None) -> str | None:
    if relations is None:
        return None
    return json.dumps([r.to_json() for r in relations], separators=(",", ":"))


def _stamp(moment: dt.datetime) -> str:
    """A moment as the store keeps it: UTC, ISO 8601, milliseconds (sorts as text)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _mapped_from_columns(mapped: MappedFrom | None) -> tuple[bytes | None, str | None, str | None]:
    if mapped is None:
        return None, None, None
    return mapped.source, _iso(mapped.since), _iso(mapped.until)
