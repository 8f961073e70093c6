"""OAuth 2.0 client credentials for the SCIM target: authlib's AsyncOAuth2Client over httpx2.

`OAuth2TargetClient` is the httpx2 client handed to scim2-client for the methods
`client_secret_basic`, `client_secret_post` and `private_key_jwt` (RFC 7523: a JWT signed with
the client's private key, iss = sub = client_id, aud = the token endpoint or `audience`,
a random jti, valid for `ASSERTION_LIFETIME_SECONDS`). On top of authlib it:

- fetches the token on first use (authlib's client refuses to send without one), caches it and
  renews it before it expires (`DEFAULT_LEEWAY_SECONDS` ahead, or a tenth of a short lifetime),
  sending `scope`, `audience` and `resource` with every token request (authlib's own
  client-credentials re-fetch would drop `audience` and `resource`);
- answers a 401 from the SCIM API by renewing the token once and retrying the call; a second
  401 is an `AuthError`;
- turns token endpoint failures into the connector's errors: a refusal is an `AuthError`
  naming the client, the endpoint, and the server's `error` and `error_description`; an
  unreachable or failing (5xx, 429) endpoint is a `TargetUnavailable`, which is retried.
  Never the secret, the key or the client assertion.

`StaticAuth` does the 401 part for the methods "bearer" and "none".
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, cast

import httpx2
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, RSAKey, import_key

from connector.config import TargetAuth
from connector.errors import AuthError, ConfigError
from connector.target.errors import TargetUnavailable, parse_retry_after

DEFAULT_LEEWAY_SECONDS = 60
ASSERTION_LIFETIME_SECONDS = 60
_MAX_DESCRIPTION_CHARS = 300
_TOKEN_REQUEST_HEADERS = {
    "Accept": "application/json",
    "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
}

OAuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]
OAUTH_METHODS: tuple[OAuthMethod, ...] = (
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
)


# ---------------------------------------------------------------------------- private_key_jwt


def load_signing_key(text: str, signing_alg: str, source: Path | str) -> Key:
    """A private signing key from PEM text or a JWK (JSON text), checked against `signing_alg`."""
    where = "target.auth.private_key_file"
    key_type: Literal["RSA", "EC"] = "EC" if signing_alg.startswith("ES") else "RSA"
    try:
        if text.lstrip().startswith("-----BEGIN"):
            key: Key = import_key(text, key_type)
        else:
            key = import_key(json.loads(text))
    except (JoseError, ValueError, TypeError):
        raise ConfigError(
            where, f"{source} holds no usable {key_type} private key for {signing_alg}"
        ) from None
    expected = ECKey if key_type == "EC" else RSAKey
    if not isinstance(key, expected):
        raise ConfigError(
            where, f"{source} holds a {key.key_type} key; {signing_alg} needs {key_type}"
        )
    if not key.is_private:
        raise ConfigError(where, f"{source} holds a public key; the private one is needed")
    return key


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]  # authlib is untyped
    """authlib's `private_key_jwt` client authentication, with a fresh jti and a short expiry.

    authlib's own signer gives assertions an hour of validity; this one gives them
    `lifetime` seconds, and puts `key_id` (or the JWK's own kid) in the header.
    """

    def __init__(
        self,
        *,
        audience: str | None = None,
        alg: str = "RS256",
        key_id: str | None = None,
        lifetime: int = ASSERTION_LIFETIME_SECONDS,
    ) -> None:
        super().__init__(token_endpoint=audience, alg=alg)
        self.key_id = key_id
        self.lifetime = lifetime

    def sign(self, auth: Any, token_endpoint: str) -> str:
        """A new client assertion for `auth.client_id`, signed with `auth.client_secret` (a key)."""
        key = cast(Key, auth.client_secret)
        kid = self.key_id or key.kid
        assertion = private_key_jwt_sign(
            key,
            client_id=auth.client_id,
            token_endpoint=token_endpoint,
            alg=self.alg,
            claims={"jti": secrets.token_urlsafe(32)},
            header={"kid": kid} if kid else None,
            expires_in=self.lifetime,
        )
        return assertion.decode() if isinstance(assertion, bytes) else str(assertion)


# ---------------------------------------------------------------------------- the client


class OAuth2TargetClient(AsyncOAuth2Client):  # type: ignore[misc]  # authlib is untyped
    """An httpx2.AsyncClient that authenticates every request with an OAuth 2.0 client
    credentials token: fetched on first use, renewed before expiry and once on a 401."""

    def __init__(
        self,
        *,
        method: OAuthMethod,
        token_url: str,
        client_id: str,
        credential: str | Key,
        scope: str | None = None,
        audience: str | None = None,
        resource: str | None = None,
        signing_alg: str = "RS256",
        key_id: str | None = None,
        **client_kwargs: Any,
    ) -> None:
        super().__init__(
            client_id=client_id,
            client_secret=credential,
            token_endpoint_auth_method=method,
            scope=scope or None,
            leeway=DEFAULT_LEEWAY_SECONDS,
            token_endpoint=token_url,
            grant_type="client_credentials",
            **client_kwargs,
        )
        if method == "private_key_jwt":
            self.register_client_auth_method(
                ShortLivedPrivateKeyJWT(audience=audience or None, alg=signing_alg, key_id=key_id)
            )
        self.method = method
        self.token_url = token_url
        self._extra_parameters = {
            name: value for name, value in (("audience", audience), ("resource", resource)) if value
        }
        self._last_token_status: int | None = None
        self.register_compliance_hook("access_token_response", self._remember_status)
        self.tokens_fetched = 0
        """How many tokens this client obtained (the first one and every renewal)."""

    async def request(
        self,
        method: str,
        url: httpx2.URL | str,
        withhold_token: bool = False,
        auth: Any = httpx2.USE_CLIENT_DEFAULT,
        **kwargs: Any,
    ) -> httpx2.Response:
        """Send a request with a valid token; on a 401, renew the token once and retry."""
        if withhold_token or auth is not httpx2.USE_CLIENT_DEFAULT:
            # The token request itself (authlib passes the client authentication as `auth`).
            response: httpx2.Response = await super().request(
                method, url, withhold_token=withhold_token, auth=auth, **kwargs
            )
            return response
        used = await self._valid_token()
        response = await super().request(method, url, auth=self.token_auth, **kwargs)
        if response.status_code != 401:
            return response
        await response.aclose()
        await self._renew(used)
        response = await super().request(method, url, auth=self.token_auth, **kwargs)
        if response.status_code == 401:
            await response.aread()
            raise AuthError(
                f"the target refused a fresh access token of OAuth2 client {self.client_id!r} "
                f"from {self.token_url} (401 on {method} {response.request.url.path}"
                f"{_www_authenticate(response)})"
            )
        return response

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: httpx2.URL | str,
        withhold_token: bool = False,
        auth: Any = httpx2.USE_CLIENT_DEFAULT,
        **kwargs: Any,
    ) -> AsyncIterator[httpx2.Response]:
        """Stream a response, with a valid token (no retry on 401: the body is consumed)."""
        if not withhold_token and auth is httpx2.USE_CLIENT_DEFAULT:
            await self._valid_token()
            auth = self.token_auth
        async with super().stream(
            method, url, withhold_token=withhold_token, auth=auth, **kwargs
        ) as response:
            yield response

    async def fetch_access_token(self) -> None:
        """Obtain a new token from the token endpoint now (client credentials grant)."""
        try:
            await self.fetch_token(
                self.token_url,
                grant_type="client_credentials",
                headers=dict(_TOKEN_REQUEST_HEADERS),
                **self._extra_parameters,
            )
        except OAuthError as exc:
            raise self._refused(exc.error, exc.description) from None
        except httpx2.HTTPStatusError as exc:
            raise self._http_failure(exc.response) from None
        except httpx2.RequestError as exc:
            raise TargetUnavailable(self._operation(), f"{type(exc).__name__}: {exc}") from None
        except ValueError:
            raise self._refused(
                "invalid_response", "the answer is not a JSON object", self._last_token_status
            ) from None
        self._check_token()
        self.tokens_fetched += 1

    # -- internals --------------------------------------------------------

    async def _valid_token(self) -> str:
        """The current access token, fetched or renewed first when missing or about to expire."""
        async with self._token_refresh_lock:
            token: Any = self.token_auth.token
            if not token or token.is_expired(leeway=self.leeway):
                await self.fetch_access_token()
                token = self.token_auth.token
            return str(token["access_token"])

    async def _renew(self, stale: str) -> None:
        """Replace the token `stale` (unless another request already did)."""
        async with self._token_refresh_lock:
            token: Any = self.token_auth.token
            if not token or token.get("access_token") == stale:
                await self.fetch_access_token()

    def _remember_status(self, response: httpx2.Response) -> httpx2.Response:
        self._last_token_status = response.status_code
        return response

    def _check_token(self) -> None:
        """Refuse a token answer without an access token, or of a type other than Bearer."""
        token: Any = self.token_auth.token or {}
        if not isinstance(token.get("access_token"), str) or not token["access_token"]:
            self.token_auth.set_token(None)
            raise self._refused("invalid_response", "the answer has no access_token")
        token_type = str(token.get("token_type", "Bearer"))
        if token_type.lower() != "bearer":
            self.token_auth.set_token(None)
            raise self._refused(
                "unsupported_token_type", f"token_type {token_type[:40]!r} is not Bearer"
            )
        expires_in = token.get("expires_in")
        if isinstance(expires_in, int | float) and expires_in > 0:
            # Renew a minute ahead, or a tenth of the lifetime ahead for short-lived tokens.
            self.leeway = min(DEFAULT_LEEWAY_SECONDS, int(expires_in) // 10)

    def _operation(self) -> str:
        return f"OAuth2 token request for client {self.client_id!r} at {self.token_url}"

    def _refused(self, error: object, description: object, status: int | None = None) -> AuthError:
        status = status if status is not None else self._last_token_status
        answer = " ".join(part for part in (str(status or ""), str(error or "")) if part)
        text = _one_line(str(description)) if description else ""
        detail = f"{answer}: {text}" if text else answer
        return AuthError(f"{self._operation()} failed: {detail} ({_HINTS[self.method]})")

    def _http_failure(self, response: httpx2.Response) -> Exception:
        status = response.status_code
        if status == 429 or status >= 500:
            return TargetUnavailable(
                self._operation(),
                f"the token endpoint answered HTTP {status}",
                status=status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return self._refused(
            "invalid_response", f"HTTP {status} without an OAuth2 error object", status
        )


_HINTS: dict[str, str] = {
    "client_secret_basic": "check target.auth.client_id and the client secret",
    "client_secret_post": "check target.auth.client_id and the client secret",
    "private_key_jwt": "check target.auth.client_id, the private key and the key registered "
    "with the identity provider",
}


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > _MAX_DESCRIPTION_CHARS:
        return flat[: _MAX_DESCRIPTION_CHARS - 3] + "..."
    return flat


def _www_authenticate(response: httpx2.Response) -> str:
    challenge = response.headers.get("WWW-Authenticate")
    return f"; WWW-Authenticate: {_one_line(challenge)}" if challenge else ""


# ---------------------------------------------------------------------------- bearer and none


class StaticAuth(httpx2.Auth):
    """Methods "bearer" and "none": a fixed token (or none); a 401 is an `AuthError`."""

    def __init__(self, method: Literal["bearer", "none"], token: str | None = None) -> None:
        self.method = method
        self._header = f"Bearer {token}" if token else None

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        """Add the token; refuse to go on when the target answers 401."""
        if self._header is not None:
            request.headers["Authorization"] = self._header
        response = yield request
        if response.status_code == 401:
            await response.aread()
            if self.method == "none":
                reason = "the target requires authentication, but target.auth.method is 'none'"
            else:
                reason = "the target refused the bearer token (target.auth.token_env/token_file)"
            raise AuthError(
                f"{reason} (401 on {request.method} {request.url.path}"
                f"{_www_authenticate(response)})"
            )


# ---------------------------------------------------------------------------- from settings


def oauth2_client(auth: TargetAuth, **client_kwargs: Any) -> OAuth2TargetClient:
    """An `OAuth2TargetClient` for an OAuth2 `[target.auth]`; the secret or key is read now."""
    method = auth.method
    if method not in OAUTH_METHODS:
        raise ValueError(f"{method!r} is not an OAuth2 client credentials method")
    assert auth.token_url is not None and auth.client_id is not None  # the validator saw to it
    credential: str | Key
    if method == "private_key_jwt":
        source = auth.private_key_file or "target.auth.private_key_file"
        credential = load_signing_key(auth.resolve_private_key(), auth.signing_alg, source)
    else:
        credential = auth.resolve_client_secret()
    return OAuth2TargetClient(
        method=method,
        token_url=auth.token_url,
        client_id=auth.client_id,
        credential=credential,
        scope=auth.scope,
        audience=auth.audience,
        resource=auth.resource,
        signing_alg=auth.signing_alg,
        key_id=auth.key_id,
        **client_kwargs,
    )


def static_auth(auth: TargetAuth) -> StaticAuth:
    """The httpx2 Auth for the methods "bearer" (token read now) and "none"."""
    if auth.method == "bearer":
        return StaticAuth("bearer", auth.resolve_token())
    if auth.method == "none":
        return StaticAuth("none")
    raise ValueError(f"{auth.method!r} is not a static method")


__all__ = [
    "ASSERTION_LIFETIME_SECONDS",
    "DEFAULT_LEEWAY_SECONDS",
    "OAUTH_METHODS",
    "OAuth2TargetClient",
    "OAuthMethod",
    "ShortLivedPrivateKeyJWT",
    "StaticAuth",
    "load_signing_key",
    "oauth2_client",
    "static_auth",
]
