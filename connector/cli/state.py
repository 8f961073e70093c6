"""The commands on the state store: log, resolve, approve, state backup, restore, restored and
migrate."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from connector import jobs, resolving
from connector.cli import output
from connector.cli.exits import EXIT_OK, ErrorAnswer, guarded
from connector.cli.options import ConfigOption, FormatOption, load, parse_employee
from connector.cli.output import Format, write_json
from connector.errors import UsageError
from connector.render import local_moment, local_time, render_journal
from connector.state.transfer import migration_done, migration_target


def _stopped(command: str, fmt: Format) -> ErrorAnswer | None:
    """With `--format json`: the one object printed when an error stops `command`."""
    if fmt is not Format.JSON:
        return None

    def stopped(errors: list[dict[str, str]], code: int) -> dict[str, Any]:
        return {"command": command, "errors": errors, "exit_code": code}

    return stopped


def _done(command: str, **fields: Any) -> None:
    """The one JSON object of a command that succeeded."""
    write_json({"command": command, **fields, "exit_code": EXIT_OK, "errors": []})


def log(
    person: Annotated[
        str | None,
        typer.Option("--person", metavar="NATIONAL_ID", help="National number of the person."),
    ] = None,
    employee: Annotated[
        str | None,
        typer.Option("--employee", metavar="ORG:ID", help="ORG:EMPLOYEE_ID of the person."),
    ] = None,
    run: Annotated[str | None, typer.Option("--run", metavar="RUN_ID", help="A run id.")] = None,
    config: ConfigOption = None,
    format: FormatOption = Format.TEXT,
) -> None:
    """The audit trail from the state store: by person, employee or run."""

    def action() -> None:
        if sum(x is not None for x in (person, employee, run)) != 1:
            raise UsageError("log needs exactly one of --person, --employee or --run")
        key = parse_employee(employee) if employee else None
        settings = load(config)
        entries = jobs.audit_trail(settings, person=person, employee=key, run_id=run)
        zone = settings.lifecycle.zone()
        if format is Format.JSON:
            _done(
                "log",
                timezone=settings.lifecycle.timezone,
                entries=[
                    {**dataclasses.asdict(e), "at": local_moment(e.at, zone)} for e in entries
                ],
            )
            return
        render_journal(output.out, entries, zone)

    guarded(action, _stopped("log", format))


def resolve(
    employee: Annotated[
        str | None, typer.Option("--employee", help="ORG:EMPLOYEE_ID of the held person.")
    ] = None,
    person: Annotated[
        str | None, typer.Option("--person", help="National number of the held person.")
    ] = None,
    link: Annotated[
        str | None,
        typer.Option("--link", help="SCIM id of the account that is theirs: adopted next run."),
    ] = None,
    new_account: Annotated[
        bool,
        typer.Option("--new-account", help="Give them a new account of their own next run."),
    ] = False,
    config: ConfigOption = None,
    format: FormatOption = Format.TEXT,
) -> None:
    """Resolve a correlation case: link the person to an account, or give them a new one."""
    run_id = jobs.new_run_id()

    def action() -> None:
        key = parse_employee(employee) if employee else None
        settings = load(config)
        done = resolving.resolve(
            settings, run_id, employee=key, person=person, link=link, new_account=new_account
        )
        if format is Format.JSON:
            _done("resolve", **done.to_json())
            return
        out = output.out
        who = done.case.person_text()
        if done.link_scim_id is not None:
            out.print(Text(f"{who}: the next sync adopts account {done.link_scim_id} for them."))
        else:
            out.print(Text(f"{who}: the next sync creates a new account for them."))
        if done.unlinked is not None:
            out.print(
                Text(
                    f"Account {done.link_scim_id} was linked to person {done.unlinked}; that "
                    "link is dropped: the connector no longer manages them by that account."
                )
            )

    guarded(action, _stopped("resolve", format))


def approve(
    run_id: Annotated[str, typer.Argument(help="The id of the run a safety check stopped.")],
    config: ConfigOption = None,
    format: FormatOption = Format.TEXT,
) -> None:
    """Approve, once, the changes of a run a safety check stopped."""

    def action() -> None:
        settings = load(config)
        approval = jobs.approve(settings, run_id)
        zone = settings.lifecycle.zone()
        expires = approval.expires_at.isoformat()
        if format is Format.JSON:
            _done(
                "approve",
                run_id=run_id,
                timezone=settings.lifecycle.timezone,
                expires_at=local_moment(expires, zone),
            )
            return
        output.out.print(
            Text(
                f"Approved run {run_id}: the next sync that plans exactly the same changes "
                f"(the same people, attributes and values) applies them, once, until "
                f"{local_time(expires, zone)}. A sync planning anything else "
                "is checked as usual."
            )
        )

    guarded(action, _stopped("approve", format))


def state_backup(
    to: Annotated[Path, typer.Argument(help="The backup file to write (must not exist).")],
    config: ConfigOption = None,
    format: FormatOption = Format.TEXT,
) -> None:
    """Copy the state store to a file, consistently, also while a sync or the service runs."""

    def action() -> None:
        jobs.backup_state(load(config), to)
        if format is Format.JSON:
            _done("state backup", backup=str(to))
            return
        output.out.print(Text(f"State store backed up to {to}."))

    guarded(action, _stopped("state backup", format))


def state_restore(
    backup: Annotated[Path, typer.Argument(help="A backup made by `state backup`.")],
    target_moved: Annotated[
        bool,
        typer.Option(
            "--target-moved",
            help="The target's address changed since the backup: restore it for the configured"
            " target.base_url (the state secret is still checked).",
        ),
    ] = False,
    config: ConfigOption = None,
    format: FormatOption = Format.TEXT,
) -> None:
    """Replace the state store by a backup; the next sync recovers ownership of memberships."""

    def action() -> None:
        warnings = jobs.restore_state(load(config), backup, target_moved=target_moved)
        if format is Format.JSON:
            listed = [{"kind": w.kind, "message": w.message} for w in warnings]
            _done("state restore", backup=str(backup), warnings=listed)
            return
        for warning in warnings:
            output.err.print(Text.assemble(("warning:", "yellow"), " ", warning.message))
        output.out.print(
            Text(
                f"State store restored from {backup}. The next sync reads back the memberships "
                "of the managed rights and recovers which are the connector's."
            )
        )

    guarded(action, _stopped("state restore", format))


def state_restored(
    config: ConfigOption = None,
    format: FormatOption = Format.TEXT,
) -> None:
    """Record that the state store was restored with other tools (pg_restore, a copy of its
    files): the next sync recovers ownership of memberships."""

    def action() -> None:
        jobs.mark_restored(load(config))
        if format is Format.JSON:
            _done("state restored")
            return
        output.out.print(
            Text(
                "Recorded that the state store was restored. The next sync reads back the "
                "memberships of the managed rights and recovers which are the connector's."
            )
        )

    guarded(action, _stopped("state restored", format))


def state_migrate(
    to: Annotated[
        str, typer.Option("--to", help="The empty PostgreSQL database: postgresql://USER@HOST/DB")
    ],
    password_env: Annotated[
        str | None,
        typer.Option(help="Variable holding the database password (else PGPASSWORD, ~/.pgpass)."),
    ] = None,
    sslmode: Annotated[str | None, typer.Option(help="libpq's sslmode, e.g. verify-full.")] = None,
    sslrootcert: Annotated[Path | None, typer.Option(help="CA certificate(s) (PEM).")] = None,
    schema: Annotated[
        str | None,
        typer.Option(help="Keep the tables in this schema (created if missing), as state.schema."),
    ] = None,
    config: ConfigOption = None,
    format: FormatOption = Format.TEXT,
) -> None:
    """Copy the SQLite state store into an empty PostgreSQL database, row counts verified."""

    def action() -> None:
        settings = load(config)
        address = migration_target(to, password_env, sslmode, sslrootcert, schema)
        copied = jobs.migrate_state(settings, address)
        if format is Format.JSON:
            _done("state migrate", rows=copied.rows)
            return
        output.out.print(Text(migration_done(settings, address, copied.rows, password_env)))

    guarded(action, _stopped("state migrate", format))
