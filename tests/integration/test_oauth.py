"""OAuth2 client credentials against the sandbox, over real HTTP on loopback.

Each auth method gets a token and a sync completes; refusals are clear and exit 2; tokens are
renewed before they expire and once after a 401; the sandbox refuses replayed assertions and
SCIM calls without a valid token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc.jwk import RSAKey
from typer.testing import CliRunner

from connector import jobs
from connector.cli import app
from connector.config import load_config
from connector.errors import AuthError
from connector.report import Report
from connector.sandbox.oauth import (
    METADATA_PATH,
    DemoClient,
    SandboxConfig,
    generate_demo_client,
)
from connector.sandbox.server import RunningSandbox, TlsFiles, sandbox_in_thread
from connector.target.auth import OAuth2TargetClient
from connector.target.client import TargetClient
from connector.target.connect import connect, http_client
from connector.target.errors import TargetUnavailable
from tests.factories import HR_FIELDS, hr_row, write_csv
from tests.postgres import state_toml

pytestmark = pytest.mark.integration
SYNCS = pytest.mark.usefixtures("state_backend")  # a test that syncs: on SQLite and PostgreSQL

DAY = dt.date(2026, 12, 1)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PEOPLE = 4


@pytest.fixture(scope="module")
def demo_client(tmp_path_factory: pytest.TempPathFactory) -> DemoClient:
    """One demo client (key pair + secret) for the module: key generation takes a moment."""
    return generate_demo_client(tmp_path_factory.mktemp("sandbox-client"))


@pytest.fixture(scope="module")
def stranger_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private key the sandbox has never seen."""
    path = tmp_path_factory.mktemp("stranger") / "stranger.pem"
    path.write_bytes(RSAKey.generate_key(2048).as_pem(private=True))
    return path


def start(demo_client: DemoClient, lifetime: int = 3600) -> Any:
    """A fresh sandbox that knows the demo client."""
    config = SandboxConfig(clients=(demo_client.sandbox_client(),), token_lifetime_seconds=lifetime)
    return sandbox_in_thread(config=config)


@pytest.fixture
def sandbox(demo_client: DemoClient) -> Iterator[RunningSandbox]:
    """A fresh sandbox (empty SCIM store, no tokens) for one test."""
    with start(demo_client) as running:
        yield running


def auth_section(
    method: str, sandbox: RunningSandbox, client: DemoClient, **extra: str | Path
) -> dict[str, str | Path]:
    """`[target.auth]` keys for `method` with the demo client's credentials."""
    assert sandbox.token_url is not None
    keys: dict[str, str | Path] = {
        "method": method,
        "token_url": sandbox.token_url,
        "client_id": client.client_id,
    }
    if method == "private_key_jwt":
        keys["private_key_file"] = client.private_key_file
    else:
        keys["client_secret_file"] = client.secret_file
    keys.update(extra)
    return keys


def write_config(
    directory: Path,
    sandbox: RunningSandbox,
    auth: dict[str, str | Path],
    concurrency: int = 4,
    target_extra: str = "",
) -> Path:
    """An HR file of PEOPLE people and a connector config pointing at the sandbox."""
    write_csv(directory / "hr.csv", [hr_row(n) for n in range(1, PEOPLE + 1)], fields=HR_FIELDS)
    lines = "\n".join(f"{key} = {json.dumps(str(value))}" for key, value in auth.items())
    config = directory / "connector.toml"
    config.write_text(
        f"""
[source]
path = "hr.csv"

[target]
base_url = "{sandbox.base_url}"
concurrency = {concurrency}
{target_extra}

[target.auth]
{lines}

[state]
{state_toml(directory)}
""",
        encoding="utf-8",
    )
    return config


def sync(config: Path) -> Report:
    settings = load_config(config)
    return asyncio.run(jobs.sync(settings, jobs.new_run_id(), DAY))


def user_names(sandbox: RunningSandbox) -> list[str]:
    """The userNames the sandbox holds (read with a token of its own)."""
    token = fetch_token_basic(sandbox, sandbox.clients[0].client_id, sandbox.clients[0].secret)
    response = httpx2.get(
        f"{sandbox.base_url}/Users",
        params={"count": 1000},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return sorted(user["userName"] for user in response.json().get("Resources", []))


def fetch_token_basic(sandbox: RunningSandbox, client_id: str, secret: str | None) -> str:
    assert sandbox.token_url is not None and secret is not None
    response = httpx2.post(
        sandbox.token_url, data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


# ---------------------------------------------------------------------------- each method


@SYNCS
@pytest.mark.parametrize("method", ["private_key_jwt", "client_secret_basic", "client_secret_post"])
def test_each_method_gets_a_token_and_the_sync_completes(
    method: str, sandbox: RunningSandbox, demo_client: DemoClient, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sandbox, auth_section(method, sandbox, demo_client))
    report = sync(config)
    assert report.exit_code == 0, report.to_json()
    assert report.counts["create"] == PEOPLE
    assert sandbox.oauth is not None
    (token,) = sandbox.oauth.tokens.issued  # fetched once, cached for the whole run
    assert (token.client_id, token.auth_method) == (demo_client.client_id, method)
    assert sandbox.oauth.tokens.refused == 0
    assert user_names(sandbox) == [f"person{n}@gent.be" for n in range(1, PEOPLE + 1)]


@SYNCS
def test_scope_audience_and_resource_go_with_the_token_request(
    sandbox: RunningSandbox, demo_client: DemoClient, tmp_path: Path
) -> None:
    issuer = sandbox.origin  # ACM/IDM wants the issuer as the assertion's audience
    auth = auth_section(
        "private_key_jwt",
        sandbox,
        demo_client,
        scope="scim",
        audience=issuer,
        resource=sandbox.base_url,
        key_id=demo_client.key_id,
    )
    assert sync(write_config(tmp_path, sandbox, auth)).exit_code == 0
    assert sandbox.oauth is not None
    (token,) = sandbox.oauth.tokens.issued
    assert (token.scope, token.audience, token.resource) == ("scim", issuer, sandbox.base_url)


# ---------------------------------------------------------------------------- refusals


def run_cli(config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["sync", "--config", str(config), "--as-of", str(DAY)])
    return result.exit_code, result.output


@SYNCS
def test_a_wrong_secret_fails_clearly_and_exits_2(
    sandbox: RunningSandbox, demo_client: DemoClient, tmp_path: Path
) -> None:
    wrong = "not-the-secret-" + "x" * 12
    (tmp_path / "secret").write_text(wrong, encoding="utf-8")
    auth = auth_section("client_secret_basic", sandbox, demo_client)
    auth["client_secret_file"] = tmp_path / "secret"
    code, output = run_cli(write_config(tmp_path, sandbox, auth))
    assert code == 2, output
    flat = " ".join(output.split())
    assert f"client '{demo_client.client_id}'" in flat
    assert str(sandbox.token_url) in flat
    assert "invalid_client" in flat
    assert wrong not in output and str(demo_client.secret) not in output
    assert user_names(sandbox) == []  # nothing applied


@SYNCS
def test_an_unknown_key_fails_clearly_and_exits_2(
    sandbox: RunningSandbox, demo_client: DemoClient, stranger_key_file: Path, tmp_path: Path
) -> None:
    auth = auth_section("private_key_jwt", sandbox, demo_client, private_key_file=stranger_key_file)
    code, output = run_cli(write_config(tmp_path, sandbox, auth))
    assert code == 2, output
    flat = " ".join(output.split())
    assert f"client '{demo_client.client_id}'" in flat and str(sandbox.token_url) in flat
    assert "invalid_client" in flat
    assert "not signed by a key registered for this client" in flat
    assert "eyJ" not in output  # no JWT (assertion) in the message


def test_an_unknown_client_fails_clearly(sandbox: RunningSandbox, demo_client: DemoClient) -> None:
    assert sandbox.token_url is not None
    client = OAuth2TargetClient(
        method="client_secret_post",
        token_url=sandbox.token_url,
        client_id="nobody",
        credential="whatever-secret",
        base_url=sandbox.base_url,
    )

    async def attempt() -> None:
        async with client:
            await client.get("/Users")

    with pytest.raises(AuthError, match=r"client 'nobody'.*invalid_client"):
        asyncio.run(attempt())


# ---------------------------------------------------------------------------- renewal


@SYNCS
def test_a_token_is_renewed_before_it_expires(demo_client: DemoClient, tmp_path: Path) -> None:
    with start(demo_client, lifetime=2) as box:
        config = write_config(tmp_path, box, auth_section("client_secret_basic", box, demo_client))
        settings = load_config(config)

        async def scenario() -> None:
            async with connect(settings) as client:
                await client.find_users_by_user_name("person1@gent.be")
                await asyncio.sleep(2.1)
                await client.find_users_by_user_name("person1@gent.be")

        asyncio.run(scenario())
        assert box.oauth is not None
        assert len(box.oauth.tokens.issued) == 2
        assert box.oauth.tokens.refused == 0  # renewed ahead, not after a refusal


@SYNCS
def test_the_sync_completes_while_tokens_expire(
    demo_client: DemoClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = TargetClient.discover

    async def slow_discover(self: TargetClient, *args: Any, **kwargs: Any) -> Any:
        found = await original(self, *args, **kwargs)
        await asyncio.sleep(1.2)  # the first token expires before the first write
        return found

    monkeypatch.setattr(TargetClient, "discover", slow_discover)
    with start(demo_client, lifetime=1) as box:
        auth = auth_section("private_key_jwt", box, demo_client)
        report = sync(write_config(tmp_path, box, auth))
        assert report.exit_code == 0, report.to_json()
        assert report.counts["create"] == PEOPLE
        assert box.oauth is not None
        assert len(box.oauth.tokens.issued) >= 2


@SYNCS
def test_a_401_renews_the_token_once_and_retries(
    sandbox: RunningSandbox, demo_client: DemoClient, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path, sandbox, auth_section("client_secret_post", sandbox, demo_client)
    )
    settings = load_config(config)
    assert sandbox.oauth is not None
    oauth = sandbox.oauth

    async def scenario() -> list[Any]:
        async with connect(settings) as client:
            oauth.tokens.revoke_all()  # the server forgets the token the client holds
            return await client.find_users_by_user_name("person1@gent.be")

    assert asyncio.run(scenario()) == []
    assert len(oauth.tokens.issued) == 2
    assert oauth.tokens.refused == 1


# ---------------------------------------------------------------------------- the sandbox


def assertion(client: DemoClient, audience: str, jti: str) -> str:
    key = RSAKey.import_key(client.private_key_file.read_text(encoding="utf-8"))
    signed = private_key_jwt_sign(
        key, client_id=client.client_id, token_endpoint=audience, claims={"jti": jti}
    )
    return signed.decode() if isinstance(signed, bytes) else str(signed)


def test_a_replayed_client_assertion_is_rejected(
    sandbox: RunningSandbox, demo_client: DemoClient
) -> None:
    assert sandbox.token_url is not None
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(demo_client, sandbox.token_url, jti="once-only-1"),
    }
    first = httpx2.post(sandbox.token_url, data=form)
    assert first.status_code == 200, first.text
    assert first.json()["token_type"] == "Bearer"
    replay = httpx2.post(sandbox.token_url, data=form)
    assert replay.status_code in (400, 401)
    assert replay.json()["error"] == "invalid_client"
    assert "used before" in replay.json()["error_description"]


def test_the_issuer_is_an_accepted_audience_and_others_are_not(
    sandbox: RunningSandbox, demo_client: DemoClient
) -> None:
    assert sandbox.token_url is not None
    for audience, accepted in ((sandbox.origin, True), ("https://elsewhere.example", False)):
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(demo_client, audience, jti=f"aud-{accepted}"),
        }
        response = httpx2.post(sandbox.token_url, data=form)
        assert (response.status_code == 200) is accepted, response.text


def test_scim_calls_without_a_valid_token_get_401(sandbox: RunningSandbox) -> None:
    no_token = httpx2.get(f"{sandbox.base_url}/Users")
    assert no_token.status_code == 401
    assert no_token.headers["WWW-Authenticate"].startswith("Bearer")
    bad_token = httpx2.get(f"{sandbox.base_url}/Users", headers={"Authorization": "Bearer made-up"})
    assert bad_token.status_code == 401
    assert 'error="invalid_token"' in bad_token.headers["WWW-Authenticate"]
    # RFC 7643 §5: the service provider configuration needs no authentication.
    assert httpx2.get(f"{sandbox.base_url}/ServiceProviderConfig").status_code == 200


def test_the_metadata_document_names_the_token_endpoint(sandbox: RunningSandbox) -> None:
    metadata = httpx2.get(sandbox.origin + METADATA_PATH).json()
    assert metadata["token_endpoint"] == sandbox.token_url
    assert metadata["issuer"] == sandbox.origin
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]


@SYNCS
def test_a_401_with_auth_none_is_an_auth_error_and_exits_2(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    code, output = run_cli(write_config(tmp_path, sandbox, {"method": "none"}))
    assert code == 2, output
    assert "target.auth.method is 'none'" in " ".join(output.split())


# ---------------------------------------------------------------------------- the CLI command


def test_the_sandbox_command_serves_and_prints_its_credentials(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "connector", "sandbox", "--port", "0"]
    command += ["--key-dir", str(tmp_path), "--token-lifetime", "120"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        printed = ""
        deadline = time.monotonic() + 30
        while "Ctrl-C" not in printed and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            printed += line
        token_url = re.search(r"token endpoint\s+(\S+)", printed)
        secret = re.search(r"client_secret_basic\s+secret (\S+)", printed)
        assert token_url and secret, printed
        assert "throwaway" in printed and "not production secrets" in printed
        assert (tmp_path / "scim-connector-demo-key.pem").stat().st_mode & 0o077 == 0
        response = httpx2.post(
            token_url.group(1),
            data={"grant_type": "client_credentials"},
            auth=("scim-connector-demo", secret.group(1)),
        )
        assert response.status_code == 200, response.text
        assert response.json()["expires_in"] == 120
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


# ---------------------------------------------------------------------------- TLS


def make_certificates(directory: Path) -> tuple[Path, TlsFiles]:
    """A private CA (its certificate in a PEM file) and a server certificate it signed for
    127.0.0.1 (certificate and key files)."""
    now = dt.datetime.now(dt.UTC)

    def build(subject: str, issuer: str, public: Any, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
            builder = builder.add_extension(x509.SubjectAlternativeName([address]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = build("test CA", "test CA", ca_key.public_key(), ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = build("127.0.0.1", "test CA", server_key.public_key(), ca_key, ca=False)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files = TlsFiles(directory / "server.pem", directory / "server-key.pem")
    files.certificate.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.private_key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, files


@SYNCS
def test_tls_is_verified_with_the_configured_ca_bundle(
    demo_client: DemoClient, tmp_path: Path
) -> None:
    ca_file, files = make_certificates(tmp_path)
    config = SandboxConfig(clients=(demo_client.sandbox_client(),))
    with sandbox_in_thread(config=config, tls=files) as box:
        assert str(box.token_url).startswith("https://")
        auth = auth_section("private_key_jwt", box, demo_client)
        trusting = write_config(tmp_path, box, auth, target_extra=f'ca_bundle = "{ca_file}"')
        report = sync(trusting)
        assert report.exit_code == 0, report.to_json()
        assert report.counts["create"] == PEOPLE

        (tmp_path / "plain").mkdir()
        settings = load_config(write_config(tmp_path / "plain", box, auth))

        async def untrusted() -> None:
            async with http_client(settings) as http:
                await http.get("/Users")

        with pytest.raises(TargetUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            asyncio.run(untrusted())
