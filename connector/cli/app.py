"""The `scim-connector` app: every command registered, in the order `--help` lists them."""

from __future__ import annotations

from typing import Annotated

import typer

from connector import __version__
from connector.cli import output, runs, service, state, target
from connector.cli.help import Command, Group

app = typer.Typer(
    cls=Group,
    name="scim-connector",
    help="Keep an ACM/IDM-style identity provider in step with HR, over SCIM 2.0.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command(cls=Command)(runs.validate)
app.command(cls=Command)(runs.plan)
app.command(cls=Command)(runs.sync)
app.command(cls=Command)(runs.resync)
app.command(cls=Command)(runs.upcoming)
app.command(cls=Command)(state.log)
app.command("check-target", cls=Command)(target.check_target)
app.command(cls=Command)(service.demo)
app.command(cls=Command)(service.sandbox)
app.command(cls=Command)(service.serve)
app.command(cls=Command)(state.resolve)
app.command(cls=Command)(state.approve)

state_app = typer.Typer(
    cls=Group, help="Back up, restore and migrate the state store.", no_args_is_help=True
)
app.add_typer(state_app, name="state")
state_app.command("backup", cls=Command)(state.state_backup)
state_app.command("restore", cls=Command)(state.state_restore)
state_app.command("restored", cls=Command)(state.state_restored)
state_app.command("migrate", cls=Command)(state.state_migrate)


def version_callback(value: bool) -> None:
    """Print the version and stop."""
    if value:
        output.out.print(f"scim-connector {__version__}")
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
