"""The sandbox's OAuth 2.0 token endpoint: authlib's authorization server, client credentials.

An ACM/IDM-style token endpoint for demos and tests, in memory:

- grant: `client_credentials` only; client authentication `client_secret_basic`,
  `client_secret_post` and `private_key_jwt` (RFC 7523: iss = sub = client_id, aud = the token
  endpoint's URL or the issuer, an unexpired `exp`, a `jti` never seen before: a replayed
  assertion is refused);
- tokens: opaque random bearer tokens living `SandboxConfig.token_lifetime_seconds`
  (default 3600 s, as ACM/IDM's), remembered in memory with what was asked for them
  (`TokenStore.issued`), and checked by the SCIM service for every protected call;
- `/.well-known/oauth-authorization-server` (RFC 8414) describes it.

`sandbox_asgi_app` composes it with the SCIM service (`connector.sandbox.scim`) into one ASGI
application: `/oauth/token` and the metadata here, everything else to scim2-server, which
answers 401 without a valid token. Clients come from `SandboxConfig`; `generate_demo_client`
makes a throwaway one (an RSA key pair and a secret) for the demo and `scim-connector sandbox`.

authlib refuses token requests over plain http except on loopback addresses: serve the
sandbox on 127.0.0.1 (or behind TLS).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast
from urllib.parse import parse_qsl, urlsplit

from authlib.oauth2 import AuthorizationServer, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749 import ClientCredentialsGrant, InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from connector.sandbox.scim import SandboxScimApp

TOKEN_PATH = "/oauth/token"
METADATA_PATH = "/.well-known/oauth-authorization-server"
DEFAULT_TOKEN_LIFETIME_SECONDS = 3600
DEMO_CLIENT_ID = "scim-connector-demo"
DEMO_SCOPE = "scim"
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
SIGNING_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
_MAX_TOKEN_REQUEST_BYTES = 64 * 1024

Clock = Callable[[], float]


# ---------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class SandboxClient:
    """A client the sandbox knows: a secret (client_secret_*), public keys (private_key_jwt)."""

    client_id: str
    secret: str | None = None
    public_jwks: Mapping[str, Any] | None = None  # {"keys": [<public JWK>, ...]}
    scope: str = DEMO_SCOPE  # the scopes it may ask for, space-separated

    @property
    def auth_methods(self) -> frozenset[str]:
        """The token endpoint authentication methods its credentials allow."""
        methods = set()
        if self.secret:
            methods |= {"client_secret_basic", "client_secret_post"}
        if self.public_jwks:
            methods.add("private_key_jwt")
        return frozenset(methods)


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """The sandbox's OAuth2 side: its clients and how long the tokens it issues live."""

    clients: tuple[SandboxClient, ...] = ()
    token_lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME_SECONDS

    def client(self, client_id: str) -> SandboxClient | None:
        """The registered client with this id, if any."""
        return next((c for c in self.clients if c.client_id == client_id), None)


@dataclass(frozen=True, slots=True)
class DemoClient:
    """A throwaway demo client: its id, its secret, and where its key and secret files are."""

    client_id: str
    secret: str
    secret_file: Path
    private_key_file: Path
    key_id: str
    public_jwks: Mapping[str, Any]
    signing_alg: str = "RS256"

    def sandbox_client(self) -> SandboxClient:
        """The same client as the sandbox registers it (secret and public key)."""
        return SandboxClient(self.client_id, secret=self.secret, public_jwks=self.public_jwks)


def generate_demo_client(directory: Path, client_id: str = DEMO_CLIENT_ID) -> DemoClient:
    """A new RSA key pair and secret for a demo client; the private key and secret are written
    to `directory` (mode 0600) as `<client_id>-key.pem` and `<client_id>-secret`."""
    directory.mkdir(parents=True, exist_ok=True)
    key = RSAKey.generate_key(2048, auto_kid=True)
    key_id = str(key.kid)
    secret = secrets.token_urlsafe(24)
    private_key_file = directory / f"{client_id}-key.pem"
    secret_file = directory / f"{client_id}-secret"
    _write_private(private_key_file, key.as_pem(private=True))
    _write_private(secret_file, (secret + "\n").encode())
    public = dict(key.as_dict(private=False))
    public.update({"use": "sig", "alg": "RS256"})
    return DemoClient(
        client_id=client_id,
        secret=secret,
        secret_file=secret_file,
        private_key_file=private_key_file,
        key_id=key_id,
        public_jwks={"keys": [public]},
    )


def _write_private(path: Path, content: bytes) -> None:
    """Write a file readable by its owner only (replacing an older one)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


# ---------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """What the sandbox remembers of an issued token (not the token itself)."""

    client_id: str
    auth_method: str
    scope: str
    audience: str | None
    resource: str | None
    issued_at: float
    expires_at: float


@dataclass(slots=True)
class TokenStore:
    """Issued tokens, in memory, thread-safe; `issued` keeps every issue in order."""

    clock: Clock = time.time
    issued: list[IssuedToken] = field(default_factory=list)
    refused: int = 0  # SCIM calls refused for a missing, unknown or expired token
    _tokens: dict[str, IssuedToken] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def remember(self, token: str, record: IssuedToken) -> None:
        """Keep an issued token until it expires."""
        with self._lock:
            now = self.clock()
            self._tokens = {t: r for t, r in self._tokens.items() if r.expires_at > now}
            self._tokens[token] = record
            self.issued.append(record)

    def check(self, token: str) -> bool:
        """Whether `token` was issued here and has not expired (a refusal is counted)."""
        with self._lock:
            record = self._tokens.get(token) if token else None
            if record is not None and record.expires_at > self.clock():
                return True
            self.refused += 1
            return False

    def revoke_all(self) -> None:
        """Forget every token issued so far (their next use gets 401)."""
        with self._lock:
            self._tokens.clear()


@dataclass(slots=True)
class _SeenAssertions:
    """The jti of every client assertion accepted and not yet expired, per client."""

    clock: Clock
    _seen: dict[tuple[str, str], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def first_use(self, client_id: str, jti: str, expires_at: float) -> bool:
        """Record a jti; False if it was seen before (a replay)."""
        with self._lock:
            now = self.clock()
            self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
            if (client_id, jti) in self._seen:
                return False
            self._seen[(client_id, jti)] = max(expires_at, now) + 300  # beyond any leeway
            return True


# ---------------------------------------------------------------------------- authlib glue


class _Client:
    """A `SandboxClient` as authlib's server sees a client (ClientMixin's methods)."""

    def __init__(self, client: SandboxClient) -> None:
        self.client = client
        self.client_id = client.client_id

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = self.client.scope.split()
        if not scope:
            return " ".join(allowed)  # no scope asked: the client's default
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        secret = self.client.secret
        return secret is not None and secrets.compare_digest(
            secret.encode(), client_secret.encode()
        )

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in self.client.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class _Payload(OAuth2Payload):  # type: ignore[misc]  # authlib is untyped
    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._data = dict(pairs)
        self._datalist: dict[str, list[str]] = {}
        for name, value in pairs:
            self._datalist.setdefault(name, []).append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class _TokenRequest(OAuth2Request):  # type: ignore[misc]  # authlib is untyped
    """A form-encoded token request, read by Starlette, as authlib's OAuth2Request."""

    def __init__(self, request: Request, pairs: Sequence[tuple[str, str]]) -> None:
        super().__init__(request.method, str(request.url), headers=request.headers)
        self.payload = _Payload(pairs)

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        data: dict[str, str] = self.payload.data
        return data


class _ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]  # authlib is untyped
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)


class _PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]  # authlib is untyped
    """RFC 7523 client assertions: signed by a registered key, aud = token URL or issuer,
    and each jti accepted once."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, sandbox: SandboxOAuth) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.sandbox = sandbox
        self._audiences: list[str] = []

    def __call__(self, query_client: Callable[[str], Any], request: Any) -> Any:
        # One request at a time: the token endpoint runs without awaiting in between.
        self._audiences = _audiences_for(str(request.uri))
        return super().__call__(query_client, request)

    def get_audiences(self) -> list[str]:
        return self._audiences

    def resolve_client_public_key(self, client: _Client) -> KeySet:
        return KeySet.import_key_set(dict(client.client.public_jwks or {"keys": []}))  # type: ignore[arg-type]

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        try:
            token = jwt.decode(assertion, resolve_key)
        except (JoseError, ValueError):  # a bad signature, or a kid the key set lacks
            raise InvalidClientError(
                description="the assertion is not signed by a key registered for this client"
            ) from None
        self.verify_claims(token.claims)
        return token.claims

    def validate_jti(self, claims: Mapping[str, Any], jti: str) -> bool:
        expires_at = float(claims.get("exp") or 0)
        return self.sandbox.assertions.first_use(str(claims["sub"]), str(jti), expires_at)


def _audiences_for(token_url: str) -> list[str]:
    """The audiences a client assertion may name: the token endpoint's URL and the issuer."""
    return [token_url, _issuer_of(token_url)]


def _issuer_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class _AuthorizationServer(AuthorizationServer):  # type: ignore[misc]  # authlib is untyped
    def __init__(self, sandbox: SandboxOAuth) -> None:
        super().__init__()
        self.sandbox = sandbox
        self.register_grant(_ClientCredentials)
        self.register_client_auth_method("private_key_jwt", _PrivateKeyJWT(sandbox))
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda **_: secrets.token_urlsafe(32),
                expires_generator=lambda client, grant_type: sandbox.config.token_lifetime_seconds,
            ),
        )

    def query_client(self, client_id: str) -> _Client | None:
        client = self.sandbox.config.client(client_id)
        return _Client(client) if client is not None else None

    def save_token(self, token: Mapping[str, Any], request: Any) -> None:
        data = request.payload.data
        now = self.sandbox.tokens.clock()
        self.sandbox.tokens.remember(
            str(token["access_token"]),
            IssuedToken(
                client_id=request.client.client_id,
                auth_method=str(request.auth_method or "private_key_jwt"),
                scope=str(token.get("scope") or ""),
                audience=data.get("audience"),
                resource=data.get("resource"),
                issued_at=now,
                expires_at=now + float(token.get("expires_in") or 0),
            ),
        )

    def create_oauth2_request(self, request: Any) -> Any:
        return request

    def handle_response(
        self, status: int, body: Any, headers: Sequence[tuple[str, str]]
    ) -> Response:
        extra = {name: value for name, value in headers if name.lower() != "content-type"}
        return JSONResponse(dict(body) if body else {}, status_code=status, headers=extra)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


class SandboxOAuth:
    """The sandbox's authorization server: its clients, issued tokens and seen assertions."""

    def __init__(self, config: SandboxConfig, clock: Clock = time.time) -> None:
        self.config = config
        self.tokens = TokenStore(clock=clock)
        self.assertions = _SeenAssertions(clock=clock)
        self._server = _AuthorizationServer(self)

    def check_token(self, token: str) -> bool:
        """Whether a bearer token presented to the SCIM service is valid."""
        return self.tokens.check(token)

    async def token_endpoint(self, request: Request) -> Response:
        """POST /oauth/token: the client credentials grant (RFC 6749 §4.4)."""
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if media_type != "application/x-www-form-urlencoded":
            return self._error(InvalidRequestError("the body must be form-encoded"))
        if len(body) > _MAX_TOKEN_REQUEST_BYTES:
            return self._error(InvalidRequestError("the request is too large"))
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            return self._error(InvalidRequestError("the body is not UTF-8"))
        names = [name for name, _ in pairs]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            return self._error(InvalidRequestError(f"repeated parameter: {repeated[0]}"))
        try:
            token_request = _TokenRequest(request, pairs)
        except OAuth2Error as exc:  # plain http from an address other than loopback
            return self._error(exc)
        response: Response = self._server.create_token_response(token_request)
        return response

    async def metadata(self, request: Request) -> Response:
        """GET /.well-known/oauth-authorization-server (RFC 8414)."""
        issuer = _issuer_of(str(request.url))
        return JSONResponse(
            {
                "issuer": issuer,
                "token_endpoint": issuer + TOKEN_PATH,
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
                "token_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGS),
                "scopes_supported": sorted(
                    {s for client in self.config.clients for s in client.scope.split()}
                ),
            }
        )

    def _error(self, error: Any) -> Response:
        response: Response = self._server.handle_error_response(None, error)
        return response


def _asgi(app: SandboxScimApp) -> ASGIApp:
    """scim2-server's app as Starlette types it (it declares plain dicts for the messages)."""
    return cast(ASGIApp, app)


def sandbox_asgi_app(config: SandboxConfig | None) -> tuple[Starlette, SandboxOAuth | None]:
    """The sandbox as one ASGI app: SCIM under /v2, plus the token endpoint when `config`
    is given (then SCIM calls need a token it issued). Without `config`, SCIM is open."""
    if config is None:
        scim = SandboxScimApp()
        return Starlette(routes=[Mount("", app=_asgi(scim))]), None
    oauth = SandboxOAuth(config)
    scim = SandboxScimApp(check_token=oauth.check_token)
    routes = [
        Route(TOKEN_PATH, oauth.token_endpoint, methods=["POST"]),
        Route(METADATA_PATH, oauth.metadata, methods=["GET"]),
        Mount("", app=_asgi(scim)),
    ]
    return Starlette(routes=routes), oauth


__all__ = [
    "DEFAULT_TOKEN_LIFETIME_SECONDS",
    "DEMO_CLIENT_ID",
    "METADATA_PATH",
    "TOKEN_PATH",
    "DemoClient",
    "IssuedToken",
    "SandboxClient",
    "SandboxConfig",
    "SandboxOAuth",
    "TokenStore",
    "generate_demo_client",
    "sandbox_asgi_app",
]
