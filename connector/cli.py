"""The `scim-connector` command line: thin. Parses, loads config, calls a job, renders.

Exit codes live here and only here: 0 all done; 1 rows rejected or operations failed;
2 usage, configuration or unreadable input (nothing applied); 3 a safety check stopped the run.
Errors are mapped to exit codes, and to the `errors` of a `--format json` answer, in `guarded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text
from typer._click import core as click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from connector import __version__, jobs, resolving
from connector.config import Settings, config_path_from_env, load_config
from connector.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    InputError,
    LockedError,
    SafetyStop,
    TargetError,
    UsageError,
)
from connector.hr.records import EmployeeKey
from connector.logs import configure_logging
from connector.organisation import InvalidOrganisationCode, normalise_organisation_code
from connector.render import (
    local_moment,
    render_journal,
    render_report,
    render_target_check,
    render_upcoming,
)
from connector.report import Report, stopped_json
from connector.state.transfer import migration_done, migration_target
from connector.target.checking import job as target_check
from connector.upcoming import timeline, timeline_json

if TYPE_CHECKING:
    from connector.sandbox.oauth import DemoClient, SandboxConfig
    from connector.sandbox.server import RunningSandbox

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_SAFETY = 0, 1, 2, 3


def _readable(params: list[click.Parameter]) -> list[click.Parameter]:
    """Parameters as `--help` should show them: a flag with no `<bool>` type, an argument
    named in capitals (`RUN_ID`)."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""
        elif isinstance(param, TyperArgument) and param.metavar is None:
            param.metavar = (param.name or "").upper()
    return params


def _literal_help(params: list[click.Parameter]) -> None:
    """Help texts print as written: `[default: ...]` is text, not Rich markup."""
    for param in params:
        text = getattr(param, "help", None)
        if isinstance(param, TyperOption | TyperArgument) and text:
            param.help = escape(text)


class Command(TyperCommand):
    """A command whose `--help` reads cleanly (see `_readable`, `_literal_help`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _literal_help(self.params)
        if self.help:
            self.help = escape(self.help)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        """The parameters, `--help` included, made readable."""
        return _readable(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        """`[OPTIONS] RUN_ID`, not `[OPTIONS] {run_id}`."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class Group(TyperGroup):
    """The command group, its own options (`--version`, `--help`) made readable."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        """The parameters, `--help` included, made readable."""
        return _readable(super().get_params(ctx))


app = typer.Typer(
    cls=Group,
    name="scim-connector",
    help="Keep an ACM/IDM-style identity provider in step with HR, over SCIM 2.0.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class Format(StrEnum):
    """Output formats."""

    TEXT = "text"
    JSON = "json"


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Configuration file [default: $SCIM_CONNECTOR_CONFIG or config/connector.toml].",
        show_default=False,
    ),
]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="Run as of this date (YYYY-MM-DD) [default: today in the configured time zone].",
        show_default=False,
    ),
]
FormatOption = Annotated[Format, typer.Option("--format", help="Output format.")]


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print a one-line error on stderr and return the Exit to raise."""
    err.print(Text.assemble(("error:", "red"), " ", message))
    return typer.Exit(code)


def parse_as_of(value: str | None) -> dt.date | None:
    """The date `--as-of` gives, None if not given; UsageError if it is not a date."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--as-of: {value!r} is not a date (YYYY-MM-DD)") from None


def load(config: Path | None) -> Settings:
    """Load the configuration and set up logging from it."""
    settings = load_config(config or config_path_from_env())
    configure_logging(settings.logging.level, settings.logging.format)
    jobs.warn_loose_state_files(settings)
    return settings


def write_json(answer: dict[str, Any]) -> None:
    """One JSON object on stdout."""
    sys.stdout.write(json.dumps(answer, ensure_ascii=False, indent=2) + "\n")


def emit(report: Report, fmt: Format) -> None:
    """Print the report (JSON on stdout, or tables) and exit with its code."""
    if fmt is Format.JSON:
        write_json(report.to_json())
    else:
        render_report(out, report)
    raise typer.Exit(report.exit_code)


@contextlib.contextmanager
def progress_bar(fmt: Format) -> Iterator[jobs.ProgressSink | None]:
    """A progress bar on stderr for people at a terminal; nothing otherwise."""
    if fmt is Format.JSON or not err.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("applying"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task("apply", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


ErrorAnswer = Callable[[list[dict[str, str]], int], dict[str, Any]]


def guarded(action: Callable[[], None], answer: ErrorAnswer | None = None) -> None:
    """Run a command, mapping domain errors to exit codes and one-line messages on stderr.

    `answer` (given with `--format json`) makes the JSON object printed on stdout when an
    error stops the command, from `errors` (`[{kind, message}]`) and the exit code, so that a
    script reading stdout gets one object on every exit. Messages are the errors' own, which
    never hold a secret or a national number in clear.
    """
    try:
        action()
    except ConnectorError as exc:
        code = EXIT_SAFETY if isinstance(exc, SafetyStop) else EXIT_USAGE
        if answer is not None:
            write_json(answer([{"kind": error_kind(exc), "message": str(exc)}], code))
        raise fail(str(exc), code) from None


ERROR_KINDS: tuple[tuple[type[ConnectorError], str], ...] = (
    (ConfigError, "config"),
    (InputError, "input"),
    (AuthError, "auth"),  # before TargetError, its base
    (TargetError, "target"),
    (LockedError, "lock"),
    (UsageError, "usage"),
    (jobs.SelectionError, "selection"),
    (resolving.ResolveError, "resolve"),
    (SafetyStop, "safety"),
)


def error_kind(exc: ConnectorError) -> str:
    """The `kind` of an error in a JSON answer: what failed (config, input, auth, target,
    lock, usage, selection, safety), or `error`."""
    return next((kind for cls, kind in ERROR_KINDS if isinstance(exc, cls)), "error")


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


@app.command(cls=Command)
def validate(
    config: ConfigOption = None, as_of: AsOfOption = None, format: FormatOption = Format.TEXT
) -> None:
    """Read config, mappings and HR input; report every rejected row. Contacts nobody."""
    attempt = Attempt("validate", format, dry_run=True)

    def action() -> None:
        settings, day = attempt.start(config, as_of)
        emit(jobs.validate(settings, attempt.run_id, day), format)

    guarded(action, attempt.answer())


AcceptColumnsOption = Annotated[
    bool,
    typer.Option(
        "--accept-columns",
        help="Go on although the HR or grants file lacks a column the last sync read"
        " (this run only; once a sync applied, its columns are the new reference).",
    ),
]


@app.command(cls=Command)
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


@app.command(cls=Command)
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
        report = asyncio.run(
            jobs.sync(
                settings,
                attempt.run_id,
                day,
                dry_run=dry_run,
                force=force,
                full=full,
                accept_columns=accept_columns,
            )
        )
        emit(report, format)

    guarded(action, attempt.answer())


def parse_employee(text: str) -> EmployeeKey:
    """`ORG:ID` -> EmployeeKey, the organisation code normalised."""
    org, sep, employee_id = text.partition(":")
    if not sep or not employee_id.strip():
        raise UsageError(f"--employee: {text!r} is not ORG:ID (e.g. 0207451227:E1234)")
    try:
        return EmployeeKey(normalise_organisation_code(org), employee_id.strip())
    except InvalidOrganisationCode as exc:
        raise UsageError(f"--employee: {exc}") from None


@app.command(cls=Command)
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


@app.command(cls=Command)
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
            render_upcoming(out, ahead, settings.report.names)
            if inputs.rejected:
                out.print(
                    Text(
                        f"{len(inputs.rejected)} HR rows were rejected and are left out of this "
                        "look ahead (`scim-connector validate` lists them)."
                    )
                )
        raise typer.Exit(code)

    def stopped(errors: list[dict[str, str]], code: int) -> dict[str, Any]:
        return {"command": "upcoming", "errors": errors, "exit_code": code}

    guarded(action, stopped if format is Format.JSON else None)


@app.command(cls=Command)
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
            write_json(
                {
                    "timezone": settings.lifecycle.timezone,
                    "entries": [
                        {**dataclasses.asdict(e), "at": local_moment(e.at, zone)} for e in entries
                    ],
                }
            )
            return
        render_journal(out, entries, zone)

    guarded(action)


@app.command("check-target", cls=Command)
def check_target(
    config: ConfigOption = None,
    write_test: Annotated[
        bool,
        typer.Option(
            "--write-test",
            help="Also create a throwaway user and group, try the writes a sync makes on them, "
            "delete them, and keep what was learned in the state store.",
        ),
    ] = False,
    format: FormatOption = Format.TEXT,
) -> None:
    """Compare what the target announces with what it really does (read-only by default)."""

    def action() -> None:
        settings = load(config)
        checked = asyncio.run(target_check.check_target(settings, write_test=write_test))
        if format is Format.JSON:
            write_json(checked.to_json())
        else:
            render_target_check(out, checked)

    def stopped(errors: list[dict[str, str]], code: int) -> dict[str, Any]:
        return {"command": "check-target", "errors": errors, "exit_code": code}

    guarded(action, stopped if format is Format.JSON else None)


@app.command(cls=Command)
def demo(
    state: Annotated[
        Path | None,
        typer.Option("--state", help="Keep the demo's state store in this directory."),
    ] = None,
) -> None:
    """Run the connector on the demo data against an in-process sandbox; needs no config."""
    from connector import demo as demo_job

    configure_logging("warning", "console")
    days = (demo_job.FIRST_DAY, demo_job.SECOND_DAY)

    def action() -> None:
        with (
            demo_job.state_directory(state) as directory,
            demo_job.demo_sandbox(directory) as (box, client),
        ):
            out.rule("scim-connector demo")
            out.print(
                Text(
                    f"Sandbox identity provider at {box.base_url}; demo HR data from "
                    f"{demo_job.demo_data_dir()}; state in {directory}"
                    + ("" if state else " (removed afterwards)")
                )
            )
            out.print(
                Text(
                    f"Authenticating with OAuth2 client credentials (private_key_jwt) as "
                    f"{client.client_id!r} at {box.token_url}, with a key pair generated for "
                    "this run"
                )
            )
            reports = asyncio.run(demo_job.run_demo(box, client, directory, days))
        first, second = reports
        out.rule(f"Run 1: {first.as_of} (joiners, rights, and deliberately bad rows)")
        render_report(out, first)
        out.rule(f"Run 2: {second.as_of} (end dates of December take effect)")
        render_report(out, second, details=False)
        failed = any(r.failures or r.safety_stopped for r in reports)
        out.print(
            "The rejected rows are deliberate: they show how bad HR input is reported. "
            "People behind them are held (left as they are), not cut off.",
            highlight=False,
        )
        raise typer.Exit(EXIT_PARTIAL if failed else EXIT_OK)

    guarded(action)


@app.command(cls=Command)
def sandbox(
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free one).")] = 8080,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    key_dir: Annotated[
        Path | None,
        typer.Option(
            "--key-dir",
            help="Write the demo client's private key and secret here "
            "[default: a temporary directory, removed on exit].",
            show_default=False,
        ),
    ] = None,
    token_lifetime: Annotated[
        int, typer.Option("--token-lifetime", min=1, help="Lifetime of issued tokens, seconds.")
    ] = 3600,
) -> None:
    """Run the local ACM/IDM-style identity provider (SCIM + OAuth2 token endpoint)."""
    from connector import demo as demo_job
    from connector.sandbox.oauth import SandboxConfig, generate_demo_client
    from connector.sandbox.server import serve_foreground

    if not 0 <= port <= 65535:
        raise fail(f"--port: {port} is not a TCP port (0 to 65535)")

    def action() -> None:
        with demo_job.state_directory(key_dir, "--key-dir") as directory:
            client = generate_demo_client(directory)
            config = SandboxConfig(
                clients=(client.sandbox_client(),), token_lifetime_seconds=token_lifetime
            )
            try:
                serve_foreground(
                    host, port, config, lambda box: _announce_sandbox(box, client, config)
                )
            except OSError as exc:
                raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    guarded(action)


def _announce_sandbox(box: RunningSandbox, client: DemoClient, config: SandboxConfig) -> None:
    """Print where the sandbox answers and the demo client's (throwaway) credentials."""
    out.rule("scim-connector sandbox")
    lines = [
        f"SCIM base URL    {box.base_url}",
        "                 RFC 7643 User/Group + enterprise + ACM/IDM extension; data in memory",
        f"token endpoint   {box.token_url}",
        f"                 client credentials; opaque tokens, {config.token_lifetime_seconds} s",
        f"metadata         {box.metadata_url}",
        "",
        f"demo client      {client.client_id}",
        f"  private_key_jwt       private key {client.private_key_file} "
        f"(RS256, kid {client.key_id})",
        f"  client_secret_basic   secret {client.secret}",
        f"  client_secret_post    (same secret, also in {client.secret_file})",
        "",
        "These are the sandbox's own throwaway demo credentials, made for this run only;",
        "they are not production secrets. A [target.auth] section using them:",
        "",
        "[target]",
        f"base_url = {json.dumps(box.base_url)}",
        "",
        "[target.auth]",
        'method = "private_key_jwt"',
        f"token_url = {json.dumps(box.token_url)}",
        f"client_id = {json.dumps(client.client_id)}",
        f"private_key_file = {json.dumps(str(client.private_key_file))}",
        "",
        "Press Ctrl-C to stop.",
    ]
    for line in lines:
        out.print(Text(line))
    sys.stdout.flush()


@app.command(cls=Command)
def serve(config: ConfigOption = None) -> None:
    """Run as a service: HR webhook, scheduled syncs, /healthz, /readyz and /metrics."""
    from connector.service.server import (
        check_startup,
        configure_service_logging,
        run_service,
        service_lock,
    )

    def action() -> None:
        settings = load_config(config or config_path_from_env())
        with service_lock(settings):  # held until the service ends; a second one exits 2
            webhook_secret = check_startup(settings)
            configure_service_logging(settings)
            jobs.warn_loose_state_files(settings)
            raise typer.Exit(run_service(settings, webhook_secret))

    guarded(action)


@app.command(cls=Command)
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
            write_json({"command": "resolve", **done.to_json(), "exit_code": EXIT_OK, "errors": []})
            return
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

    def stopped(errors: list[dict[str, str]], code: int) -> dict[str, Any]:
        return {"command": "resolve", "errors": errors, "exit_code": code}

    guarded(action, stopped if format is Format.JSON else None)


@app.command(cls=Command)
def approve(
    run_id: Annotated[str, typer.Argument(help="The id of the run a safety check stopped.")],
    config: ConfigOption = None,
) -> None:
    """Approve, once, the changes of a run a safety check stopped."""

    def action() -> None:
        settings = load(config)
        approval = jobs.approve(settings, run_id)
        out.print(
            Text(
                f"Approved run {run_id}: the next sync that plans exactly the same changes "
                f"(the same people, attributes and values) applies them, once, until "
                f"{approval.expires_at:%Y-%m-%d %H:%M} UTC. A sync planning anything else "
                "is checked as usual."
            )
        )

    guarded(action)


state_app = typer.Typer(help="Back up, restore and migrate the state store.", no_args_is_help=True)
app.add_typer(state_app, name="state")


@state_app.command("backup")
def state_backup(
    to: Annotated[Path, typer.Argument(help="The backup file to write (must not exist).")],
    config: ConfigOption = None,
) -> None:
    """Copy the state store to a file, consistently, also while a sync or the service runs."""

    def action() -> None:
        jobs.backup_state(load(config), to)
        out.print(Text(f"State store backed up to {to}."))

    guarded(action)


@state_app.command("restore")
def state_restore(
    backup: Annotated[Path, typer.Argument(help="A backup made by `state backup`.")],
    config: ConfigOption = None,
) -> None:
    """Replace the state store by a backup; the next sync recovers ownership of memberships."""

    def action() -> None:
        jobs.restore_state(load(config), backup)
        out.print(
            Text(
                f"State store restored from {backup}. The next sync reads back the memberships "
                "of the managed rights and recovers which are the connector's."
            )
        )

    guarded(action)


@state_app.command("migrate")
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
    config: ConfigOption = None,
) -> None:
    """Copy the SQLite state store into an empty PostgreSQL database, row counts verified."""

    def action() -> None:
        settings = load(config)
        address = migration_target(to, password_env, sslmode, sslrootcert)
        copied = jobs.migrate_state(settings, address)
        out.print(Text(migration_done(settings, address, copied.rows)))

    guarded(action)


def version_callback(value: bool) -> None:
    """Print the version and stop."""
    if value:
        out.print(f"scim-connector {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """Keep an ACM/IDM-style identity provider in step with HR, over SCIM 2.0."""


def main() -> None:
    """Entry point of the `scim-connector` command."""
    app()
