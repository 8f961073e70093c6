"""Where a state store is: a SQLite file (a `Path`) or a PostgreSQL database (`PostgresAddress`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgresql", "postgres")
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
"""A schema name the connector accepts: lower case, digits, `_`; no quoting needed."""


@dataclass(frozen=True)
class PostgresAddress:
    """A PostgreSQL database holding a state store: its URL (no password in it), and the
    password and TLS options given beside it."""

    url: str
    password: str | None = field(default=None, repr=False)
    sslmode: str | None = None
    sslrootcert: Path | None = None
    schema: str | None = None  # the schema holding the store's tables (None: the role's default)
    connect_timeout: int = 10

    def connect_arguments(self) -> dict[str, str | int]:
        """The keyword arguments libpq takes beside the URL (password included)."""
        arguments: dict[str, str | int] = {"connect_timeout": self.connect_timeout}
        if self.password is not None:
            arguments["password"] = self.password
        if self.sslmode is not None:
            arguments["sslmode"] = self.sslmode
        if self.sslrootcert is not None:
            arguments["sslrootcert"] = str(self.sslrootcert)
        return arguments

    def __str__(self) -> str:
        shown = shown_url(self.url)
        return shown if self.schema is None else f"{shown} (schema {self.schema})"


Location = Path | PostgresAddress
"""Where a state store is."""


def is_postgres_url(text: str) -> bool:
    """Whether `text` is a PostgreSQL URL (postgresql:// or postgres://)."""
    return urlsplit(text).scheme in POSTGRES_SCHEMES


def url_password(url: str) -> str | None:
    """The password written in a URL, if any (the connector refuses those: it is read from
    `password_env` / `password_file`)."""
    return urlsplit(url).password


def shown_url(url: str) -> str:
    """The URL as messages show it: any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
