"""Keyed hashes: person keys (also the SCIM externalId) and digests of pushed values.

The state store never holds a national number in clear; it holds these keyed hashes, so a
copied state file does not leak register numbers (a plain hash would: there are only a few
tens of millions of valid national numbers to try).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Keyring:
    """Derives stable pseudonyms and digests from one secret."""

    secret: bytes = field(repr=False)

    def person_key(self, national_digits: str) -> str:
        """The pseudonymous key of a person: 32 hex characters, stable for this secret."""
        return self._mac(b"person:" + national_digits.encode())[:32]

    def digest(self, value: str) -> str:
        """A keyed digest of a pushed value, to notice changes without keeping the value."""
        return self._mac(b"value:" + value.encode())[:32]

    def _mac(self, message: bytes) -> str:
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()
