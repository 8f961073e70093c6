"""The `check-target` command: what the target announces against what it really does."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from connector.cli import output
from connector.cli.exits import guarded
from connector.cli.options import ConfigOption, FormatOption, load
from connector.cli.output import Format, write_json
from connector.render import render_target_check
from connector.target.checking import job as target_check


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
            render_target_check(output.out, checked)

    def stopped(errors: list[dict[str, str]], code: int) -> dict[str, Any]:
        return {"command": "check-target", "errors": errors, "exit_code": code}

    guarded(action, stopped if format is Format.JSON else None)
