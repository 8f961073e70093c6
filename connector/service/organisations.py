"""Several organisations in one `serve`: a folder of configurations, one per organisation.

`scim-connector serve --config DIR` reads every `*.toml` file in DIR; each is one organisation,
named after its file (`gent.toml` serves as `gent`), with its own HR source, target,
credentials, mapping, thresholds, schedule, webhook secret and state store. Their state is
kept apart: no two of them may share a state store (a SQLite file, or a PostgreSQL database
and `state.schema`). What the one process does once for all of them (the address it listens on,
its connection limits, its log format) must be the same in every file that sets it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from connector.config import Settings, environment_keys, load_config
from connector.errors import ConfigError
from connector.state import StateStore

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
"""An organisation's name (its configuration file's name without `.toml`): lower case, digits,
`-` and `_`; it appears in URLs, metric labels and logs."""

# What one process does once for every organisation: (section, key).
SHARED_KEYS = (
    ("service", "listen"),
    ("service", "max_connections"),
    ("service", "header_timeout_seconds"),
    ("service", "keep_alive_seconds"),
    ("logging", "level"),
    ("logging", "format"),
)


@dataclass(frozen=True, slots=True)
class Organisation:
    """One organisation served: its name, the file it was configured in, its settings."""

    name: str
    config_file: Path
    settings: Settings


def configuration_files(folder: Path) -> list[Path]:
    """The configuration files of a folder of organisations (`*.toml`, by name); ConfigError
    for a `*.toml` entry that is not a readable file (a broken link, a folder), which would
    otherwise leave its organisation silently unserved."""
    entries = sorted(folder.glob("*.toml"))
    for entry in entries:
        if not entry.is_file():
            what = "a folder" if entry.is_dir() else "not a file (a broken link?)"
            raise ConfigError(
                "--config",
                f"{entry} is {what}: every *.toml entry of the folder is an organisation",
            )
    files = entries
    if not files:
        raise ConfigError(
            "--config", f"{folder}: a folder without configuration files (*.toml, one each)"
        )
    return files


def organisation_name(config_file: Path) -> str:
    """The name an organisation is served under: its file's name without `.toml`."""
    name = config_file.stem
    if not NAME.fullmatch(name):
        raise ConfigError(
            "--config",
            f"{config_file}: {name!r} cannot name an organisation (it appears in URLs and "
            "metrics): rename the file to lower-case letters, digits, - and _ (e.g. gent.toml)",
        )
    return name


def load_organisations(folder: Path) -> list[Organisation]:
    """The organisations configured in `folder`, checked to keep their state apart and to agree
    on what the process does once; ConfigError naming the file and key at fault."""
    files = configuration_files(folder)
    check_environment(environment_keys())
    organisations = [
        Organisation(organisation_name(path), path, load_config(path)) for path in files
    ]
    check_state_apart(organisations)
    check_shared_keys(organisations)
    return organisations


def check_environment(overrides: Mapping[str, str]) -> None:
    """ConfigError for an environment override of a key each organisation has its own: with a
    folder, it would set that key for every organisation at once (one target for all...)."""
    shared = {f"{section}.{key}" for section, key in SHARED_KEYS}
    for key, variable in overrides.items():
        if key not in shared:
            raise ConfigError(
                "environment",
                f"{variable} would set {key} for every organisation of the folder: set it in "
                "each organisation's file, and unset the variable (an empty value counts as "
                f"unset). Only what the process does once may come from the environment: "
                f"{', '.join(sorted(shared))}",
            )


def identify_store(settings: Settings) -> str:
    """Open the state store (creating or migrating it) and give its own name; StateError when
    it cannot be opened."""
    store = StateStore.open(settings.state.location)
    try:
        return store.store_id()
    finally:
        store.close()


def check_stores_apart(store_ids: Mapping[str, str], files: Mapping[str, Path]) -> None:
    """ConfigError when two organisations reached the same state store (by the store's own
    name, however its address is written: another host name, the default schema...)."""
    seen: dict[str, str] = {}
    for name, store_id in store_ids.items():
        other = seen.setdefault(store_id, name)
        if other != name:
            raise ConfigError(
                "state.url",
                f"{files[other].name} and {files[name].name} reach the same state store (its "
                "address written differently, or the default schema and the one it names): give "
                "each organisation its own state.schema or database",
            )


def state_stores_of(settings: Settings) -> list[tuple[str, str]]:
    """What of a state store a configuration uses, as comparable keys, each with the key that
    names it: the file at `state.path` (the SQLite store, or the run marker beside a PostgreSQL
    one) and, with `state.url`, the database and schema."""
    state = settings.state
    used = [(f"file:{state.path.resolve()}", "state.path")]
    if state.url is not None:
        used.append((f"postgresql:{state.url}#{state.schema_ or ''}", "state.schema"))
    return used


def check_state_apart(organisations: Sequence[Organisation]) -> None:
    """ConfigError when two organisations would share a state store or the files beside it."""
    seen: dict[str, Organisation] = {}
    for organisation in organisations:
        for store, key in state_stores_of(organisation.settings):
            other = seen.setdefault(store, organisation)
            if other is organisation:
                continue
            where = "state.path" if key == "state.path" else "state.schema (or database)"
            raise ConfigError(
                key,
                f"{other.config_file.name} and {organisation.config_file.name} keep their state "
                f"in the same place: give each its own {where}, so that one organisation's "
                "state never mixes with another's",
            )


def check_shared_keys(organisations: Sequence[Organisation]) -> None:
    """ConfigError when two organisations set a key the process uses once differently."""
    first = organisations[0]
    for section, key in SHARED_KEYS:
        wanted = getattr(getattr(first.settings, section), key)
        for organisation in organisations[1:]:
            value = getattr(getattr(organisation.settings, section), key)
            if value != wanted:
                raise ConfigError(
                    f"{section}.{key}",
                    f"{_says(first, section, key)}, {_says(organisation, section, key)}: one "
                    "service does this once for every organisation; give them the same value",
                )


def _says(organisation: Organisation, section: str, key: str) -> str:
    value = getattr(getattr(organisation.settings, section), key)
    name = organisation.config_file.name
    if key in getattr(organisation.settings, section).model_fields_set:
        return f"{name} says {value!r}"
    return f"{name} leaves it at the default {value!r}"


def sharing_a_secret(secrets: Mapping[str, str | None]) -> list[tuple[str, str]]:
    """The pairs of organisations given the same secret (a webhook's: each one's HR system could
    sign the other's events; a state secret's: their pseudonyms could be linked)."""
    first_with: dict[str, str] = {}
    pairs = []
    for name, secret in secrets.items():
        if secret is None:
            continue
        other = first_with.setdefault(secret, name)
        if other != name:
            pairs.append((other, name))
    return pairs
