"""How much randomness a secret holds, estimated from the secret alone.

A secret's length says little: `aaaa…` or `abcabc…` of 40 characters is guessed at once. The
estimate here counts, per character, the Shannon entropy of the secret's own characters
(corrected for a short sample; at most log2 of the alphabet they come from: hex 4 bits, base64
6 bits, ...), and counts only the characters that are not predictable from the ones before:
a character continuing a run (`aaa`, `abc`, `321`) or a repetition of an earlier stretch of
four or more (`passwordpassword`) adds nothing. `openssl rand -hex 32` is estimated at about
256 bits, `openssl rand -base64 32` at about 220; forty `x` at 0.

Pure: no I/O. Used for the webhook secret (`ServiceSettings.resolve_webhook_secret`).
"""

from __future__ import annotations

import math
import string
from collections import Counter

MIN_SECRET_BITS = 128  # what a secret the connector verifies signatures with must hold
MIN_REPEAT = 4  # a repeated stretch this long or longer is predictable
SAMPLE_CHARACTERS = 1024  # a longer secret is estimated on its beginning (plenty)

_HEX_LOWER = frozenset(string.digits + "abcdef")
_HEX_UPPER = frozenset(string.digits + "ABCDEF")
_PUNCTUATION = 33  # printable ASCII that is neither a letter nor a digit, space included
_NON_ASCII = 128  # a generous guess at the alphabet of other characters


def alphabet_size(text: str) -> int:
    """How many characters the alphabet of `text` has: hex 16, digits 10, lower case 26, ...
    (the sum of the classes it uses)."""
    used = frozenset(text)
    if used and (used <= _HEX_LOWER or used <= _HEX_UPPER) and not used <= set(string.digits):
        return 16
    size = 0
    if any(c in string.digits for c in used):
        size += 10
    if any(c in string.ascii_lowercase for c in used):
        size += 26
    if any(c in string.ascii_uppercase for c in used):
        size += 26
    if any(c.isascii() and not c.isalnum() for c in used):
        size += _PUNCTUATION
    if any(not c.isascii() for c in used):
        size += _NON_ASCII
    return size


def bits_per_character(text: str) -> float:
    """The Shannon entropy of `text`'s characters in bits, with the Miller-Madow correction for
    a short sample, at most log2 of its alphabet."""
    if not text:
        return 0.0
    counts = Counter(text)
    total = len(text)
    shannon = -sum(n / total * math.log2(n / total) for n in counts.values())
    corrected = shannon + (len(counts) - 1) / (2 * total * math.log(2))
    return min(corrected, math.log2(alphabet_size(text)))


def unpredictable_characters(text: str) -> int:
    """How many characters of `text` do not continue a run (`aaa`, `abc`, `cba`) nor repeat an
    earlier stretch of at least `MIN_REPEAT` characters."""
    count = 0
    i = 0
    while i < len(text):
        repeat = _longest_repeat(text, i)
        if repeat >= MIN_REPEAT:
            i += repeat
            continue
        if i < 2 or not _continues_run(text, i):
            count += 1
        i += 1
    return count


def _continues_run(text: str, i: int) -> bool:
    step = ord(text[i]) - ord(text[i - 1])
    return abs(step) <= 1 and step == ord(text[i - 1]) - ord(text[i - 2])


def _longest_repeat(text: str, i: int) -> int:
    """The length of the longest stretch starting at `i` that also starts earlier (it may
    overlap position `i`, as `abab…` repeats `ab`)."""
    best = 0
    for start in range(i):
        length = 0
        while i + length < len(text) and text[start + length] == text[i + length]:
            length += 1
        best = max(best, length)
    return best


def estimated_bits(secret: str) -> float:
    """The randomness `secret` holds, in bits (see the module's description)."""
    sample = secret[:SAMPLE_CHARACTERS]
    return unpredictable_characters(sample) * bits_per_character(sample)
