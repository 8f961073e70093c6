"""Configuration: a TOML file (`config/*.toml`), validated at load into typed `Settings`.

How a file becomes `Settings` (`load_config`):

1. the TOML is read (a syntax error names its line);
2. environment variables `SCIM_CONNECTOR_<SECTION>__<KEY>` override single keys, e.g.
   `SCIM_CONNECTOR_TARGET__BASE_URL` or `SCIM_CONNECTOR_TARGET__AUTH__CLIENT_ID` (names are
   case-insensitive, empty values are ignored, `__` separates the levels);
3. everything is validated: unknown keys are errors (a typo is reported by its name), and each
   auth method must have what it needs and nothing it does not use;
4. relative paths, from the file or the environment, are resolved against the folder of the
   config file, so the same file works from any working directory.

Sections absent from the file take their defaults; `[target.auth]` absent means method "none".
Secrets are never in the file: it names an environment variable (`*_env`) or a file (`*_file`)
for each, read when used (`TargetAuth.resolve_token()`, `Settings.state_secret()`, ...), not at
load. Every problem is a `ConfigError` naming the dotted key (`target.auth.client_id`), never a
secret's value. `config/example.toml` documents every key.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import EnvSettingsSource
from pydantic_settings.exceptions import SettingsError

from connector.errors import ConfigError
from connector.private_files import PRIVATE_FILE_MODE, make_private_dirs
from connector.secret_strength import MIN_SECRET_BITS, estimated_bits
from connector.state.address import Location, PostgresAddress, is_postgres_url, url_password

DEFAULT_CONFIG_PATH = Path("config/connector.toml")
CONFIG_PATH_ENV = "SCIM_CONNECTOR_CONFIG"
ENV_PREFIX = "SCIM_CONNECTOR_"
ENV_NESTED_DELIMITER = "__"
MIN_STATE_SECRET_BYTES = 16
MIN_WEBHOOK_SECRET_BYTES = 32

_BASE_DIR = "config_dir"  # validation-context key: the folder relative paths are resolved in
_CONFIG_FILE = "config_file"


def config_path_from_env() -> Path:
    """The config file to use: `$SCIM_CONNECTOR_CONFIG` if set, else `config/connector.toml`."""
    return Path(os.environ.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_PATH)


# ---------------------------------------------------------------------------- value types


def _not_blank(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


def _relative_to_config(value: Path, info: ValidationInfo) -> Path:
    value = value.expanduser()
    base = (info.context or {}).get(_BASE_DIR)
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


def _lower(value: object) -> object:
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
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class _KeyProblems(ValueError):
    """Cross-key problems of one section, each with the key (in that section) it is about."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{key}: {message}" for key, message in problems))
        self.problems = problems


def _one_of(model: BaseModel, first: str, second: str) -> list[tuple[str, str]]:
    """A problem if both of two alternative keys are set."""
    if getattr(model, first) is not None and getattr(model, second) is not None:
        return [(second, f"give either {first} or {second}, not both")]
    return []


class _Section(BaseModel):
    """A config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------- secrets


def _read_secret(
    env_key: str, env_name: str | None, file_key: str, file: Path | None
) -> str | None:
    """A secret from an environment variable or a file (None if neither is configured)."""
    if env_name is not None:
        value = os.environ.get(env_name)
        if value is None:
            raise ConfigError(env_key, f"environment variable {env_name} is not set")
        if not value.strip():
            raise ConfigError(env_key, f"environment variable {env_name} is empty")
        return value.strip()
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(file_key, f"cannot read {file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(file_key, f"{file} is not UTF-8 text") from None
        if not text.strip():
            raise ConfigError(file_key, f"{file} is empty")
        return text.strip()
    return None


def _long_enough(key: str, secret: str, minimum_bytes: int) -> str:
    """`secret` if it has at least `minimum_bytes` bytes (UTF-8), else a ConfigError naming
    `key` (never the secret): the one rule for every secret the connector keys a hash with."""
    if len(secret.encode()) < minimum_bytes:
        raise ConfigError(key, f"the secret is too short: it needs at least {minimum_bytes} bytes")
    return secret


def _random_enough(key: str, secret: str) -> str:
    """`secret` if it is at least `MIN_WEBHOOK_SECRET_BYTES` long and holds an estimated
    `MIN_SECRET_BITS` of randomness (`connector.secret_strength`), else a ConfigError naming
    `key` (never the secret): the rule for secrets that sign what others send."""
    _long_enough(key, secret, MIN_WEBHOOK_SECRET_BYTES)
    bits = estimated_bits(secret)
    if bits < MIN_SECRET_BITS:
        raise ConfigError(
            key,
            f"the secret is too predictable: it holds an estimated {bits:.0f} bits of randomness "
            f"and needs at least {MIN_SECRET_BITS} (repeated characters, runs like abc or "
            "repeated stretches count for nothing); generate one with `openssl rand -hex 32` or "
            "`openssl rand -base64 32`",
        )
    return secret


def _read_generated_secret(path: Path) -> bytes:
    """The generated state secret kept in `path` (FileNotFoundError if there is none yet)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError("state.path", f"cannot read the state secret {path}: {reason}") from None
    if not text:
        raise ConfigError(
            "state.path",
            f"the state secret {path} is empty (restore it from a backup, or remove it to "
            "generate a new one: people are then matched again by national number)",
        )
    return text.encode()


def _generated_secret(path: Path) -> bytes:
    """The state secret beside the state store: read it, or create it (mode 0600, a new folder
    0700, whatever the umask) on first use."""
    try:
        return _read_generated_secret(path)
    except FileNotFoundError:
        pass
    fresh = secrets.token_urlsafe(32) + "\n"
    try:
        make_private_dirs(path.parent)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        os.fchmod(descriptor, PRIVATE_FILE_MODE)  # the umask may have taken bits away
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(fresh)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # atomic, and never replaces a secret another run just made
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    except OSError as exc:
        raise ConfigError(
            "state.path",
            f"cannot create the state secret {path}: {exc.strerror} "
            "(or set state.secret_env / state.secret_file)",
        ) from None
    return _read_generated_secret(path)


# ---------------------------------------------------------------------------- sections


SourceKind = Literal["auto", "csv", "jsonl"]
_JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})


class SourceSettings(_Section):
    """`[source]`: the HR input file and the optional grants file."""

    kind: SourceKind = "auto"
    path: ConfigPath
    grants: ConfigPath | None = None

    def kind_of(self, path: Path) -> Literal["csv", "jsonl"]:
        """The format of an input file: `kind`, or by suffix when "auto" (.jsonl: JSON Lines)."""
        if self.kind != "auto":
            return self.kind
        return "jsonl" if path.suffix.lower() in _JSONL_SUFFIXES else "csv"


AuthMethod = Literal[
    "private_key_jwt", "client_secret_basic", "client_secret_post", "bearer", "none"
]
SigningAlg = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]
_AUTH = "target.auth"


@dataclass(frozen=True, slots=True)
class _MethodNeeds:
    """What an auth method requires, what it may take, and which pair it needs one of."""

    required: tuple[str, ...] = ()
    either: tuple[str, str] | None = None
    optional: tuple[str, ...] = ()

    def problems(self, auth: TargetAuth) -> list[tuple[str, str]]:
        """Missing, doubled and unused keys of `auth` for its method."""
        method = auth.method
        found = [
            (key, f"is required with method {method!r}")
            for key in self.required
            if getattr(auth, key) is None
        ]
        if self.either is not None:
            first, second = self.either
            if getattr(auth, first) is None and getattr(auth, second) is None:
                found.append((first, f"method {method!r} needs {first} or {second}"))
            found += _one_of(auth, first, second)
        allowed = {"method", *self.required, *(self.either or ()), *self.optional}
        found += [
            (key, f"is not used with method {method!r}")
            for key in sorted(auth.model_fields_set - allowed)
        ]
        return found


_OAUTH_OPTIONAL = ("scope", "audience", "resource")
_METHOD_NEEDS: dict[str, _MethodNeeds] = {
    "none": _MethodNeeds(),
    "bearer": _MethodNeeds(either=("token_env", "token_file")),
    "client_secret_basic": _MethodNeeds(
        required=("token_url", "client_id"),
        either=("client_secret_env", "client_secret_file"),
        optional=_OAUTH_OPTIONAL,
    ),
    "client_secret_post": _MethodNeeds(
        required=("token_url", "client_id"),
        either=("client_secret_env", "client_secret_file"),
        optional=_OAUTH_OPTIONAL,
    ),
    "private_key_jwt": _MethodNeeds(
        required=("token_url", "client_id", "private_key_file"),
        optional=(*_OAUTH_OPTIONAL, "key_id", "signing_alg"),
    ),
}
_PRIVATE_PEM = re.compile(r"-----BEGIN (RSA |EC )?PRIVATE KEY-----")


class TargetAuth(_Section):
    """`[target.auth]`: how to authenticate to the target (method "none" when absent)."""

    method: AuthMethod = "none"
    token_env: EnvName | None = None
    token_file: ConfigPath | None = None
    token_url: HttpUrlStr | None = None
    client_id: NonEmptyStr | None = None
    client_secret_env: EnvName | None = None
    client_secret_file: ConfigPath | None = None
    private_key_file: ConfigPath | None = None
    key_id: NonEmptyStr | None = None
    signing_alg: SigningAlg = "RS256"
    scope: str | None = None
    audience: str | None = None
    resource: str | None = None

    @model_validator(mode="after")
    def _fits_method(self) -> Self:
        problems = _METHOD_NEEDS[self.method].problems(self)
        if problems:
            raise _KeyProblems(problems)
        return self

    def resolve_token(self) -> str:
        """The bearer token, read now from `token_env` or `token_file` (method "bearer")."""
        self._expect_method("bearer")
        token = _read_secret(
            f"{_AUTH}.token_env", self.token_env, f"{_AUTH}.token_file", self.token_file
        )
        assert token is not None  # the validator made sure one of them is set
        return token

    def resolve_client_secret(self) -> str:
        """The OAuth2 client secret, read now from `client_secret_env` or `client_secret_file`."""
        self._expect_method("client_secret_basic", "client_secret_post")
        secret = _read_secret(
            f"{_AUTH}.client_secret_env",
            self.client_secret_env,
            f"{_AUTH}.client_secret_file",
            self.client_secret_file,
        )
        assert secret is not None  # the validator made sure one of them is set
        return secret

    def resolve_private_key(self) -> str:
        """The private_key_jwt signing key, read now: PEM text or a private JWK as JSON text."""
        self._expect_method("private_key_jwt")
        key = f"{_AUTH}.private_key_file"
        text = _read_secret(key, None, key, self.private_key_file)
        assert text is not None and self.private_key_file is not None
        if text.startswith("-----BEGIN"):
            if "ENCRYPTED" in text.split("\n", 1)[0]:
                raise ConfigError(
                    key, f"{self.private_key_file} is encrypted; give an unencrypted key"
                )
            if not _PRIVATE_PEM.match(text):
                raise ConfigError(key, f"{self.private_key_file} holds no PEM private key")
            return text
        try:
            jwk = json.loads(text)
        except ValueError:
            jwk = None
        if not isinstance(jwk, dict) or "kty" not in jwk:
            raise ConfigError(key, f"{self.private_key_file} holds neither a PEM key nor a JWK")
        if "d" not in jwk:
            raise ConfigError(
                key, f"{self.private_key_file} holds a public JWK; the private one is needed"
            )
        return text

    def _expect_method(self, *methods: str) -> None:
        if self.method not in methods:
            raise ConfigError(f"{_AUTH}.method", f"method {self.method!r} has no such secret")


class Capabilities(_Section):
    """`[target.capabilities]`: corrections to what the target announces (None: discover)."""

    patch: bool | None = None
    bulk: bool | None = None
    etag: bool | None = None
    filter: bool | None = None
    search: bool | None = None
    acmidm_extension: bool | None = None


class RetrySettings(_Section):
    """`[target.retry]`: how hard to try one call before reporting it failed."""

    attempts: int = Field(default=6, ge=1, le=50)
    max_seconds: float = Field(default=120.0, gt=0)
    initial_wait_seconds: float = Field(default=0.5, ge=0)
    max_wait_seconds: float = Field(default=30.0, ge=0)


class TargetSettings(_Section):
    """`[target]`: the SCIM service provider."""

    base_url: BaseUrlStr
    ca_bundle: ConfigPath | None = None
    verify_tls: bool = True
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    run_max_seconds: float = Field(default=14_400.0, gt=0)
    concurrency: int = Field(default=8, ge=1, le=64)
    membership_batch_size: int = Field(default=100, ge=1)
    lookup_in_one_search: bool = False
    auth: TargetAuth = Field(default_factory=TargetAuth)
    capabilities: Capabilities = Field(default_factory=Capabilities)
    retry: RetrySettings = Field(default_factory=RetrySettings)

    @model_validator(mode="after")
    def _tls_consistent(self) -> Self:
        if self.ca_bundle is not None and not self.verify_tls:
            raise _KeyProblems([("verify_tls", "is false, but ca_bundle is set: choose one")])
        return self


class MappingSettings(_Section):
    """`[mapping]`: the mapping file (None: the built-in `mappings/acmidm.toml`)."""

    file: ConfigPath | None = None


class LifecycleSettings(_Section):
    """`[lifecycle]`: dates and what happens to people who end or disappear."""

    timezone: TimeZoneName = "Europe/Brussels"
    on_missing: Literal["deactivate", "ignore"] = "deactivate"
    delete_after_days: int | None = Field(default=None, ge=0)
    provision_days_before_start: int = Field(default=0, ge=0, le=365)

    def zone(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)


class SafetySettings(_Section):
    """`[safety]`: how much one run may take away, or hand out, before it stops (false: no
    such limit). Each percentage applies in total and per organisation."""

    max_deactivations_count: CountLimit = 500
    max_deactivations_percent: PercentLimit = 20.0
    max_withdrawals_count: CountLimit = 500
    max_withdrawals_percent: PercentLimit = 20.0
    max_activations_count: CountLimit = 100
    max_activations_percent: PercentLimit = 10.0
    max_creates_count: CountLimit = 500
    max_creates_percent: PercentLimit = 20.0
    max_grants_count: CountLimit = 500
    max_grants_percent: PercentLimit = 20.0
    percent_applies_from: int = Field(default=10, ge=0)
    min_holders: int = Field(default=2, ge=0)
    alert_after_failed_runs: int = Field(default=3, ge=1)
    approval_valid_hours: int = Field(default=24, ge=1)

    @property
    def approval_valid_for(self) -> dt.timedelta:
        """How long an approval of a stopped run may be used."""
        return dt.timedelta(hours=self.approval_valid_hours)


class ExternalsSettings(_Section):
    """`[externals]`: the policy for external (non-employee) work relations."""

    require_end_date: bool = True
    max_days: int = Field(default=365, ge=1)


class StateSettings(_Section):
    """`[state]`: the state store (a SQLite file at `path`, the default, or the PostgreSQL
    database at `url`) and the secret for its keyed hashes.

    With `url`, `path` holds no store: it only places the run marker (`<path>.last-run`) and
    `serve`'s lock beside it; the secret must be given (`secret_env` / `secret_file`), as
    every machine using the database must key people the same way.
    """

    path: ConfigPath = Field(default=Path("state.db"), validate_default=True)
    url: PostgresUrl | None = None
    password_env: EnvName | None = None
    password_file: ConfigPath | None = None
    sslmode: SslMode | None = None
    sslrootcert: ConfigPath | None = None
    secret_env: EnvName | None = None
    secret_file: ConfigPath | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        problems = _one_of(self, "secret_env", "secret_file")
        problems += _one_of(self, "password_env", "password_file")
        if self.url is None:
            problems += [
                (key, "is only used with state.url (a PostgreSQL state store)")
                for key in ("password_env", "password_file", "sslmode", "sslrootcert")
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
            raise _KeyProblems(problems)
        return self

    @property
    def location(self) -> Location:
        """Where the store is: the SQLite file, or the PostgreSQL database (its password read
        now, from `password_env` / `password_file`; ConfigError naming the key)."""
        if self.url is None:
            return self.path
        password = _read_secret(
            "state.password_env", self.password_env, "state.password_file", self.password_file
        )
        return PostgresAddress(self.url, password, self.sslmode, self.sslrootcert)

    @property
    def generated_secret_path(self) -> Path:
        """Where the generated secret is kept when none is configured: `<path>.secret`."""
        return self.path.with_name(self.path.name + ".secret")


class ServiceSettings(_Section):
    """`[service]`: the long-running `serve` command."""

    listen: ListenAddress = "127.0.0.1:8000"
    webhook_secret_env: EnvName | None = None
    webhook_secret_file: ConfigPath | None = None
    schedule: CronSchedule = "0 * * * *"
    midnight_sync: bool = True
    # Which scheduled syncs are `sync --full` (`service.schedule.Reconcile`).
    reconcile: Literal["nightly", "every", "never"] = "nightly"
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    ready_max_failed_age_seconds: int = Field(default=7200, ge=0)
    ready_max_sync_seconds: float = Field(default=1800.0, gt=0)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=3600)
    max_connections: int = Field(default=100, ge=2, le=10_000)
    webhook_concurrency: int = Field(default=8, ge=1, le=1000)
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    body_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    keep_alive_seconds: float = Field(default=5.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        problems = _one_of(self, "webhook_secret_env", "webhook_secret_file")
        if problems:
            raise _KeyProblems(problems)
        return self

    def listen_host_port(self) -> tuple[str, int]:
        """`listen` split into host (IPv6 brackets removed) and port."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    def resolve_webhook_secret(self) -> str | None:
        """The webhook HMAC secret, read now (at least `MIN_WEBHOOK_SECRET_BYTES` long and
        `MIN_SECRET_BITS` of estimated randomness); None when neither key is set."""
        secret = _read_secret(
            "service.webhook_secret_env",
            self.webhook_secret_env,
            "service.webhook_secret_file",
            self.webhook_secret_file,
        )
        if secret is None:
            return None
        key = (
            "service.webhook_secret_env"
            if self.webhook_secret_env is not None
            else "service.webhook_secret_file"
        )
        return _random_enough(key, secret)


class LoggingSettings(_Section):
    """`[logging]`: structlog events on stderr."""

    level: Annotated[
        Literal["debug", "info", "warning", "error", "critical"], BeforeValidator(_lower)
    ] = "warning"
    format: Literal["auto", "console", "json"] = "auto"


class ReportSettings(_Section):
    """`[report]`: what reports for people show."""

    # People's names beside their employee keys in text reports and in `--format json`
    # (`name`); off: keys and masked national numbers only.
    names: bool = True


class Settings(_Section):
    """The whole configuration; build it with `load_config`."""

    source: SourceSettings
    target: TargetSettings
    mapping: MappingSettings = Field(default_factory=MappingSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    externals: ExternalsSettings = Field(default_factory=ExternalsSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)

    _config_file: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _remember_file(self, info: ValidationInfo) -> Self:
        file = (info.context or {}).get(_CONFIG_FILE)
        self._config_file = Path(file) if file is not None else None
        return self

    @property
    def config_file(self) -> Path | None:
        """The file these settings were loaded from (absolute), if any."""
        return self._config_file

    def state_secret(self) -> bytes:
        """The state store's secret: `state.secret_env`/`secret_file`, else generated beside it."""
        state = self.state
        given = _read_secret(
            "state.secret_env", state.secret_env, "state.secret_file", state.secret_file
        )
        if given is None:
            return _generated_secret(state.generated_secret_path)
        key = "state.secret_env" if state.secret_env is not None else "state.secret_file"
        return _long_enough(key, given, MIN_STATE_SECRET_BYTES).encode()


# ---------------------------------------------------------------------------- loading


def load_config(path: Path) -> Settings:
    """Read a config file, apply environment overrides and validate; raises ConfigError."""
    data = _read_toml(path)
    overrides = _environment_overrides()
    merged = _deep_merge(data, overrides)
    _fill_default_sections(Settings, merged)
    absolute = Path(os.path.abspath(path))  # not resolve(): keep symlinked config folders
    context = {_BASE_DIR: absolute.parent, _CONFIG_FILE: absolute}
    try:
        return Settings.model_validate(merged, context=context)
    except ValidationError as exc:
        raise _config_error(exc, str(path), _dotted_keys(overrides)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    """The parsed TOML file; ConfigError if it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            "--config", f"{path}: no such file (give --config PATH or set {CONFIG_PATH_ENV})"
        ) from None
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError("--config", f"{path} is not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, str(path)) from None


_TOML_WHERE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _toml_error(exc: tomllib.TOMLDecodeError, file: str) -> ConfigError:
    """A TOML syntax error, keyed by its line."""
    message = str(exc)
    where = _TOML_WHERE.search(message)
    if where is None:
        return ConfigError("end of file", f"invalid TOML: {message.split(' (at ')[0]}", file)
    line, column = where.groups()
    return ConfigError(
        f"line {line}", f"invalid TOML: {message[: where.start()]} (column {column})", file
    )


def _environment_overrides() -> dict[str, Any]:
    """`SCIM_CONNECTOR_<SECTION>__<KEY>` variables as nested values (pydantic-settings' parser)."""
    unknown = sorted(
        name
        for name in os.environ
        if name.upper().startswith(ENV_PREFIX)
        and ENV_NESTED_DELIMITER in name[len(ENV_PREFIX) :]
        and name[len(ENV_PREFIX) :].split(ENV_NESTED_DELIMITER)[0].lower()
        not in Settings.model_fields
    )
    if unknown:
        raise ConfigError(
            "environment",
            f"{unknown[0]} names no config section (sections: {', '.join(Settings.model_fields)})",
        )
    source = EnvSettingsSource(
        Settings,  # type: ignore[arg-type]  # only its fields are read
        case_sensitive=False,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        env_ignore_empty=True,
    )
    try:
        return dict(source())
    except SettingsError as exc:
        raise ConfigError("environment", str(exc)) from None


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override`'s values, tables merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = _deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def _section_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    """The model of a sub-section `name` of `model`, or None if it is a plain key."""
    field = model.model_fields.get(name)
    annotation = field.annotation if field is not None else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _fill_default_sections(model: type[BaseModel], data: dict[str, Any]) -> None:
    """Add absent optional sections as empty tables, so their paths resolve like given ones."""
    for name, field in model.model_fields.items():
        section = _section_model(model, name)
        if section is None:
            continue
        if name not in data and not field.is_required():
            data[name] = {}
        if isinstance(data.get(name), dict):
            _fill_default_sections(section, data[name])


def _dotted_keys(values: Mapping[str, Any], prefix: str = "") -> set[str]:
    """The dotted names of the leaves of nested tables."""
    keys: set[str] = set()
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            keys |= _dotted_keys(value, dotted + ".")
        else:
            keys.add(dotted)
    return keys


# ---------------------------------------------------------------------------- messages


def _config_error(exc: ValidationError, file: str, from_env: set[str]) -> ConfigError:
    """One ConfigError for all validation errors: the first names its key, one line each."""
    # Unknown keys first: a typo'd key is the likely cause of a "required" one.
    errors = sorted(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")
    problems = [problem for error in errors for problem in _problems(error)]
    lines = [f"{key}: {message}{_env_hint(key, from_env)}" for key, message in problems]
    first_key, _ = problems[0]
    first_line = lines[0].removeprefix(f"{first_key}: ")
    return ConfigError(
        first_key, "\n".join([first_line, *(f"{file}: {line}" for line in lines[1:])]), file
    )


def _problems(error: ErrorDetails) -> list[tuple[str, str]]:
    """(dotted key, plain message) pairs for one pydantic error."""
    loc = tuple(str(part) for part in error["loc"])
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, _KeyProblems):
        return [(".".join((*loc, key)), message) for key, message in cause.problems]
    return [(".".join(loc) or "(config)", _plain_message(error, loc))]


_SHOWS_INPUT = frozenset(
    {"literal_error", "greater_than", "greater_than_equal", "less_than", "less_than_equal"}
)
_PLAIN = {
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be a string",
    "path_type": "must be a path (a string)",
    "model_type": "must be a table (a [section]), not a single value",
    "dict_type": "must be a table (a [section]), not a single value",
    "model_attributes_type": "must be a table (a [section]), not a single value",
}


def _plain_message(error: ErrorDetails, loc: tuple[str, ...]) -> str:
    """Pydantic's message in plain words; the input is shown only where it cannot be a secret."""
    kind = error["type"]
    if kind == "missing":
        return "this section is required" if _is_section(loc) else "is required"
    if kind == "extra_forbidden":
        return _unknown_key_message(loc)
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    message = _PLAIN.get(kind) or error["msg"].replace("Input should be", "must be")
    value = error["input"]
    if kind in _SHOWS_INPUT and isinstance(value, str | int | float):
        message += f" (got {value!r})"
    return message


def _model_at(loc: tuple[str, ...]) -> type[BaseModel] | None:
    """The section model at a location, or None if `loc` is not a section."""
    model: type[BaseModel] | None = Settings
    for part in loc:
        if model is None:
            return None
        model = _section_model(model, part)
    return model


def _is_section(loc: tuple[str, ...]) -> bool:
    return bool(loc) and _model_at(loc) is not None


def _unknown_key_message(loc: tuple[str, ...]) -> str:
    """'unknown key', with the likeliest intended key and the keys that exist there."""
    parent = _model_at(loc[:-1])
    what = "section" if len(loc) == 1 else "key"
    if parent is None:
        return f"unknown {what}"
    known = list(parent.model_fields)
    guess = difflib.get_close_matches(loc[-1], known, n=1)
    hint = f"; did you mean {guess[0]!r}?" if guess else ""
    return f"unknown {what}{hint} (known: {', '.join(known)})"


def _env_hint(key: str, from_env: set[str]) -> str:
    """Which environment variable set a key, if one did."""
    for env_key in sorted(from_env):
        if key == env_key or key.startswith(env_key + "."):
            name = ENV_PREFIX + env_key.replace(".", ENV_NESTED_DELIMITER).upper()
            return f" (from environment variable {name})"
    return ""
