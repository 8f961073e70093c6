"""The commands that read HR and plan or apply: validate, plan, sync, resync, upcoming."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from connector import jobs
from connector.cli import output
from connector.cli.exits import EXIT_OK, EXIT_PARTIAL, ErrorAnswer, guarded
from connector.cli.options import (
    AcceptColumnsOption,
    AsOfOption,
    ConfigOption,
    FormatOption,
    load,
    parse_as_of,
    parse_employee,
)
from connector.cli.output import Format, emit, progress_bar, write_json
from connector.config import Settings
from connector.errors import UsageError
from connector.render import render_upcoming
from connector.report import Report, stopped_json
from connector.upcoming import timeline, timeline_json


@dataclass(slots=True)
class Attempt:
    """What a run command (validate, plan, sync, resync) knows of itself so far, for the JSON
    answer when an error stops it. The run id is assigned before anything is read, so even an
    unreadable config has one; the run date is known once `--as-of` or the config is read."""

    command: str
    fmt: Format
    dry_run: bool
    run_id: str = field(default_factory=jobs.new_run_id)
    as_of: dt.date | None = None

    def start(self, config: Path | None, as_of: str | None) -> tuple[Settings, dt.date]:
        """Parse `--as-of`, load the config, settle the run date (default: today there)."""
        self.as_of = parse_as_of(as_of)
        settings = load(config)
        if self.as_of is None:
            self.as_of = jobs.today(settings)
        return settings, self.as_of

    def answer(self) -> ErrorAnswer | None:
        """The error answer for `guarded`: with `--format json` only."""
        if self.fmt is not Format.JSON:
            return None

        def stopped(errors: list[dict[str, str]], code: int) -> dict[str, Any]:
            return stopped_json(
                run_id=self.run_id,
                command=self.command,
                as_of=self.as_of,
                dry_run=self.dry_run,
                errors=errors,
                exit_code=code,
            )

        return stopped


def validate(
    config: ConfigOption = None,
    as_of: AsOfOption = None,
    format: FormatOption = Format.TEXT,
    accept_columns: AcceptColumnsOption = False,
) -> None:
    """Read config, mappings and HR input; report every rejected row. Contacts nobody."""
    attempt = Attempt("validate", format, dry_run=True)

    def action() -> None:
        settings, day = attempt.start(config, as_of)
        report = jobs.validate(settings, attempt.run_id, day, accept_columns=accept_columns)
        emit(report, format)

    guarded(action, attempt.answer())


def plan(
    config: ConfigOption = None,
    as_of: AsOfOption = None,
    format: FormatOption = Format.TEXT,
    accept_columns: AcceptColumnsOption = False,
) -> None:
    """Show what a sync would change, grouped by kind. Writes nothing anywhere."""
    attempt = Attempt("plan", format, dry_run=True)

    def action() -> None:
        settings, day = attempt.start(config, as_of)
        emit(jobs.plan(settings, attempt.run_id, day, accept_columns=accept_columns), format)

    guarded(action, attempt.answer())


def sync(
    config: ConfigOption = None,
    as_of: AsOfOption = None,
    format: FormatOption = Format.TEXT,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan against the target; change nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Apply even if a safety threshold is exceeded.")
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Reconcile against what the target really holds, not the state store."
        ),
    ] = False,
    accept_columns: AcceptColumnsOption = False,
) -> None:
    """Plan, apply and record: bring the target in step with HR."""
    attempt = Attempt("sync", format, dry_run=dry_run)

    def action() -> None:
        settings, day = attempt.start(config, as_of)
        with progress_bar(format) as progress:  # on stderr, at a terminal only
            report = asyncio.run(
                jobs.sync(
                    settings,
                    attempt.run_id,
                    day,
                    dry_run=dry_run,
                    force=force,
                    full=full,
                    accept_columns=accept_columns,
                    progress=progress,
                )
            )
        emit(report, format)

    guarded(action, attempt.answer())


def resync(
    employee: Annotated[
        list[str] | None,
        typer.Option(
            "--employee",
            metavar="ORG:ID",
            help="ORG:EMPLOYEE_ID of a person to resync (repeatable).",
        ),
    ] = None,
    person: Annotated[
        list[str] | None,
        typer.Option(
            "--person",
            metavar="NATIONAL_ID",
            help="National number of a person to resync (repeatable).",
        ),
    ] = None,
    config: ConfigOption = None,
    as_of: AsOfOption = None,
    format: FormatOption = Format.TEXT,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan against the target; change nothing.")
    ] = False,
) -> None:
    """Sync only the named people, reconciled against what the target holds."""
    attempt = Attempt("resync", format, dry_run=dry_run)

    def action() -> None:
        if not employee and not person:
            raise UsageError("resync needs --employee ORG:ID or --person NATIONAL_ID")
        selection = jobs.Selection(
            national_ids=tuple(person or ()),
            employees=tuple(parse_employee(e) for e in employee or ()),
        )
        settings, day = attempt.start(config, as_of)
        report = asyncio.run(
            jobs.sync(
                settings,
                attempt.run_id,
                day,
                dry_run=dry_run,
                selection=selection,
                command="resync",
            )
        )
        emit(report, format)

    guarded(action, attempt.answer())


def upcoming(
    days: Annotated[
        int, typer.Option("--days", min=1, max=366, help="How many days to look ahead.")
    ] = 30,
    config: ConfigOption = None,
    as_of: AsOfOption = None,
    format: FormatOption = Format.TEXT,
) -> None:
    """What the next days bring if HR stays as it is: joiners, leavers, rights, back-ups.

    Contacts nobody and writes nothing."""

    def action() -> None:
        settings = load(config)
        first = parse_as_of(as_of) or jobs.today(settings)
        inputs = jobs.read_inputs(settings)
        ahead = timeline(
            inputs.people.values(), inputs.mapping, first, days, settings.safety.min_holders
        )
        code = EXIT_PARTIAL if inputs.rejected else EXIT_OK
        if format is Format.JSON:
            rejected = Report(run_id="", command="upcoming", as_of=first, dry_run=True)
            rejected.rejected = list(inputs.rejected)
            answer = timeline_json(ahead, settings.report.names)
            write_json(
                {
                    **answer,
                    "rejected": rejected.to_json()["rejected"],
                    "exit_code": code,
                    "errors": [],
                }
            )
        else:
            render_upcoming(output.out, ahead, settings.report.names)
            if inputs.rejected:
                output.out.print(
                    Text(
                        f"{len(inputs.rejected)} HR rows were rejected and are left out of this "
                        "look ahead (`scim-connector validate` lists them)."
                    )
                )
        raise typer.Exit(code)

    def stopped(errors: list[dict[str, str]], code: int) -> dict[str, Any]:
        return {"command": "upcoming", "errors": errors, "exit_code": code}

    guarded(action, stopped if format is Format.JSON else None)
