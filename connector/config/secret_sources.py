"""Secrets named by the configuration: read from an environment variable or a file when
used, checked for length and randomness; the generated state secret beside the store."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from connector.errors import ConfigError
from connector.private_files import PRIVATE_FILE_MODE, make_private_dirs
from connector.secret_strength import MIN_SECRET_BITS, estimated_bits

MIN_STATE_SECRET_BYTES = 16
MIN_WEBHOOK_SECRET_BYTES = 32


def read_secret(env_key: str, env_name: str | None, file_key: str, file: Path | None) -> str | None:
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


def long_enough(key: str, secret: str, minimum_bytes: int) -> str:
    """`secret` if it has at least `minimum_bytes` bytes (UTF-8), else a ConfigError naming
    `key` (never the secret): the one rule for every secret the connector keys a hash with."""
    if len(secret.encode()) < minimum_bytes:
        raise ConfigError(key, f"the secret is too short: it needs at least {minimum_bytes} bytes")
    return secret


def random_enough(key: str, secret: str) -> str:
    """`secret` if it is at least `MIN_WEBHOOK_SECRET_BYTES` long and holds an estimated
    `MIN_SECRET_BITS` of randomness (`connector.secret_strength`), else a ConfigError naming
    `key` (never the secret): the rule for secrets that sign what others send."""
    long_enough(key, secret, MIN_WEBHOOK_SECRET_BYTES)
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


def generated_secret(path: Path) -> bytes:
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
