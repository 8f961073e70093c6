"""The sandbox's SCIM service: scim2-server's ASGI application, in memory, serving the
RFC 7643 schemas plus the ACM/IDM User extension (`connector/schemas/acmidm-user.json`)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from http import HTTPStatus
from importlib import resources
from typing import Any

from scim2_models import ResourceType, Schema, ScimProvider, UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

from connector.scim_models import ACMIDM_USER_SCHEMA

TokenCheck = Callable[[str], bool]


def acmidm_schema() -> dict[str, Any]:
    """The ACM/IDM User extension schema, as shipped in the package."""
    text = resources.files("connector").joinpath("schemas/acmidm-user.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def acmidm_provider() -> ScimProvider:
    """A SCIM provider description: RFC 7643 defaults plus the ACM/IDM User extension."""
    schemas = [*load_default_schemas().values(), Schema.model_validate(acmidm_schema())]
    resource_types = []
    for resource_type in load_default_resource_types().values():
        if resource_type.id == "User":
            data = resource_type.model_dump()
            data.setdefault("schemaExtensions", []).append(
                {"schema": ACMIDM_USER_SCHEMA, "required": False}
            )
            resource_type = ResourceType.model_validate(data)
        resource_types.append(resource_type)
    return ScimProvider.from_discovery(
        schemas, resource_types, config=load_default_service_provider_config()
    )


class SandboxScimApp(ASGIApplication):
    """scim2-server's ASGI application that asks a token check for every protected call."""

    def __init__(self, check_token: TokenCheck | None = None) -> None:
        provider = acmidm_provider()
        super().__init__(
            AsyncInMemoryStorage(),
            provider,
            ScimService(provider, secret=secrets.token_urlsafe(32)),
        )
        self.check_token = check_token

    def check_auth(self, request: ScimRequest) -> None:
        """Refuse a request without a valid bearer token (when a check is configured)."""
        if self.check_token is None:
            return
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not self.check_token(token.strip()):
            raise UnauthorizedException

    def finalize_response(self, request: ScimRequest, response: ScimResponse) -> ScimResponse:
        """Add the RFC 6750 challenge to a 401."""
        if response.status == HTTPStatus.UNAUTHORIZED:
            given = bool(request.header("Authorization"))
            error = ', error="invalid_token"' if given else ""
            response.headers.setdefault("WWW-Authenticate", f'Bearer realm="sandbox"{error}')
        finalized: ScimResponse = super().finalize_response(request, response)
        return finalized
