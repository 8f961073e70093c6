"""Domain exceptions. The CLI maps them to exit codes, in one place."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error the connector reports to a person."""


class ConfigError(ConnectorError):
    """The configuration (or a mapping file) is invalid; names the key that is wrong."""

    def __init__(self, key: str, message: str, file: str | None = None) -> None:
        self.key = key
        self.file = file
        self.message = message
        where = f"{file}: " if file else ""
        super().__init__(f"{where}{key}: {message}")


class InputError(ConnectorError):
    """An input file cannot be read at all (missing, unreadable, no header, wrong format)."""

    def __init__(self, file: str, message: str) -> None:
        self.file = file
        super().__init__(f"{file}: {message}")


class TargetError(ConnectorError):
    """The SCIM target cannot be used (unreachable, refuses authentication, unusable answers)."""


class AuthError(TargetError):
    """Authentication to the target failed: the token endpoint refused the client, or the
    target refused the token it issued. Names the client and the endpoint, never a secret."""


class SafetyStop(ConnectorError):
    """A safety check stopped the run before anything was applied."""


class LockedError(ConnectorError):
    """Another sync holds the state store's lock."""


class UsageError(ConnectorError):
    """A command-line value the connector checks itself (not the option parser) is wrong:
    `--as-of`, `--employee`, a missing selection."""
