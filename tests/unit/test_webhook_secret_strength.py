"""The webhook secret must be random, not only long: at least 32 bytes and an estimated 128 bits.

What `openssl rand -hex 32` or `-base64 32` prints always passes; a long secret made of one
character, a short pattern repeated, or a run like `abcd…` is refused at start, naming the key
and never showing the secret.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.config import load_config
from connector.errors import ConfigError
from connector.secret_strength import MIN_SECRET_BITS, estimated_bits
from tests.unit.test_private_files import write_config

OPENSSL_FORMS = {
    "openssl rand -hex 32": lambda raw: raw.hex(),
    "hex in upper case": lambda raw: raw.hex().upper(),
    "openssl rand -base64 32": lambda raw: base64.b64encode(raw).decode(),
    "base64url without padding": lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("="),
}


@pytest.mark.parametrize("form", OPENSSL_FORMS)
def test_what_openssl_rand_prints_for_32_bytes_is_always_random_enough(form: str) -> None:
    source = random.Random(f"webhook secrets {form}")  # uniformly random bytes, reproducibly
    for _ in range(400):
        secret = OPENSSL_FORMS[form](source.randbytes(32))
        # With a wide margin: these hold 256 bits; the estimate must never come near the bar.
        assert estimated_bits(secret) >= MIN_SECRET_BITS + 64, secret


@settings(max_examples=200)
@given(
    unit=st.text(min_size=1, max_size=16),
    extra=st.integers(min_value=0, max_value=40),
)
def test_a_short_pattern_repeated_to_any_length_is_not_random_enough(unit: str, extra: int) -> None:
    times = max(2, -(-(32 + extra) // len(unit)))
    assert estimated_bits(unit * times) < MIN_SECRET_BITS


@settings(max_examples=200)
@given(
    start=st.integers(min_value=0x21, max_value=0x2FF),
    step=st.sampled_from([-1, 0, 1]),
    length=st.integers(min_value=32, max_value=200),
)
def test_a_run_of_characters_is_not_random_enough(start: int, step: int, length: int) -> None:
    secret = "".join(chr(max(0x21, start + step * i)) for i in range(length))
    assert estimated_bits(secret) < MIN_SECRET_BITS


@pytest.mark.parametrize(
    "weak",
    [
        "a" * 40,
        "ab" * 20,
        "0123456789" * 4,
        "password" * 5,
        "abcdefghijklmnopqrstuvwxyz0123456789",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
    ],
)
@pytest.mark.parametrize("source", ["env", "file"])
def test_a_long_but_predictable_webhook_secret_is_refused_naming_the_key_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, weak: str
) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", weak)
    (tmp_path / "webhook.secret").write_text(weak + "\n", encoding="utf-8")
    key = "webhook_secret_env" if source == "env" else "webhook_secret_file"
    value = "TEST_WEBHOOK_SECRET" if source == "env" else "webhook.secret"
    settings = load_config(write_config(tmp_path, f'\n[service]\n{key} = "{value}"\n'))

    with pytest.raises(ConfigError) as caught:
        settings.service.resolve_webhook_secret()

    message = str(caught.value)
    assert caught.value.key == f"service.{key}"
    assert "too predictable" in message
    assert f"at least {MIN_SECRET_BITS}" in message
    assert "openssl rand -hex 32" in message
    assert weak not in message and weak[:8] not in message
