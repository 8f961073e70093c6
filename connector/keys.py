"""Keyed hashes: person keys (also the SCIM externalId) and digests of pushed values.

The state store never holds a national number in clear; it holds these keyed hashes, so a
copied state file does not leak register numbers (a plain hash would: there are only a few
tens of millions of valid national numbers to try).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

DIGEST_SIZE = 8  # bytes of a value digest


@dataclass(frozen=True, slots=True)
class Keyring:
    """Derives stable pseudonyms and digests from one secret."""

    secret: bytes = field(repr=False)
    _keyed: hmac.HMAC = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Keying HMAC-SHA256 costs more than hashing a short value: key once, copy per use.
        object.__setattr__(self, "_keyed", hmac.new(self.secret, digestmod=hashlib.sha256))

    def person_key(self, national_digits: str) -> str:
        """The pseudonymous key of a person: 32 hex characters, stable for this secret."""
        return self._mac(b"person:" + national_digits.encode()).hex()[:32]

    def digest(self, value: str) -> bytes:
        """A keyed digest of a pushed value (8 bytes), to notice changes without keeping it.

        64 bits: a change goes unnoticed with odds of 1 in 2**64; the state store keeps one per
        owned attribute per person, so their size counts (see `known.Digests`).
        """
        return self._mac(b"value:" + value.encode())[:DIGEST_SIZE]

    def record_digest(self, canonical: str) -> str:
        """A keyed digest of a webhook event's record as sent (its canonical JSON): 128 bits as
        22 base64url characters (hardly ever a run of digits that reads as a national number),
        to tell records apart without keeping their national numbers."""
        digest = self._mac(b"record:" + canonical.encode())[:16]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def fingerprint(self) -> str:
        """A keyed fingerprint of the secret (32 hex characters) that tells secrets apart and
        reveals nothing of them: kept in the state store to refuse a store of another secret."""
        return self._mac(b"fingerprint:state secret").hex()[:32]

    def _mac(self, message: bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(message)
        return mac.digest()
