"""Exit codes and the one place that maps errors to them (`guarded`).

0 all done; 1 rows rejected or operations failed; 2 usage, configuration or unreadable input
(nothing applied); 3 a safety check stopped the run. Errors are mapped to exit codes, and to
the `errors` of a `--format json` answer, in `guarded`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from rich.text import Text

from connector import jobs, resolving
from connector.cli import output
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

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_SAFETY = 0, 1, 2, 3


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print a one-line error on stderr and return the Exit to raise."""
    output.err.print(Text.assemble(("error:", "red"), " ", message))
    return typer.Exit(code)


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
            output.write_json(answer([{"kind": error_kind(exc), "message": str(exc)}], code))
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
