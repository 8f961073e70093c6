"""`[state]`: where the state store is and the secret for its keyed hashes."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import (
    Field,
    model_validator,
)

from connector.config.secret_sources import (
    read_secret,
)
from connector.config.values import (
    ConfigPath,
    EnvName,
    KeyProblems,
    PostgresUrl,
    SchemaName,
    Section,
    SslMode,
    one_of,
)
from connector.state.address import Location, PostgresAddress


class StateSettings(Section):
    """`[state]`: the state store (a SQLite file at `path`, the default, or the PostgreSQL
    database at `url`) and the secret for its keyed hashes.

    With `url`, `path` holds no store: it only places the run marker (`<path>.last-run`) and
    `serve`'s lock beside it; `schema` keeps the tables in a schema of their own (several
    organisations in one database); the secret must be given (`secret_env` / `secret_file`), as
    every machine using the database must key people the same way.
    """

    path: ConfigPath = Field(default=Path("state.db"), validate_default=True)
    url: PostgresUrl | None = None
    schema_: SchemaName | None = Field(default=None, alias="schema")
    password_env: EnvName | None = None
    password_file: ConfigPath | None = None
    sslmode: SslMode | None = None
    sslrootcert: ConfigPath | None = None
    secret_env: EnvName | None = None
    secret_file: ConfigPath | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        problems = one_of(self, "secret_env", "secret_file")
        problems += one_of(self, "password_env", "password_file")
        if self.url is None:
            problems += [
                (key.rstrip("_"), "is only used with state.url (a PostgreSQL state store)")
                for key in ("password_env", "password_file", "sslmode", "sslrootcert", "schema_")
                if getattr(self, key) is not None
            ]
        elif self.secret_env is None and self.secret_file is None:
            problems.append(
                (
                    "secret_file",
                    "a PostgreSQL state store needs its secret given: set state.secret_file "
                    "(or state.secret_env); `scim-connector state migrate` says where the "
                    "secret of a SQLite store is",
                )
            )
        if problems:
            raise KeyProblems(problems)
        return self

    @property
    def location(self) -> Location:
        """Where the store is: the SQLite file, or the PostgreSQL database (its password read
        now, from `password_env` / `password_file`; ConfigError naming the key)."""
        if self.url is None:
            return self.path
        password = read_secret(
            "state.password_env", self.password_env, "state.password_file", self.password_file
        )
        return PostgresAddress(
            self.url, password, self.sslmode, self.sslrootcert, schema=self.schema_
        )

    @property
    def generated_secret_path(self) -> Path:
        """Where the generated secret is kept when none is configured: `<path>.secret`."""
        return self.path.with_name(self.path.name + ".secret")
