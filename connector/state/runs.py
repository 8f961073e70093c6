"""The state store's run history: runs (begun, finished, interrupted, stopped by a safety
check), approvals of stopped runs, and the audit journal."""

from __future__ import annotations

import datetime as dt
import json

from connector.state.base import StoreBase, stamp
from connector.state.records import Approval, ApprovalRefused, JournalEntry, RunRecord

# A run of the same command as the approved run `r`, begun after it, other than the run that
# asks (the `?`): it superseded the approved plan, whether it stopped too or ran.
_LATER_RUN = (
    "SELECT 1 FROM runs l WHERE l.command = r.command AND l.dry_run = 0 "
    "AND l.started_at > r.started_at AND l.run_id != r.run_id AND l.run_id != ?"
)


class RunHistory(StoreBase):
    """Runs, approvals and the audit journal, kept by the StateStore."""

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
            (run_id, fingerprint, stamp(now)),
        )
        return Approval(run_id, str(fingerprint), now, now + valid_for)

    def use_approval(self, fingerprint: str, run_id: str, valid_for: dt.timedelta) -> str | None:
        """Consume an unused, unexpired approval of a plan with this fingerprint whose run no
        later run of its command (but `run_id`, the one asking) superseded; the approved run's
        id."""
        since = stamp(self._clock() - valid_for)
        with self.transaction():
            row = self._db.execute(
                "SELECT a.run_id FROM approvals a JOIN runs r ON r.run_id = a.run_id "
                "WHERE a.fingerprint = ? AND a.used_by_run IS NULL AND a.approved_at >= ? "
                f"AND NOT EXISTS ({_LATER_RUN}) ORDER BY a.approved_at LIMIT 1",
                (fingerprint, since, run_id),
            ).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE approvals SET used_by_run = ? WHERE run_id = ?", (run_id, row[0])
            )
        return str(row[0])

    def superseded_approval(self, fingerprint: str, run_id: str) -> tuple[str, str] | None:
        """An unused approval of a plan with this fingerprint that a later run of its command
        (but `run_id`) made void: (the approved run, the latest later run)."""
        row = self._db.execute(
            "SELECT a.run_id, l.run_id FROM approvals a JOIN runs r ON r.run_id = a.run_id "
            "JOIN runs l ON l.command = r.command AND l.dry_run = 0 "
            "AND l.started_at > r.started_at AND l.run_id != r.run_id AND l.run_id != ? "
            "WHERE a.fingerprint = ? AND a.used_by_run IS NULL "
            "ORDER BY l.started_at DESC LIMIT 1",
            (run_id, fingerprint),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def expired_approval(self, fingerprint: str, valid_for: dt.timedelta) -> Approval | None:
        """The latest unused approval of a plan with this fingerprint that has expired."""
        row = self._db.execute(
            "SELECT run_id, approved_at FROM approvals WHERE fingerprint = ? "
            "AND used_by_run IS NULL AND approved_at < ? ORDER BY approved_at DESC LIMIT 1",
            (fingerprint, stamp(self._clock() - valid_for)),
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
            "SELECT 1 FROM runs WHERE dry_run = 0 AND status IN ('done', 'failed') LIMIT 1"
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
