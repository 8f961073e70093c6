"""What several commands take: the shared options, and how their values are read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from connector import jobs
from connector.cli.output import Format
from connector.config import Settings, config_path_from_env, load_config
from connector.errors import UsageError
from connector.hr.records import EmployeeKey
from connector.logs import configure_logging
from connector.organisation import InvalidOrganisationCode, normalise_organisation_code

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Configuration file [default: $SCIM_CONNECTOR_CONFIG or config/connector.toml].",
        show_default=False,
    ),
]
ServeConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Configuration file [default: $SCIM_CONNECTOR_CONFIG or config/connector.toml];"
        " or a folder of them, one organisation per *.toml file.",
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
AcceptColumnsOption = Annotated[
    bool,
    typer.Option(
        "--accept-columns",
        help="Go on although the HR or grants file lacks a column the last sync read"
        " (this run only; once a sync applied, its columns are the new reference).",
    ),
]


def parse_as_of(value: str | None) -> dt.date | None:
    """The date `--as-of` gives, None if not given; UsageError if it is not a date."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--as-of: {value!r} is not a date (YYYY-MM-DD)") from None


def parse_employee(text: str) -> EmployeeKey:
    """`ORG:ID` -> EmployeeKey, the organisation code normalised."""
    org, sep, employee_id = text.partition(":")
    if not sep or not employee_id.strip():
        raise UsageError(f"--employee: {text!r} is not ORG:ID (e.g. 0207451227:E1234)")
    try:
        return EmployeeKey(normalise_organisation_code(org), employee_id.strip())
    except InvalidOrganisationCode as exc:
        raise UsageError(f"--employee: {exc}") from None


def load(config: Path | None) -> Settings:
    """Load the configuration and set up logging from it."""
    settings = load_config(config or config_path_from_env())
    configure_logging(settings.logging.level, settings.logging.format)
    jobs.warn_loose_state_files(settings)
    return settings
