"""What can go wrong with one SCIM request, as the few cases the connector acts on differently.

`TargetClient` raises only these. `TargetUnavailable` is worth retrying (transport errors, 429,
5xx); the others are not. Messages carry the operation, the HTTP status, the scimType and the
server's detail with anything that looks like a national number masked; never a request body.
"""

from __future__ import annotations

import datetime as dt
import email.utils

from connector.errors import TargetError
from connector.nationalid import mask_national_ids


class TargetRequestError(TargetError):
    """One SCIM request failed; `status` is None when no HTTP answer was received or needed."""

    def __init__(
        self,
        operation: str,
        detail: str,
        *,
        status: int | None = None,
        scim_type: str | None = None,
    ) -> None:
        self.operation = operation
        self.status = status
        self.scim_type = scim_type or None
        self.detail = mask_national_ids(detail)
        super().__init__(_message(operation, status, self.scim_type, self.detail))


class TargetUnavailable(TargetRequestError):
    """Transport error, 429 or 5xx: try again later, after `retry_after` seconds if given."""

    def __init__(
        self,
        operation: str,
        detail: str,
        *,
        status: int | None = None,
        scim_type: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(operation, detail, status=status, scim_type=scim_type)


class Conflict(TargetRequestError):
    """409: a unique value (userName, externalId, nationalId) is taken, or a version clash."""


class NotFound(TargetRequestError):
    """404: the resource does not exist (any more)."""


class PreconditionFailed(TargetRequestError):
    """412: the resource changed since the ETag the request was conditional on."""


class Rejected(TargetRequestError):
    """Any other refusal (4xx, 501), or a payload refused before sending (`status` None)."""


class InvalidResponse(TargetRequestError):
    """The target answered something that is not a valid SCIM response for the request."""


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay in seconds or HTTP date), or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    current = now or dt.datetime.now(dt.UTC)
    return max((when - current).total_seconds(), 0.0)


def _message(operation: str, status: int | None, scim_type: str | None, detail: str) -> str:
    answer = " ".join(part for part in (str(status) if status else "", scim_type or "") if part)
    return f"{operation}: {answer}: {detail}" if answer else f"{operation}: {detail}"


class EffectMissing(TargetRequestError):
    """A write the target answered as done, whose effect is not there (read back or answered)."""


class Unreadable(InvalidResponse):
    """A resource the target answered with that does not parse (a value its schema forbids)."""
