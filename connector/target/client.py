"""The SCIM target as the connector uses it: scim2-client over the caller's httpx2 client, typed.

Thin on purpose: no retries (see `connector.target.retry`), no business decisions. What it adds
to scim2-client:

- `discover()` reads what the target supports (`Capabilities`), lets configuration correct it
  (`CapabilityOverrides`, for servers that announce what they do not do), and describes the
  target to scim2-client with the connector's own models (`connector.scim_models`).
- Lookups verify every result client-side: some servers ignore filters.
- National numbers never go into a URL: the lookup by national number is a `POST .search`, and
  without `.search` (or without the ACM/IDM extension) it finds nothing rather than fall back
  to a GET.
- Users are fitted to what the target serves: extensions the target's User resource type does
  not declare (typically the ACM/IDM one) are dropped before sending.
- Every failure is one of the exceptions of `connector.target.errors`.
- The hot paths of a large sync skip scim2-client's model round trips: a create from the
  mapping's JSON (`create_user_json`) and a Bulk request (`send_bulk`, RFC 7644 §3.7) go as
  JSON through the same httpx2 client (authentication, retries of reads and event hooks all
  apply), and only the `id` is read from the answer. A user PUT reads and sends the user as
  JSON (`read_user_json`, `replace_user_json`): attributes no model knows are sent back as read.
- Group member changes go as JSON PATCH operations built by `connector.target.members` (the
  caller picks the form: see `connector.apply.ladder`); the answer's members, when it lists
  them, come back, so that the caller can check the effect without reading the group again.
- Groups can be found by listing (`find_groups_by_listing`), for targets whose filters are off
  or silently wrong.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlsplit

import httpx2
import structlog
from pydantic import ValidationError
from scim2_client import RequestNetworkException, SCIMClientException
from scim2_client.engines.httpx2 import AsyncSCIMClient
from scim2_models import (
    URI,
    Bulk,
    EnterpriseUser,
    Error,
    ETag,
    Filter,
    Group,
    ListResponse,
    Patch,
    PatchOp,
    PatchOperation,
    Reference,
    ResourceType,
    SchemaExtension,
    SCIMException,
    ScimProvider,
    SearchRequest,
    ServiceProviderConfig,
    Sort,
    User,
)

from connector.scim_models import (
    ACMIDM_USER_SCHEMA,
    NATIONAL_ID_PATH,
    AcmIdmUser,
    AcmUser,
    PlainUser,
    national_id_of,
)
from connector.target.bulk import dumps
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
from connector.target.members import Operation, member_ids_in, patch_body
from connector.target.schema import DeclaredSchema, declared_schema
from connector.target.transport import NO_RETRY

T = TypeVar("T")
log = structlog.get_logger(__name__)

ScimUser = User[Any]
"""A User as read from or sent to the target, with whatever extensions its resource type has."""

_MODELS = (User, Group, EnterpriseUser, AcmIdmUser)
_KNOWN_USER_EXTENSIONS = frozenset(
    str(extension.__schema__).casefold() for extension in (EnterpriseUser, AcmIdmUser)
)
# A filter on userName: the one every filtering server supports (Entra ID included).
_PROBE_FILTER = 'userName eq "scim-connector-capability-probe"'
SCIM_JSON = "application/scim+json"


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
class UserJson:
    """A user as the target holds it: its JSON as read, and the version a write of it can be
    made conditional on (None: the target gave none)."""

    body: dict[str, Any]
    version: str | None


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


class TargetClient:
    """Typed SCIM operations on one target; call `discover()` once before anything else."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self._http = http
        self._scim = AsyncSCIMClient(http, provider=ScimProvider(models=_MODELS, resource_types=()))
        self._capabilities: Capabilities | None = None
        self._resource_types: tuple[ResourceType, ResourceType] | None = None
        self._user_extensions: frozenset[str] | None = None  # casefolded schema URNs
        self.declared = DeclaredSchema.unknown()  # what /Schemas declares
        self.schemas_body: object | None = None  # the /Schemas answer, decoded
        # What discovery had to assume (an announcement missing, refused or malformed).
        self.notes: list[str] = []
        # Whether listings send `count` (a target that fails a page with it gets none).
        self.list_with_count = True

    # -- Discovery ------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        """The capabilities `discover()` established."""
        if self._capabilities is None:
            raise RuntimeError("TargetClient.discover() must be called first")
        return self._capabilities

    async def discover(self, overrides: CapabilityOverrides | None = None) -> Capabilities:
        """Read /ServiceProviderConfig, /ResourceTypes and /Schemas, and probe POST .search.

        Tolerant: an announcement that is missing, refused or malformed gives way to the
        conservative assumption (said once in `notes`); only an unreachable target or refused
        credentials stop discovery.
        """
        overrides = overrides or CapabilityOverrides()
        config = await self._read_config()
        schema_ids, self.declared = await self._read_schemas()
        listed_acmidm = ACMIDM_USER_SCHEMA.casefold() in schema_ids
        user_type, group_type = await self._read_resource_types(listed_acmidm)
        discovered = Capabilities(
            patch=_supported(config.patch),
            bulk=_supported(config.bulk),
            bulk_max_operations=config.bulk.max_operations if config.bulk else None,
            bulk_max_payload=config.bulk.max_payload_size if config.bulk else None,
            etag=_supported(config.etag),
            filter=_supported(config.filter),
            filter_max_results=config.filter.max_results if config.filter else None,
            sort=_supported(config.sort),
            search=False,
            acmidm_extension=listed_acmidm and _declares(user_type, ACMIDM_USER_SCHEMA),
        )
        capabilities = overrides.apply(discovered)
        user_type = _with_extension(user_type, ACMIDM_USER_SCHEMA, capabilities.acmidm_extension)
        self._resource_types = (user_type, group_type)
        self._scim.provider = ScimProvider(
            models=_MODELS,
            resource_types=self._resource_types,
            config=_corrected_config(config, capabilities),
        )
        self._user_extensions = frozenset(
            str(schema).casefold() for schema in self._user_model.get_extension_models()
        )
        if overrides.search is None and capabilities.filter:
            capabilities = dataclasses.replace(capabilities, search=await self._probe_search())
        self._capabilities = capabilities
        return capabilities

    def _note(self, note: str) -> None:
        """Something discovery had to assume; said once per run (see `notes`)."""
        if note not in self.notes:
            self.notes.append(note)
            log.warning("target.discovery_degraded", note=note)

    async def _read_discovery(self, operation: str, path: str) -> object | None:
        """The decoded JSON of a discovery endpoint; None (noted) when the target has none or
        answers something that is not JSON. Unreachable or refusing credentials: raises."""
        try:
            return _json_of(await self._send(operation, "GET", path), operation)
        except (NotFound, Rejected, InvalidResponse) as exc:
            self._note(str(exc))
            return None
        except TargetUnavailable as exc:
            if exc.status is None or exc.status in (429, 503):
                raise  # the target is not there (or asks to wait): nothing to assume
            self._note(str(exc))  # it answers, but this endpoint fails
            return None

    async def _read_config(self) -> ServiceProviderConfig:
        """The target's ServiceProviderConfig, read leniently: each feature that does not
        parse counts as unsupported; without one, PATCH is assumed and nothing else."""
        body = await self._read_discovery("read ServiceProviderConfig", "/ServiceProviderConfig")
        if not isinstance(body, dict):
            if body is not None:
                self._note("read ServiceProviderConfig: not a JSON object")
            return ServiceProviderConfig(patch=Patch(supported=True))
        features: dict[str, Any] = {}
        for key, model in _FEATURES.items():
            if key not in body:
                continue
            try:
                features[_snake(key)] = model.model_validate(body[key])
            except ValidationError:
                self._note(f"read ServiceProviderConfig: '{key}' does not parse; not used")
        return ServiceProviderConfig(**features)

    async def _read_resource_types(self, listed_acmidm: bool) -> tuple[ResourceType, ResourceType]:
        """The User and Group resource types the target publishes, or the RFC 7643 defaults;
        each endpoint as a path relative to the base URL."""
        body = await self._read_discovery("read ResourceTypes", "/ResourceTypes")
        published: list[ResourceType] = []
        for item in _list_items(body):
            try:
                published.append(ResourceType.model_validate(item))
            except ValidationError:
                self._note("read ResourceTypes: a resource type does not parse; skipped")
        default_user = AcmUser if listed_acmidm else PlainUser
        user_type = _published_type(published, User) or ResourceType.from_resource(default_user)
        group_type = _published_type(published, Group) or ResourceType.from_resource(Group)
        known = [
            extension
            for extension in user_type.schema_extensions or []
            if str(extension.schema_).casefold() in _KNOWN_USER_EXTENSIONS
        ]
        base_path = self._http.base_url.path
        user_type = user_type.model_copy(
            update={
                "schema_extensions": known,
                "endpoint": relative_endpoint(user_type.endpoint, base_path, "/Users"),
            }
        )
        group_type = group_type.model_copy(
            update={"endpoint": relative_endpoint(group_type.endpoint, base_path, "/Groups")}
        )
        return user_type, group_type

    async def _read_schemas(self) -> tuple[set[str], DeclaredSchema]:
        """The (casefolded) ids /Schemas lists, and what it declares; nothing and unknown (fit
        nothing) when the target publishes no /Schemas."""
        body = await self._read_discovery("read Schemas", "/Schemas")
        if body is None:
            return set(), DeclaredSchema.unknown()
        self.schemas_body = body
        ids = {
            str(item["id"]).casefold()
            for item in _list_items(body)
            if isinstance(item, dict) and isinstance(item.get("id"), str)
        }
        return ids, declared_schema(body)

    async def _probe_search(self) -> bool:
        """Whether the User endpoint answers a POST .search (RFC 7644 §3.4.3); an optional
        probe: whatever goes wrong with it, the answer is no."""
        try:
            await self._search_users("probe POST .search", _PROBE_FILTER)
        except (NotFound, Rejected, InvalidResponse):
            return False
        except TargetUnavailable as exc:
            if exc.status is None:
                raise  # the target is gone, not the probe
            self._note(f"probe POST .search: {exc}; lookups go by GET")
            return False
        return True

    # -- Users ----------------------------------------------------------

    async def get_user(self, user_id: str) -> ScimUser:
        """Read one user by SCIM id."""
        found = await self._call("read user", self._scim.query(self._user_type, user_id))
        return _user(found, "read user")

    async def find_users_by_external_id(self, external_id: str) -> list[ScimUser]:
        """Users whose externalId is exactly `external_id` (GET with a filter, checked here)."""
        if not self.capabilities.filter:
            return []
        users = await self._query_users(
            "find users by externalId", f"externalId eq {_quoted(external_id)}"
        )
        return [user for user in users if user.external_id == external_id]

    async def find_users_by_national_id(self, nn_digits: str) -> list[ScimUser]:
        """Users with this national number (POST .search, never GET); [] if the target can't."""
        if not (self.capabilities.search and self.capabilities.acmidm_extension):
            return []
        users = await self._search_users(
            "find users by national number", f"{NATIONAL_ID_PATH} eq {_quoted(nn_digits)}"
        )
        return [user for user in users if national_id_of(user) == nn_digits]

    async def find_users_by_user_name(self, user_name: str) -> list[ScimUser]:
        """Users whose userName equals `user_name`, ignoring case (userName is not caseExact)."""
        if not self.capabilities.filter:
            return []
        users = await self._query_users(
            "find users by userName", f"userName eq {_quoted(user_name)}"
        )
        wanted = user_name.casefold()
        return [user for user in users if (user.user_name or "").casefold() == wanted]

    async def create_user(self, user: ScimUser) -> ScimUser:
        """Create a user (POST); returns it as the target stored it."""
        created = await self._call(
            "create user", self._scim.create(self._user_type, self._fit_user(user))
        )
        return _user(created, "create user")

    async def create_user_json(self, resource: dict[str, Any]) -> str:
        """Create a user from its JSON representation (the mapping's output, trusted as is:
        not validated into a model); returns the SCIM id the target gave it."""
        scim_id, _ = await self.create_user_answer(resource)
        return scim_id

    async def create_user_answer(
        self, resource: dict[str, Any]
    ) -> tuple[str, dict[str, Any] | None]:
        """Like `create_user_json`, and the user as the target answered it (None without a
        JSON body): what it kept of what was sent."""
        response = await self._send(
            "create user", "POST", self.user_endpoint, dumps(self.user_payload(resource))
        )
        body = _json_of(response, "create user")
        answer = body if isinstance(body, dict) else None
        scim_id = answer.get("id") if answer else None
        if not isinstance(scim_id, str) or not scim_id:
            location = response.headers.get("Location", "")
            scim_id = location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if not scim_id:
            raise InvalidResponse("create user", "the target gave the user no id")
        return scim_id, answer

    def user_payload(self, resource: dict[str, Any]) -> dict[str, Any]:
        """A User's JSON without the extensions the target's User resource type lacks."""
        allowed = self._allowed_extensions
        dropped = {
            key for key in resource if key.startswith("urn:") and key.casefold() not in allowed
        }
        if not dropped:
            return resource
        payload = {key: value for key, value in resource.items() if key not in dropped}
        payload["schemas"] = [s for s in resource.get("schemas", []) if s not in dropped]
        return payload

    def fits_user_paths(self, paths: Iterable[str]) -> bool:
        """Whether every attribute path is in the core schema or an extension the target's User
        resource type declares (what a PATCH may name)."""
        allowed = self._allowed_extensions
        for path in paths:
            if path.startswith("urn:"):
                urn = path.rpartition(":")[0].casefold()
                if urn not in allowed and urn != str(User.__schema__).casefold():
                    return False
        return True

    async def count_users(self) -> int | None:
        """How many users the target holds (`GET /Users?count=0`: totalResults), if it says.
        An optional probe: sent once, not retried; the caller takes a failure as "unknown"."""
        response = await self._send(
            "count users", "GET", self.user_endpoint, params={"count": "0"}, retry=False
        )
        body = _json_of(response, "count users")
        total = body.get("totalResults") if isinstance(body, dict) else None
        return total if isinstance(total, int) and not isinstance(total, bool) else None

    async def find_user_candidates(
        self, external_id: str, nn_digits: str | None, user_name: str
    ) -> list[ScimUser]:
        """In one `POST .search`: users whose externalId, national number or userName is the
        person's (`externalId eq .. or nationalId eq .. or userName eq ..`). Returns what the
        target answered, unchecked: the caller classifies (`TargetIndex`), with precedence.
        The national number goes only in the body, and only to a target with the extension."""
        if not self.capabilities.search:
            raise Rejected("find user candidates", "the target has no POST .search")
        clauses = [f"externalId eq {_quoted(external_id)}"]
        if nn_digits and self.capabilities.acmidm_extension:
            clauses.append(f"{NATIONAL_ID_PATH} eq {_quoted(nn_digits)}")
        clauses.append(f"userName eq {_quoted(user_name)}")
        return await self._search_users("find user", " or ".join(clauses))

    async def send_bulk(self, body: bytes) -> object:
        """POST a BulkRequest body (RFC 7644 §3.7, see `connector.target.bulk`); the decoded
        BulkResponse. Raises like any request when the request as a whole failed."""
        response = await self._send("bulk", "POST", "/Bulk", body)
        return _json_of(response, "bulk")

    async def read_user_json(self, user_id: str) -> UserJson:
        """Read one user by SCIM id as JSON, every attribute the target sent kept as sent; with
        its version (the ETag header, else `meta.version`) when the target gives one."""
        response = await self._send("read user", "GET", f"{self.user_endpoint}/{user_id}")
        body = _json_of(response, "read user")
        if not isinstance(body, dict):
            raise InvalidResponse("read user", "the target did not answer with a User")
        meta = body.get("meta")
        version = response.headers.get("ETag") or (
            meta.get("version") if isinstance(meta, dict) else None
        )
        return UserJson(body, version if isinstance(version, str) and version else None)

    async def replace_user_json(
        self, user_id: str, body: dict[str, Any], version: str | None = None
    ) -> dict[str, Any] | None:
        """Replace a user (PUT) with a JSON body sent as given; conditional on `version`
        (If-Match) where the target supports ETags. The user as the target answered it, if it
        did (None without a JSON body)."""
        if_match = version if version and self.capabilities.etag else None
        response = await self._send(
            "replace user",
            "PUT",
            f"{self.user_endpoint}/{user_id}",
            dumps(body),
            if_match=if_match,
        )
        answer = _json_of(response, "replace user")
        return answer if isinstance(answer, dict) else None

    async def replace_user(self, user: ScimUser) -> ScimUser:
        """Replace a user (PUT, by `user.id`); conditional on `user.meta.version` with ETags."""
        replaced = await self._call(
            "replace user", self._scim.replace(self._user_type, self._fit_user(user))
        )
        return _user(replaced, "replace user")

    async def patch_user(
        self, user_id: str, operations: list[PatchOperation[Any]], etag: str | None = None
    ) -> ScimUser | None:
        """Apply PATCH operations; the user if the target returned it (200), None on 204."""
        headers = {"If-Match": etag} if etag and self.capabilities.etag else {}
        with _mapped_errors("patch user"):  # paths are checked against the target's User model
            patch = cast(Any, PatchOp)[self._user_model](operations=operations)
        patched = await self._call(
            "patch user",
            self._scim.modify(self._user_type, user_id, patch, headers=headers),
        )
        return None if patched is None else _user(patched, "patch user")

    async def delete_user(self, user_id: str) -> None:
        """Delete a user."""
        await self._call("delete user", self._scim.delete(self._user_type, user_id))

    async def iter_users(self, page_size: int = 100) -> AsyncIterator[ScimUser]:
        """Every user of the target, read page by page (startIndex, and count while the target
        takes it: one that fails a page with `count` is read in its own page size), each once
        (a user listed twice, as a target changing while it is read may do, is given once)."""
        start, seen = 1, set[str]()
        count = page_size if self.list_with_count else None
        while True:
            try:
                page = await self._list_page(start, count)
            except (Rejected, InvalidResponse, TargetUnavailable) as exc:
                if count is None or (isinstance(exc, TargetUnavailable) and exc.status is None):
                    raise
                self.list_with_count, count = False, None
                log.warning("target.paging_without_count", reason=str(exc))
                continue
            users = [_user(user, "list users") for user in _resources_of(page, "list users")]
            for user in users:
                if user.id is None or user.id not in seen:
                    seen.add(user.id or "")
                    yield user
            start += len(users)
            total = _total_of(page)
            if not users or (total is not None and start > total):
                return
            if total is None and count is not None and len(users) < count:
                return

    async def _list_page(self, start: int, count: int | None) -> object:
        """One page of the User listing."""
        query: SearchRequest[Any] = SearchRequest(start_index=start, count=count)
        return await self._call(
            "list users", self._scim.query(self._user_type, query_parameters=query)
        )

    # -- Groups ---------------------------------------------------------

    async def get_group(self, group_id: str) -> Group:
        """Read one group by SCIM id."""
        found = await self._call("read group", self._scim.query(self._group_type, group_id))
        return _group(found, "read group")

    async def find_groups_by_display_name(self, display_name: str) -> list[Group]:
        """Groups whose displayName equals `display_name`, ignoring case (checked here)."""
        if not self.capabilities.filter:
            return []
        query: SearchRequest[Any] = SearchRequest(filter=f"displayName eq {_quoted(display_name)}")
        listed = await self._call(
            "find groups by displayName",
            self._scim.query(self._group_type, query_parameters=query),
        )
        groups = [_group(group, "find groups") for group in _resources_of(listed, "find groups")]
        wanted = display_name.casefold()
        return [group for group in groups if (group.display_name or "").casefold() == wanted]

    async def create_group(self, group: Group) -> Group:
        """Create a group (POST); returns it as the target stored it."""
        created = await self._call("create group", self._scim.create(self._group_type, group))
        return _group(created, "create group")

    async def replace_group(self, group: Group) -> Group:
        """Replace a group (PUT, by `group.id`)."""
        replaced = await self._call("replace group", self._scim.replace(self._group_type, group))
        return _group(replaced, "replace group")

    async def patch_group(
        self, group_id: str, operations: Sequence[Operation]
    ) -> frozenset[str] | None:
        """One PATCH of a group, its operations as JSON (see `connector.target.members`); the
        member ids its answer lists, None when it lists none (a 204, or no `members`)."""
        url = f"{self.group_endpoint}/{quote(group_id, safe='')}"
        response = await self._send(
            "patch group members", "PATCH", url, dumps(patch_body(operations))
        )
        try:
            return member_ids_in(response.json()) if response.content else None
        except ValueError:
            return None  # done, says the status; what the group holds now, a read will tell

    async def find_groups_by_listing(self, display_name: str) -> list[Group]:
        """Groups whose displayName equals `display_name`, ignoring case, found by reading the
        whole Group listing (members not asked for): for targets whose filters are off or wrong."""
        wanted = display_name.casefold()
        return [
            group
            async for group in self.iter_groups()
            if (group.display_name or "").casefold() == wanted
        ]

    async def iter_groups(self, page_size: int = 100) -> AsyncIterator[Group]:
        """Every group of the target without its members (`excludedAttributes`; a target that
        ignores it sends them anyway), page by page like `iter_users`, each once."""
        start, seen = 1, set[str]()
        count = page_size if self.list_with_count else None
        while True:
            query: SearchRequest[Any] = SearchRequest(
                start_index=start, count=count, excluded_attributes=["members"]
            )
            try:
                page = await self._call(
                    "list groups", self._scim.query(self._group_type, query_parameters=query)
                )
            except (Rejected, InvalidResponse, TargetUnavailable) as exc:
                if count is None or (isinstance(exc, TargetUnavailable) and exc.status is None):
                    raise
                self.list_with_count, count = False, None
                log.warning("target.paging_without_count", reason=str(exc))
                continue
            groups = [_group(group, "list groups") for group in _resources_of(page, "list groups")]
            for group in groups:
                if group.id is None or group.id not in seen:
                    seen.add(group.id or "")
                    yield group
            start += len(groups)
            total = _total_of(page)
            if not groups or (total is not None and start > total):
                return
            if total is None and count is not None and len(groups) < count:
                return

    @property
    def group_endpoint(self) -> str:
        """The path of the target's Group endpoint (`/Groups`)."""
        return str(self._group_type.endpoint or "/Groups")

    # -- Plumbing -------------------------------------------------------

    @property
    def _user_type(self) -> ResourceType:
        """The target's User resource type, as `discover()` established it."""
        if self._resource_types is None:
            raise RuntimeError("TargetClient.discover() must be called first")
        return self._resource_types[0]

    @property
    def _group_type(self) -> ResourceType:
        """The target's Group resource type, as `discover()` established it."""
        if self._resource_types is None:
            raise RuntimeError("TargetClient.discover() must be called first")
        return self._resource_types[1]

    @property
    def user_endpoint(self) -> str:
        """The path of the target's User endpoint (`/Users`)."""
        return str(self._user_type.endpoint or "/Users")

    @property
    def user_extensions(self) -> frozenset[str]:
        """The (casefolded) extension schemas of the target's User resource type."""
        return self._allowed_extensions

    @property
    def _allowed_extensions(self) -> frozenset[str]:
        """The (casefolded) extension schemas of the target's User resource type."""
        if self._user_extensions is None:
            raise RuntimeError("TargetClient.discover() must be called first")
        return self._user_extensions

    async def _send(
        self,
        operation: str,
        method: str,
        url: str,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        *,
        retry: bool = True,
        if_match: str | None = None,
    ) -> httpx2.Response:
        """One request with a JSON body as given, straight on the httpx2 client; a non-2xx
        answer or a transport error raises like scim2-client's do (`_mapped_errors`).
        `retry=False`: a read is sent once (the transport does not retry it); `if_match`: the
        request is conditional on that version."""
        headers = {"Content-Type": SCIM_JSON} if content is not None else {}
        if if_match:
            headers["If-Match"] = if_match
        extensions = None if retry else dict(NO_RETRY)
        try:
            response = await self._http.request(
                method, url, content=content, params=params, headers=headers, extensions=extensions
            )
        except httpx2.RequestError as exc:
            raise TargetUnavailable(operation, f"{type(exc).__name__}: {exc}") from None
        if not 200 <= response.status_code < 300:
            scim_type, detail = _error_payload(response)
            raise _by_status(operation, response, scim_type, detail)
        return response

    @property
    def _user_model(self) -> type[ScimUser]:
        """The User model the target's User resource type serves, extensions included."""
        model = self._scim.provider.model_for(self._user_type)
        if model is None or not issubclass(model, User):
            raise RuntimeError("TargetClient.discover() must be called first")
        return model

    def _fit_user(self, user: ScimUser) -> ScimUser:
        """The user as the target's User model, without the extensions that model lacks."""
        model = self._user_model
        if isinstance(user, model):
            return user
        dropped = set(user.get_extension_models()) - set(model.get_extension_models())
        payload = user.model_dump()
        for schema in dropped:
            payload.pop(schema, None)
        payload["schemas"] = [schema for schema in payload["schemas"] if schema not in dropped]
        with _mapped_errors("fit user to the target's schema"):
            return model.model_validate(payload)

    async def _query_users(self, operation: str, scim_filter: str) -> list[ScimUser]:
        """Users matching a filter, first page, with GET (never for personal data)."""
        query: SearchRequest[Any] = SearchRequest(filter=scim_filter)
        listed = await self._call(
            operation, self._scim.query(self._user_type, query_parameters=query)
        )
        return [_user(user, operation) for user in _resources_of(listed, operation)]

    async def _search_users(self, operation: str, scim_filter: str) -> list[ScimUser]:
        """Users matching a filter, first page, with POST <endpoint>/.search: nothing in the URL."""
        search: SearchRequest[Any] = SearchRequest(filter=scim_filter)
        listed = await self._call(operation, self._scim.search(self._user_type, search))
        return [_user(user, operation) for user in _resources_of(listed, operation)]

    async def _call(self, operation: str, request: Awaitable[T]) -> T:
        """Await a scim2-client request, turning its failures into `connector.target.errors`."""
        with _mapped_errors(operation):
            return await request


@contextlib.contextmanager
def _mapped_errors(operation: str) -> Iterator[None]:
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
        response = _response_of(exc)
        if response is None:  # refused by scim2-client before sending
            raise Rejected(operation, exc.detail, scim_type=exc.scim_type) from None
        raise _by_status(operation, response, exc.scim_type, exc.detail) from None
    except SCIMClientException as exc:
        response = _response_of(exc)
        if response is None:
            raise InvalidResponse(operation, exc.message) from None
        raise _by_status(operation, response, None, exc.message) from None
    except ValidationError as exc:  # a payload that does not fit the target's models
        details = "; ".join(str(error.detail) for error in Error.from_validation_errors(exc))
        raise Rejected(operation, details) from None


def _by_status(
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


def _response_of(exc: Exception) -> httpx2.Response | None:
    """The HTTP response scim2-client attached to an exception, if any."""
    source = getattr(exc, "source", None)
    return source if isinstance(source, httpx2.Response) else None


def _error_payload(response: httpx2.Response) -> tuple[str | None, str]:
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


def _json_of(response: httpx2.Response, operation: str) -> object:
    """The decoded JSON body of a 2xx answer (None when it has none)."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise InvalidResponse(operation, "the target's answer is not JSON") from None


def _resources_of(listed: object, operation: str) -> list[object]:
    """The resources of a ListResponse."""
    if not isinstance(listed, ListResponse):
        raise InvalidResponse(operation, "the target did not answer with a ListResponse")
    return list(listed.resources or [])


def _total_of(listed: object) -> int | None:
    """The totalResults of a ListResponse."""
    return listed.total_results if isinstance(listed, ListResponse) else None


def _user(resource: object, operation: str) -> ScimUser:
    """A User from a scim2-client answer, or InvalidResponse."""
    if not isinstance(resource, User):
        raise InvalidResponse(operation, "the target did not answer with a User")
    return resource


def _group(resource: object, operation: str) -> Group:
    """A Group from a scim2-client answer, or InvalidResponse."""
    if not isinstance(resource, Group):
        raise InvalidResponse(operation, "the target did not answer with a Group")
    return resource


def _quoted(value: str) -> str:
    """A SCIM filter string literal (a JSON string, RFC 7644 §3.4.2.2)."""
    return json.dumps(value, ensure_ascii=False)


def _supported(feature: Patch | Bulk | ETag | Filter | Sort | None) -> bool:
    """Whether a ServiceProviderConfig feature says `supported: true`."""
    return bool(feature and feature.supported)


def _published_type(
    published: Sequence[ResourceType], model: type[User[Any]] | type[Group]
) -> ResourceType | None:
    """The published resource type whose core schema is the model's."""
    schema = str(model.__schema__).casefold()
    for resource_type in published:
        if str(resource_type.schema_).casefold() == schema:
            return resource_type
    return None


def _declares(resource_type: ResourceType, extension_schema: str) -> bool:
    """Whether a resource type lists an extension schema."""
    wanted = extension_schema.casefold()
    return any(
        str(extension.schema_).casefold() == wanted
        for extension in resource_type.schema_extensions or []
    )


def _with_extension(resource_type: ResourceType, schema: str, present: bool) -> ResourceType:
    """The resource type with an (optional) extension schema declared or not."""
    if _declares(resource_type, schema) == present:
        return resource_type
    others = [
        extension
        for extension in resource_type.schema_extensions or []
        if str(extension.schema_).casefold() != schema.casefold()
    ]
    if present:
        others.append(SchemaExtension(schema_=Reference[URI](schema), required=False))
    return resource_type.model_copy(update={"schema_extensions": others})


def _corrected_config(
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


_FEATURES: dict[str, type[Patch | Bulk | Filter | ETag | Sort]] = {
    "patch": Patch,
    "bulk": Bulk,
    "filter": Filter,
    "etag": ETag,
    "sort": Sort,
}


def _snake(name: str) -> str:
    """A ServiceProviderConfig key as the model's field name."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _list_items(body: object) -> list[object]:
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
