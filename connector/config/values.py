"""Value types of configuration keys: validated paths, URLs, names, limits and schedules,
and the base of every section (unknown keys are errors)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
)

from connector.state.address import SCHEMA_NAME, is_postgres_url, url_password

BASE_DIR = "config_dir"  # validation-context key: the folder relative paths are resolved in
CONFIG_FILE = "config_file"


def _not_blank(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


def _relative_to_config(value: Path, info: ValidationInfo) -> Path:
    value = value.expanduser()
    base = (info.context or {}).get(BASE_DIR)
    if base is None or value.is_absolute():
        return value
    return Path(base) / value


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(value: str) -> str:
    # The value is not echoed: a secret pasted here by mistake must not end up in a message.
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(
            "must be the name of an environment variable (letters, digits and _), "
            "not the secret itself"
        )
    return value


_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def _http_url(value: str) -> str:
    # The value is not echoed: a URL may carry credentials.
    try:
        url = _HTTP_URL.validate_python(value)
    except ValidationError:
        raise ValueError("must be an http:// or https:// URL") from None
    if url.username or url.password:
        raise ValueError("must not contain a user name or password (use [target.auth])")
    return value.rstrip("/")


def _base_url(value: str) -> str:
    # A SCIM base URL gets paths appended (/Users, /Groups): a query or fragment would be lost.
    if "?" in value or "#" in value:
        raise ValueError("must not contain a query (?) or fragment (#): give the SCIM base URL")
    return value


def _false_means_off(value: object) -> object:
    if value is False or (isinstance(value, str) and value.strip().lower() in {"false", "off"}):
        return None
    if value is True:
        raise ValueError("must be a number, or false to switch this limit off")
    return value


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{value!r} is not a known time zone (an IANA name such as 'Europe/Brussels')"
        ) from None
    return value


def _empty_means_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


_CRON_FIELD = re.compile(r"[0-9A-Za-z*,/?-]+")


def _cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or not all(_CRON_FIELD.fullmatch(field) for field in fields):
        raise ValueError(
            f"{value!r} is not a cron expression of 5 fields "
            "(minute hour day-of-month month day-of-week, e.g. '0 * * * *')"
        )
    expression = " ".join(fields)
    try:
        CronSim(expression, datetime.now())
    except CronSimError as exc:
        raise ValueError(f"{value!r} is not a valid cron expression: {exc}") from None
    return expression


def _listen_address(value: str) -> str:
    host, colon, port = value.rpartition(":")
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. '127.0.0.1:8000')")
    return value


def _postgres_url(value: str) -> str:
    # The value is not echoed: a URL may carry a password.
    if not is_postgres_url(value):
        raise ValueError("must be a postgresql:// URL (postgresql://user@host:5432/database)")
    if url_password(value) is not None:
        raise ValueError(
            "must not contain a password: give it in state.password_env or state.password_file"
        )
    return value


def _schema_name(value: str) -> str:
    if not SCHEMA_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a schema name the connector uses: lower-case letters, digits "
            "and _, starting with a letter or _, at most 63 characters (e.g. 'gent')"
        )
    return value


def lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


NonEmptyStr = Annotated[str, BeforeValidator(_not_blank)]
ConfigPath = Annotated[Path, BeforeValidator(_not_blank), AfterValidator(_relative_to_config)]
EnvName = Annotated[str, AfterValidator(_env_name)]
HttpUrlStr = Annotated[str, BeforeValidator(_not_blank), AfterValidator(_http_url)]
BaseUrlStr = Annotated[HttpUrlStr, AfterValidator(_base_url)]
CountLimit = Annotated[Annotated[int, Field(ge=0)] | None, BeforeValidator(_false_means_off)]
PercentLimit = Annotated[
    Annotated[float, Field(ge=0, le=100)] | None, BeforeValidator(_false_means_off)
]
TimeZoneName = Annotated[str, AfterValidator(_time_zone)]
CronSchedule = Annotated[
    Annotated[str, AfterValidator(_cron)] | None, BeforeValidator(_empty_means_none)
]
ListenAddress = Annotated[str, AfterValidator(_listen_address)]
PostgresUrl = Annotated[str, BeforeValidator(_not_blank), AfterValidator(_postgres_url)]
SchemaName = Annotated[str, AfterValidator(_schema_name)]
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class KeyProblems(ValueError):
    """Cross-key problems of one section, each with the key (in that section) it is about."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{key}: {message}" for key, message in problems))
        self.problems = problems


def one_of(model: BaseModel, first: str, second: str) -> list[tuple[str, str]]:
    """A problem if both of two alternative keys are set."""
    if getattr(model, first) is not None and getattr(model, second) is not None:
        return [(second, f"give either {first} or {second}, not both")]
    return []


class Section(BaseModel):
    """A config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")
