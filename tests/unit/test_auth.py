"""The OAuth2 client's edges that no real server produces on demand (httpx2.MockTransport):
the assertion's claims, token endpoint failures, a target that keeps refusing, concurrency."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from connector.errors import AuthError, ConfigError
from connector.target.auth import (
    ASSERTION_LIFETIME_SECONDS,
    OAuth2TargetClient,
    OAuthMethod,
    StaticAuth,
    load_signing_key,
)
from connector.target.errors import TargetUnavailable

TOKEN_URL = "https://idp.example.test/op/v1/token"
BASE_URL = "https://scim.example.test/v2"
SECRET = "s3cret-value-that-must-not-leak"
KEY = RSAKey.generate_key(2048, parameters={"kid": "key-1"})

Handler = Callable[[httpx2.Request], httpx2.Response]


@dataclass
class FakeIdp:
    """A token endpoint and a SCIM endpoint, answering what a test tells them to."""

    token_answers: list[httpx2.Response] = field(default_factory=list)
    scim_status: int = 200
    token_forms: list[dict[str, str]] = field(default_factory=list)
    token_headers: list[httpx2.Headers] = field(default_factory=list)
    scim_auth: list[str] = field(default_factory=list)
    issued: int = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if str(request.url) == TOKEN_URL:
            self.token_forms.append(dict(parse_qsl(request.content.decode())))
            self.token_headers.append(request.headers)
            if self.token_answers:
                return self.token_answers.pop(0)
            self.issued += 1
            body = {"access_token": f"token-{self.issued}", "token_type": "Bearer"}
            return httpx2.Response(200, json={**body, "expires_in": 3600})
        self.scim_auth.append(request.headers.get("Authorization", ""))
        return httpx2.Response(self.scim_status, json={"Resources": []})


def client(
    idp: Handler, method: OAuthMethod = "client_secret_basic", **options: str
) -> OAuth2TargetClient:
    credential = KEY if method == "private_key_jwt" else SECRET
    return OAuth2TargetClient(
        method=method,
        token_url=TOKEN_URL,
        client_id="connector-1",
        credential=credential,
        base_url=BASE_URL,
        transport=httpx2.MockTransport(idp),
        **options,
    )


def get_users(oauth: OAuth2TargetClient, times: int = 1) -> list[httpx2.Response]:
    async def run() -> list[httpx2.Response]:
        async with oauth:
            return list(await asyncio.gather(*(oauth.get("/Users") for _ in range(times))))

    return asyncio.run(run())


# ---------------------------------------------------------------------------- requests


def test_private_key_jwt_assertion_claims() -> None:
    idp = FakeIdp()
    oauth = client(idp, "private_key_jwt")

    async def twice() -> None:
        async with oauth:
            await oauth.get("/Users")
            oauth.token = {"access_token": "old", "token_type": "Bearer", "expires_at": 1}
            await oauth.get("/Users")  # expired: a new assertion for a new token

    asyncio.run(twice())
    assertions = [form["client_assertion"] for form in idp.token_forms]
    assert len(assertions) == 2
    for form in idp.token_forms:
        assert form["client_assertion_type"] == (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        )
        assert form["grant_type"] == "client_credentials"
        assert "client_secret" not in form
    decoded = [jwt.decode(a, KEY) for a in assertions]
    for token in decoded:
        claims = token.claims
        assert claims["iss"] == claims["sub"] == "connector-1"
        assert claims["aud"] == TOKEN_URL
        assert claims["exp"] - claims["iat"] == ASSERTION_LIFETIME_SECONDS
        assert token.header["alg"] == "RS256" and token.header["kid"] == "key-1"
    assert decoded[0].claims["jti"] != decoded[1].claims["jti"]


def test_audience_is_the_assertion_audience_and_a_parameter() -> None:
    idp = FakeIdp()
    options = {"audience": "https://idp.example.test/op", "resource": BASE_URL, "scope": "a b"}
    get_users(client(idp, "private_key_jwt", **options))
    (form,) = idp.token_forms
    assert jwt.decode(form["client_assertion"], KEY).claims["aud"] == options["audience"]
    assert (form["audience"], form["resource"], form["scope"]) == (
        options["audience"],
        BASE_URL,
        "a b",
    )


def test_client_secret_basic_and_post_put_the_secret_where_they_should() -> None:
    basic, post = FakeIdp(), FakeIdp()
    get_users(client(basic, "client_secret_basic"))
    get_users(client(post, "client_secret_post"))
    assert basic.token_headers[0]["Authorization"].startswith("Basic ")
    assert "client_secret" not in basic.token_forms[0]
    assert post.token_forms[0]["client_secret"] == SECRET
    assert "Authorization" not in post.token_headers[0]
    assert basic.token_headers[0]["Accept"] == "application/json"


def test_concurrent_first_requests_fetch_one_token() -> None:
    idp = FakeIdp()
    responses = get_users(client(idp), times=8)
    assert [r.status_code for r in responses] == [200] * 8
    assert len(idp.token_forms) == 1
    assert set(idp.scim_auth) == {"Bearer token-1"}


def test_a_short_lifetime_is_renewed_a_tenth_ahead() -> None:
    idp = FakeIdp(
        token_answers=[
            httpx2.Response(
                200, json={"access_token": "t", "token_type": "bearer", "expires_in": 30}
            )
        ]
    )
    oauth = client(idp)
    get_users(oauth)
    assert oauth.leeway == 3


# ---------------------------------------------------------------------------- failures


def test_a_target_that_keeps_refusing_is_an_auth_error_after_one_renewal() -> None:
    idp = FakeIdp(scim_status=401)
    with pytest.raises(AuthError, match="refused a fresh access token of OAuth2 client"):
        get_users(client(idp))
    assert len(idp.token_forms) == 2
    assert idp.scim_auth == ["Bearer token-1", "Bearer token-2"]


def refusal(status: int, **body: str) -> httpx2.Response:
    return httpx2.Response(status, json=body)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            refusal(401, error="invalid_client", error_description="bad\n  credentials"),
            "failed: 401 invalid_client: bad credentials",
        ),
        (refusal(400, error="invalid_scope"), "failed: 400 invalid_scope"),
        (httpx2.Response(403, text="<html>no</html>"), "403 invalid_response: HTTP 403"),
        (
            httpx2.Response(200, json={"access_token": "x", "token_type": "mac"}),
            "unsupported_token_type",
        ),
        (httpx2.Response(200, json={"token_type": "Bearer"}), "has no access_token"),
    ],
)
def test_token_endpoint_refusals_are_auth_errors(answer: httpx2.Response, expected: str) -> None:
    idp = FakeIdp(token_answers=[answer])
    with pytest.raises(AuthError) as raised:
        get_users(client(idp))
    message = str(raised.value)
    assert expected in message
    assert f"client 'connector-1' at {TOKEN_URL}" in message
    assert SECRET not in message
    assert idp.scim_auth == []  # nothing reached the SCIM API


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_failing_token_endpoint_is_worth_retrying(status: int) -> None:
    answer = httpx2.Response(status, headers={"Retry-After": "7"}, text="busy")
    with pytest.raises(TargetUnavailable) as raised:
        get_users(client(FakeIdp(token_answers=[answer])))
    assert raised.value.status == status
    assert raised.value.retry_after == 7


def test_an_unreachable_token_endpoint_is_worth_retrying() -> None:
    def unreachable(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    with pytest.raises(TargetUnavailable, match="ConnectError"):
        get_users(client(unreachable))


def test_a_private_key_jwt_refusal_never_shows_the_assertion() -> None:
    idp = FakeIdp(token_answers=[refusal(400, error="invalid_client")])
    with pytest.raises(AuthError) as raised:
        get_users(client(idp, "private_key_jwt"))
    assert idp.token_forms[0]["client_assertion"] not in str(raised.value)
    assert "eyJ" not in str(raised.value)


# ---------------------------------------------------------------------------- bearer and none


@pytest.mark.parametrize(("method", "token"), [("bearer", "static-token"), ("none", None)])
def test_static_methods_turn_a_401_into_an_auth_error(method: str, token: str | None) -> None:
    seen: list[str] = []

    def target(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers.get("Authorization", ""))
        return httpx2.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    async def run() -> None:
        auth = StaticAuth("bearer", token) if method == "bearer" else StaticAuth("none")
        async with httpx2.AsyncClient(
            base_url=BASE_URL, auth=auth, transport=httpx2.MockTransport(target)
        ) as http:
            await http.get("/Users")

    with pytest.raises(AuthError, match="401 on GET /v2/Users; WWW-Authenticate: Bearer") as raised:
        asyncio.run(run())
    assert seen == ([f"Bearer {token}"] if token else [""])
    assert token is None or token not in str(raised.value)


# ---------------------------------------------------------------------------- keys


def test_signing_keys_load_from_pem_or_jwk_and_are_checked(tmp_path: Path) -> None:
    pem = KEY.as_pem(private=True).decode()
    jwk = json.dumps(KEY.as_dict(private=True))
    assert load_signing_key(pem, "RS256", "k.pem").is_private
    assert load_signing_key(jwk, "PS256", "k.jwk").kid == "key-1"
    with pytest.raises(ConfigError, match="public key"):
        load_signing_key(json.dumps(KEY.as_dict(private=False)), "RS256", "pub.jwk")
    ec = json.dumps(ECKey.generate_key("P-256").as_dict(private=True))
    with pytest.raises(ConfigError, match="EC key; RS256 needs RSA"):
        load_signing_key(ec, "RS256", "ec.jwk")
    assert isinstance(load_signing_key(ec, "ES256", "ec.jwk"), ECKey)
    with pytest.raises(ConfigError, match="no usable RSA private key"):
        load_signing_key(
            "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----", "RS256", "x"
        )


def test_a_streamed_request_gets_a_token_first() -> None:
    idp = FakeIdp()
    oauth = client(idp)

    async def run() -> int:
        async with oauth, oauth.stream("GET", "/Users") as response:
            await response.aread()
            return response.status_code

    assert asyncio.run(run()) == 200
    assert idp.scim_auth == ["Bearer token-1"]
