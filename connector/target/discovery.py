"""What discovery establishes about a target: its capabilities (as announced, corrected by
configuration) and the pure helpers that read its announcements leniently."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scim2_models import (
    URI,
    Bulk,
    ETag,
    Filter,
    Group,
    Patch,
    Reference,
    ResourceType,
    SchemaExtension,
    ServiceProviderConfig,
    Sort,
    User,
)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the target supports, as discovered and then corrected by configuration."""

    patch: bool
    bulk: bool
    bulk_max_operations: int | None
    bulk_max_payload: int | None
    etag: bool
    filter: bool
    filter_max_results: int | None
    sort: bool
    search: bool  # POST <endpoint>/.search answers
    acmidm_extension: bool  # /Schemas lists it and the User resource type declares it


@dataclass(frozen=True, slots=True)
class CapabilityOverrides:
    """Configured corrections of `Capabilities`; a field left None keeps the discovered value."""

    patch: bool | None = None
    bulk: bool | None = None
    bulk_max_operations: int | None = None
    bulk_max_payload: int | None = None
    etag: bool | None = None
    filter: bool | None = None
    filter_max_results: int | None = None
    sort: bool | None = None
    search: bool | None = None
    acmidm_extension: bool | None = None

    def apply(self, discovered: Capabilities) -> Capabilities:
        """The discovered capabilities with every set field of these overrides in place."""
        changes = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if getattr(self, field.name) is not None
        }
        return dataclasses.replace(discovered, **changes)


def supported(feature: Patch | Bulk | ETag | Filter | Sort | None) -> bool:
    """Whether a ServiceProviderConfig feature says `supported: true`."""
    return bool(feature and feature.supported)


def published_type(
    published: Sequence[ResourceType], model: type[User[Any]] | type[Group]
) -> ResourceType | None:
    """The published resource type whose core schema is the model's."""
    schema = str(model.__schema__).casefold()
    for resource_type in published:
        if str(resource_type.schema_).casefold() == schema:
            return resource_type
    return None


def declares(resource_type: ResourceType, extension_schema: str) -> bool:
    """Whether a resource type lists an extension schema."""
    wanted = extension_schema.casefold()
    return any(
        str(extension.schema_).casefold() == wanted
        for extension in resource_type.schema_extensions or []
    )


def with_extension(resource_type: ResourceType, schema: str, present: bool) -> ResourceType:
    """The resource type with an (optional) extension schema declared or not."""
    if declares(resource_type, schema) == present:
        return resource_type
    others = [
        extension
        for extension in resource_type.schema_extensions or []
        if str(extension.schema_).casefold() != schema.casefold()
    ]
    if present:
        others.append(SchemaExtension(schema_=Reference[URI](schema), required=False))
    return resource_type.model_copy(update={"schema_extensions": others})


def corrected_config(
    config: ServiceProviderConfig, capabilities: Capabilities
) -> ServiceProviderConfig:
    """The ServiceProviderConfig scim2-client goes by (If-Match, bulk limits), overrides applied."""
    return config.model_copy(
        update={
            "patch": Patch(supported=capabilities.patch),
            "bulk": Bulk(
                supported=capabilities.bulk,
                max_operations=capabilities.bulk_max_operations,
                max_payload_size=capabilities.bulk_max_payload,
            ),
            "etag": ETag(supported=capabilities.etag),
            "filter": Filter(
                supported=capabilities.filter, max_results=capabilities.filter_max_results
            ),
            "sort": Sort(supported=capabilities.sort),
        }
    )


FEATURES: dict[str, type[Patch | Bulk | Filter | ETag | Sort]] = {
    "patch": Patch,
    "bulk": Bulk,
    "filter": Filter,
    "etag": ETag,
    "sort": Sort,
}


def snake(name: str) -> str:
    """A ServiceProviderConfig key as the model's field name."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def list_items(body: object) -> list[object]:
    """The resources of a ListResponse (with or without totalResults) or of a bare list."""
    if isinstance(body, dict):
        resources = body.get("Resources")
        return list(resources) if isinstance(resources, list) else []
    return list(body) if isinstance(body, list) else []


def relative_endpoint(endpoint: str | None, base_path: str, default: str) -> str:
    """A resource type's endpoint as a path relative to the base URL (`/Users`).

    RFC 7643 §6 makes it relative ("/Users"); some targets publish the path from the host root
    ("/scim/v2/Users") or a whole URL: joined to the base URL as is, that path would be doubled.
    """
    if not endpoint:
        return default
    path = urlsplit(endpoint).path if "://" in endpoint else endpoint
    base = base_path.rstrip("/")
    if base and (path == base or path.startswith(base + "/")):
        path = path[len(base) :]
    path = "/" + path.strip("/")
    return path if path != "/" else default
