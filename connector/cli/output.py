"""Where the CLI prints: the consoles, the output formats, JSON answers and reports.

Commands print through `output.out` and `output.err` (looked up when printing, so a test can
put a wider console in their place).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from connector import jobs
from connector.render import render_report
from connector.report import Report

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class Format(StrEnum):
    """Output formats."""

    TEXT = "text"
    JSON = "json"


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
