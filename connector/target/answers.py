"""The target's answers as the connector takes them: scim2-client's, scim2-models' and
pydantic's failures turned into `connector.target.errors` (unchained: their notes may quote
payloads, national numbers included), and the values read out of an answer."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx2
from pydantic import ValidationError
from scim2_client import RequestNetworkException, SCIMClientException
from scim2_models import (
    Error,
    Group,
    SCIMException,
    User,
)

from connector.target.errors import (
    Conflict,
    InvalidResponse,
    NotFound,
    PreconditionFailed,
    Rejected,
    TargetRequestError,
    TargetUnavailable,
    parse_retry_after,
)
from connector.target.transport import DECODED

T = TypeVar("T")


@contextlib.contextmanager
def mapped_errors(operation: str) -> Iterator[None]:
    """Turn scim2-client, scim2-models and pydantic exceptions into the connector's, unchained.

    The originals are not chained: their notes may quote payloads (national numbers included).
    """
    try:
        yield
    except TargetRequestError:
        raise
    except RequestNetworkException as exc:
        cause = exc.__cause__
        detail = f"{type(cause).__name__}: {cause}" if cause else exc.message
        raise TargetUnavailable(operation, detail) from None
    except SCIMException as exc:
        response = response_of(exc)
        if response is None:  # refused by scim2-client before sending
            raise Rejected(operation, exc.detail, scim_type=exc.scim_type) from None
        raise by_status(operation, response, exc.scim_type, exc.detail) from None
    except SCIMClientException as exc:
        response = response_of(exc)
        if response is None:
            raise InvalidResponse(operation, exc.message) from None
        raise by_status(operation, response, None, exc.message) from None
    except ValidationError as exc:  # a payload that does not fit the target's models
        details = "; ".join(str(error.detail) for error in Error.from_validation_errors(exc))
        raise Rejected(operation, details) from None


def by_status(
    operation: str, response: httpx2.Response, scim_type: str | None, detail: str
) -> TargetRequestError:
    """The connector exception for an HTTP answer."""
    status = response.status_code
    if status == 429 or (status >= 500 and status != 501):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return TargetUnavailable(
            operation, detail, status=status, scim_type=scim_type, retry_after=retry_after
        )
    kinds: dict[int, type[TargetRequestError]] = {
        404: NotFound,
        409: Conflict,
        412: PreconditionFailed,
    }
    kind = kinds.get(status)
    if kind is None:
        kind = Rejected if 400 <= status < 500 or status == 501 else InvalidResponse
    return kind(operation, detail, status=status, scim_type=scim_type)


def response_of(exc: Exception) -> httpx2.Response | None:
    """The HTTP response scim2-client attached to an exception, if any."""
    source = getattr(exc, "source", None)
    return source if isinstance(source, httpx2.Response) else None


def error_payload(response: httpx2.Response) -> tuple[str | None, str]:
    """The scimType and detail of a SCIM Error answer (or just the status line)."""
    fallback = f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return None, fallback
    if not isinstance(body, dict):
        return None, fallback
    scim_type = body.get("scimType")
    detail = body.get("detail")
    return (
        scim_type if isinstance(scim_type, str) else None,
        detail if isinstance(detail, str) and detail else fallback,
    )


def json_of(response: httpx2.Response, operation: str) -> object:
    """The decoded JSON body of a 2xx answer (None when it has none)."""
    if DECODED in response.extensions:  # a read: the transport decoded it already
        return response.extensions[DECODED]
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise InvalidResponse(operation, "the target's answer is not JSON") from None


def as_user(resource: object, operation: str) -> User[Any]:
    """A User from a scim2-client answer, or InvalidResponse."""
    if not isinstance(resource, User):
        raise InvalidResponse(operation, "the target did not answer with a User")
    return resource


def as_group(resource: object, operation: str) -> Group:
    """A Group from a scim2-client answer, or InvalidResponse."""
    if not isinstance(resource, Group):
        raise InvalidResponse(operation, "the target did not answer with a Group")
    return resource


def quoted(value: str) -> str:
    """A SCIM filter string literal (a JSON string, RFC 7644 §3.4.2.2)."""
    return json.dumps(value, ensure_ascii=False)
