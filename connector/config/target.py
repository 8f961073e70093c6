"""`[target]`: the SCIM service provider, how to authenticate to it, and how hard to try."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal, Self

from pydantic import (
    Field,
    model_validator,
)

from connector.config.secret_sources import (
    read_secret,
)
from connector.config.values import (
    BaseUrlStr,
    ConfigPath,
    EnvName,
    HttpUrlStr,
    KeyProblems,
    NonEmptyStr,
    Section,
    one_of,
)
from connector.errors import ConfigError

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
            found += one_of(auth, first, second)
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


class TargetAuth(Section):
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
            raise KeyProblems(problems)
        return self

    def resolve_token(self) -> str:
        """The bearer token, read now from `token_env` or `token_file` (method "bearer")."""
        self._expect_method("bearer")
        token = read_secret(
            f"{_AUTH}.token_env", self.token_env, f"{_AUTH}.token_file", self.token_file
        )
        assert token is not None  # the validator made sure one of them is set
        return token

    def resolve_client_secret(self) -> str:
        """The OAuth2 client secret, read now from `client_secret_env` or `client_secret_file`."""
        self._expect_method("client_secret_basic", "client_secret_post")
        secret = read_secret(
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
        text = read_secret(key, None, key, self.private_key_file)
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


class Capabilities(Section):
    """`[target.capabilities]`: corrections to what the target announces (None: discover)."""

    patch: bool | None = None
    bulk: bool | None = None
    etag: bool | None = None
    filter: bool | None = None
    search: bool | None = None
    acmidm_extension: bool | None = None


class RetrySettings(Section):
    """`[target.retry]`: how hard to try one call before reporting it failed."""

    attempts: int = Field(default=6, ge=1, le=50)
    max_seconds: float = Field(default=120.0, gt=0)
    initial_wait_seconds: float = Field(default=0.5, ge=0)
    max_wait_seconds: float = Field(default=30.0, ge=0)


class TargetSettings(Section):
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
            raise KeyProblems([("verify_tls", "is false, but ca_bundle is set: choose one")])
        return self
