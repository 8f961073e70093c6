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

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import quote

import httpx2
import structlog
from pydantic import ValidationError
from scim2_client.engines.httpx2 import AsyncSCIMClient
from scim2_models import (
    Context,
    EnterpriseUser,
    Error,
    Group,
    Patch,
    PatchOp,
    PatchOperation,
    Resource,
    ResourceType,
    ScimProvider,
    ServiceProviderConfig,
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
from connector.target.answers import (
    as_group,
    as_user,
    by_status,
    error_payload,
    json_of,
    mapped_errors,
    quoted,
)
from connector.target.bulk import dumps
from connector.target.discovery import (
    FEATURES,
    Capabilities,
    CapabilityOverrides,
    corrected_config,
    declares,
    list_items,
    published_type,
    relative_endpoint,
    snake,
    supported,
    with_extension,
)
from connector.target.errors import (
    InvalidResponse,
    NotFound,
    Rejected,
    TargetUnavailable,
    Unreadable,
)
from connector.target.members import Operation, member_ids_in, patch_body
from connector.target.schema import DeclaredSchema, declared_schema
from connector.target.transport import NO_RETRY

T = TypeVar("T")
R = TypeVar("R", bound=Resource[Any])
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
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@dataclass(frozen=True, slots=True)
class UserJson:
    """A user as the target holds it: its JSON as read, and the version a write of it can be
    made conditional on (None: the target gave none)."""

    body: dict[str, Any]
    version: str | None


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
        # Resources of the target's answers that do not parse, by SCIM id, with why (skipped).
        self.unreadable: dict[str, str] = {}
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
            patch=supported(config.patch),
            bulk=supported(config.bulk),
            bulk_max_operations=config.bulk.max_operations if config.bulk else None,
            bulk_max_payload=config.bulk.max_payload_size if config.bulk else None,
            etag=supported(config.etag),
            filter=supported(config.filter),
            filter_max_results=config.filter.max_results if config.filter else None,
            sort=supported(config.sort),
            search=False,
            acmidm_extension=listed_acmidm and declares(user_type, ACMIDM_USER_SCHEMA),
        )
        capabilities = overrides.apply(discovered)
        user_type = with_extension(user_type, ACMIDM_USER_SCHEMA, capabilities.acmidm_extension)
        self._resource_types = (user_type, group_type)
        self._scim.provider = ScimProvider(
            models=_MODELS,
            resource_types=self._resource_types,
            config=corrected_config(config, capabilities),
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
            return json_of(await self._send(operation, "GET", path), operation)
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
        for key, model in FEATURES.items():
            if key not in body:
                continue
            try:
                features[snake(key)] = model.model_validate(body[key])
            except ValidationError:
                self._note(f"read ServiceProviderConfig: '{key}' does not parse; not used")
        return ServiceProviderConfig(**features)

    async def _read_resource_types(self, listed_acmidm: bool) -> tuple[ResourceType, ResourceType]:
        """The User and Group resource types the target publishes, or the RFC 7643 defaults;
        each endpoint as a path relative to the base URL."""
        body = await self._read_discovery("read ResourceTypes", "/ResourceTypes")
        published: list[ResourceType] = []
        for item in list_items(body):
            try:
                published.append(ResourceType.model_validate(item))
            except ValidationError:
                self._note("read ResourceTypes: a resource type does not parse; skipped")
        default_user = AcmUser if listed_acmidm else PlainUser
        user_type = published_type(published, User) or ResourceType.from_resource(default_user)
        group_type = published_type(published, Group) or ResourceType.from_resource(Group)
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
            for item in list_items(body)
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
        """Read one user by SCIM id (`Unreadable` when the target's user does not parse)."""
        response = await self._send("read user", "GET", f"{self.user_endpoint}/{user_id}")
        user = self._parsed(self._user_model, json_of(response, "read user"))
        if user is None:
            raise Unreadable("read user", f"user {user_id} does not parse as a SCIM User")
        return user

    def _parsed(self, model: type[R], item: object) -> R | None:
        """One resource of an answer as `model`; None (said once, by id) when it does not parse:
        a resource with a value its schema forbids (an e-mail `a..b@x`) is skipped, not fatal."""
        try:
            return model.model_validate(item, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        except ValidationError as exc:
            scim_id = item.get("id") if isinstance(item, dict) else None
            label = scim_id if isinstance(scim_id, str) else "?"
            if label not in self.unreadable:
                self.unreadable[label] = "; ".join(
                    str(error.detail) for error in Error.from_validation_errors(exc)
                )
                log.warning("target.resource_unreadable", scim_id=label)
            return None

    def _users_in(self, listed: object) -> list[ScimUser]:
        """The users of a ListResponse read as JSON, each parsed alone (see `_parsed`)."""
        users = (self._parsed(self._user_model, item) for item in list_items(listed))
        return [user for user in users if user is not None]

    async def find_users_by_external_id(self, external_id: str) -> list[ScimUser]:
        """Users whose externalId is exactly `external_id` (GET with a filter, checked here)."""
        if not self.capabilities.filter:
            return []
        users = await self._query_users(
            "find users by externalId", f"externalId eq {quoted(external_id)}"
        )
        return [user for user in users if user.external_id == external_id]

    async def find_users_by_national_id(self, nn_digits: str) -> list[ScimUser]:
        """Users with this national number (POST .search, never GET); [] if the target can't."""
        if not (self.capabilities.search and self.capabilities.acmidm_extension):
            return []
        users = await self._search_users(
            "find users by national number", f"{NATIONAL_ID_PATH} eq {quoted(nn_digits)}"
        )
        return [user for user in users if national_id_of(user) == nn_digits]

    async def find_users_by_user_name(self, user_name: str) -> list[ScimUser]:
        """Users whose userName equals `user_name`, ignoring case (userName is not caseExact)."""
        if not self.capabilities.filter:
            return []
        users = await self._query_users(
            "find users by userName", f"userName eq {quoted(user_name)}"
        )
        wanted = user_name.casefold()
        return [user for user in users if (user.user_name or "").casefold() == wanted]

    async def create_user(self, user: ScimUser) -> ScimUser:
        """Create a user (POST); returns it as the target stored it."""
        created = await self._call(
            "create user", self._scim.create(self._user_type, self._fit_user(user))
        )
        return as_user(created, "create user")

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
        body = json_of(response, "create user")
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
        body = json_of(response, "count users")
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
        clauses = [f"externalId eq {quoted(external_id)}"]
        if nn_digits and self.capabilities.acmidm_extension:
            clauses.append(f"{NATIONAL_ID_PATH} eq {quoted(nn_digits)}")
        clauses.append(f"userName eq {quoted(user_name)}")
        return await self._search_users("find user", " or ".join(clauses))

    async def send_bulk(self, body: bytes) -> object:
        """POST a BulkRequest body (RFC 7644 §3.7, see `connector.target.bulk`); the decoded
        BulkResponse. Raises like any request when the request as a whole failed."""
        response = await self._send("bulk", "POST", "/Bulk", body)
        return json_of(response, "bulk")

    async def read_user_json(self, user_id: str) -> UserJson:
        """Read one user by SCIM id as JSON, every attribute the target sent kept as sent; with
        its version (the ETag header, else `meta.version`) when the target gives one."""
        response = await self._send("read user", "GET", f"{self.user_endpoint}/{user_id}")
        body = json_of(response, "read user")
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
        answer = json_of(response, "replace user")
        return answer if isinstance(answer, dict) else None

    async def replace_user(self, user: ScimUser) -> ScimUser:
        """Replace a user (PUT, by `user.id`); conditional on `user.meta.version` with ETags."""
        replaced = await self._call(
            "replace user", self._scim.replace(self._user_type, self._fit_user(user))
        )
        return as_user(replaced, "replace user")

    async def patch_user(
        self, user_id: str, operations: list[PatchOperation[Any]], etag: str | None = None
    ) -> ScimUser | None:
        """Apply PATCH operations; the user if the target returned it (200), None on 204."""
        headers = {"If-Match": etag} if etag and self.capabilities.etag else {}
        with mapped_errors("patch user"):  # paths are checked against the target's User model
            patch = cast(Any, PatchOp)[self._user_model](operations=operations)
        patched = await self._call(
            "patch user",
            self._scim.modify(self._user_type, user_id, patch, headers=headers),
        )
        return None if patched is None else as_user(patched, "patch user")

    async def delete_user(self, user_id: str) -> None:
        """Delete a user."""
        await self._call("delete user", self._scim.delete(self._user_type, user_id))

    async def iter_users(self, page_size: int = 100) -> AsyncIterator[ScimUser]:
        """Every user of the target, page by page (see `_listed`)."""
        async for user in self._listed(self._user_type, self._user_model, "list users", page_size):
            yield user

    async def _listed(
        self,
        resource_type: ResourceType,
        model: type[R],
        what: str,
        page_size: int,
        excluded: list[str] | None = None,
    ) -> AsyncIterator[R]:
        """Every resource of a type, read page by page (startIndex, and count while the target
        takes it: one that fails a page with `count` is read in its own page size), each once
        (a resource listed twice, as a target changing while it is read may do, is given once);
        a resource that does not parse is skipped (`_parsed`)."""
        start, seen = 1, set[str]()
        count = page_size if self.list_with_count else None
        endpoint = str(resource_type.endpoint)
        while True:
            params = {"startIndex": str(start)}
            if count is not None:
                params["count"] = str(count)
            if excluded:
                params["excludedAttributes"] = ",".join(excluded)
            try:
                page = json_of(await self._send(what, "GET", endpoint, params=params), what)
            except (Rejected, InvalidResponse, TargetUnavailable) as exc:
                if count is None or (isinstance(exc, TargetUnavailable) and exc.status is None):
                    raise
                self.list_with_count, count = False, None
                log.warning("target.paging_without_count", reason=str(exc))
                continue
            if not isinstance(page, dict):
                raise InvalidResponse(what, "the target did not answer with a ListResponse")
            items = list_items(page)
            for item in items:
                resource = self._parsed(model, item)
                if resource is None:
                    continue
                scim_id = getattr(resource, "id", None)
                if scim_id is None or scim_id not in seen:
                    seen.add(scim_id or "")
                    yield resource
            start += len(items)
            total = page.get("totalResults")
            total = total if isinstance(total, int) and not isinstance(total, bool) else None
            if not items or (total is not None and start > total):
                return
            if total is None and count is not None and len(items) < count:
                return

    # -- Groups ---------------------------------------------------------

    async def get_group(self, group_id: str) -> Group:
        """Read one group by SCIM id."""
        found = await self._call("read group", self._scim.query(self._group_type, group_id))
        return as_group(found, "read group")

    async def find_groups_by_display_name(self, display_name: str) -> list[Group]:
        """Groups whose displayName equals `display_name`, ignoring case (checked here)."""
        if not self.capabilities.filter:
            return []
        scim_filter = f"displayName eq {quoted(display_name)}"
        groups = await self._filtered(self._group_type, Group, "find groups", scim_filter)
        wanted = display_name.casefold()
        return [group for group in groups if (group.display_name or "").casefold() == wanted]

    async def create_group(self, group: Group) -> Group:
        """Create a group (POST); returns it as the target stored it."""
        created = await self._call("create group", self._scim.create(self._group_type, group))
        return as_group(created, "create group")

    async def replace_group(self, group: Group) -> Group:
        """Replace a group (PUT, by `group.id`)."""
        replaced = await self._call("replace group", self._scim.replace(self._group_type, group))
        return as_group(replaced, "replace group")

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
        async for group in self._listed(
            self._group_type, Group, "list groups", page_size, ["members"]
        ):
            yield group

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
        answer or a transport error raises like scim2-client's do (`mapped_errors`).
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
            scim_type, detail = error_payload(response)
            raise by_status(operation, response, scim_type, detail)
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
        with mapped_errors("fit user to the target's schema"):
            return model.model_validate(payload)

    async def _query_users(self, operation: str, scim_filter: str) -> list[ScimUser]:
        """Users matching a filter, first page, with GET (never for personal data)."""
        return await self._filtered(self._user_type, self._user_model, operation, scim_filter)

    async def _filtered(
        self, resource_type: ResourceType, model: type[R], operation: str, scim_filter: str
    ) -> list[R]:
        """Resources matching a filter, first page, with GET, each parsed alone (`_parsed`)."""
        endpoint = str(resource_type.endpoint)
        response = await self._send(operation, "GET", endpoint, params={"filter": scim_filter})
        found = (self._parsed(model, item) for item in list_items(json_of(response, operation)))
        return [resource for resource in found if resource is not None]

    async def _search_users(self, operation: str, scim_filter: str) -> list[ScimUser]:
        """Users matching a filter, first page, with POST <endpoint>/.search: nothing in the URL."""
        body = {"schemas": [SEARCH_REQUEST], "filter": scim_filter}
        response = await self._send(operation, "POST", f"{self.user_endpoint}/.search", dumps(body))
        return self._users_in(json_of(response, operation))

    async def _call(self, operation: str, request: Awaitable[T]) -> T:
        """Await a scim2-client request, turning its failures into `connector.target.errors`."""
        with mapped_errors(operation):
            return await request
