"""Loading a config file into `Settings` (TOML, environment overrides, validation), and
naming each problem by its dotted key."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic_core import ErrorDetails
from pydantic_settings import EnvSettingsSource
from pydantic_settings.exceptions import SettingsError

from connector.config.settings import Settings
from connector.config.values import (
    BASE_DIR,
    CONFIG_FILE,
    KeyProblems,
)
from connector.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config/connector.toml")
CONFIG_PATH_ENV = "SCIM_CONNECTOR_CONFIG"
ENV_PREFIX = "SCIM_CONNECTOR_"
ENV_NESTED_DELIMITER = "__"


def config_path_from_env() -> Path:
    """The config file to use: `$SCIM_CONNECTOR_CONFIG` if set, else `config/connector.toml`."""
    return Path(os.environ.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_PATH)


def load_config(path: Path) -> Settings:
    """Read a config file, apply environment overrides and validate; raises ConfigError."""
    data = _read_toml(path)
    overrides = _environment_overrides()
    merged = _deep_merge(data, overrides)
    _fill_default_sections(Settings, merged)
    absolute = Path(os.path.abspath(path))  # not resolve(): keep symlinked config folders
    context = {BASE_DIR: absolute.parent, CONFIG_FILE: absolute}
    try:
        return Settings.model_validate(merged, context=context)
    except ValidationError as exc:
        raise _config_error(exc, str(path), _dotted_keys(overrides)) from None


def environment_keys() -> dict[str, str]:
    """The keys set by `SCIM_CONNECTOR_<SECTION>__<KEY>` environment variables: dotted key ->
    the variable's name; ConfigError for a variable naming no section."""
    return {
        key: ENV_PREFIX + key.replace(".", ENV_NESTED_DELIMITER).upper()
        for key in sorted(_dotted_keys(_environment_overrides()))
    }


def _read_toml(path: Path) -> dict[str, Any]:
    """The parsed TOML file; ConfigError if it cannot be read or parsed."""
    if path.is_dir():
        raise ConfigError(
            "--config",
            f"{path} is a folder: a folder of configurations (one per organisation) is for "
            "`scim-connector serve`; give this command one organisation's file",
        )
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
    if isinstance(cause, KeyProblems):
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
    known = [field.alias or name for name, field in parent.model_fields.items()]
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
