"""One measured run, in a process of its own: `python -m bench.runner JOB.json RESULT.json`.

Each measured run gets a fresh process, so that its peak memory (VmHWM) is its own and runs do
not warm each other's caches. Jobs:

- `validate`: `jobs.validate` (read and validate the HR file, merge people): the baseline;
- `sync`: `jobs.sync`, with httpx2 event hooks counting every request by kind, optionally
  capturing the creates (`POST /Users` and `POST /Bulk` bodies) and membership PATCHes for the
  bare client;
- `bare`: a bare httpx2 client replaying a captured initial sync's creates (single POSTs and
  Bulk requests, the same bodies) and membership PATCHes (same batches), with the same
  concurrency, and nothing else;
- `seed`: the state of a finished initial sync without sending it: the connector's own plan for
  an empty target, written into the state store (as `apply` records it) and into a seed file
  for `bench.server`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2

if TYPE_CHECKING:
    from connector.plan import Plan
    from connector.state import StateStore
    from connector.target.profile import TargetProfile

RESOURCE_SEGMENTS = frozenset(
    {"Users", "Groups", ".search", "ServiceProviderConfig", "Schemas", "ResourceTypes", "Bulk"}
)
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
# As the connector's `target.timeout_seconds` in the bench: a Bulk request of 1,000 creates
# takes scim2-server several seconds.
BARE_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Job:
    """What to run; read from a JSON file."""

    kind: str  # validate | sync | bare | seed
    config: str = ""
    as_of: str = ""
    force: bool = False
    capture: str = ""  # sync: write the creates and membership PATCHes here; bare: read them
    base_url: str = ""  # bare
    concurrency: int = 8  # bare
    seed_file: str = ""  # seed: where to write the target's resources


@dataclass(slots=True)
class Result:
    """What a run measured; written as JSON."""

    kind: str
    seconds: float = 0.0  # wall time of the measured call
    cpu_seconds: float = 0.0  # this process's CPU time during it
    requests: dict[str, int] = field(default_factory=dict)
    total_requests: int = 0
    peak_rss_mb: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    planned: dict[str, int] = field(default_factory=dict)
    exit_code: int = 0
    failures: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def request_kind(request: httpx2.Request) -> str:
    """`METHOD /Endpoint[/{id}][?filter=attribute]`: a request without its ids and values."""
    path = request.url.path
    parts = path.split("/v2/", 1)[-1].split("/")
    shown = [p if p in RESOURCE_SEGMENTS else "{id}" for p in parts if p]
    kind = f"{request.method} /{'/'.join(shown)}"
    scim_filter = request.url.params.get("filter")
    if scim_filter:
        kind += f"?filter={scim_filter.split()[0].rsplit(':', 1)[-1]}"
    return kind


def is_write(kind: str) -> bool:
    """True for requests that change something in the target."""
    method, _, path = kind.partition(" ")
    return method in {"POST", "PUT", "PATCH", "DELETE"} and not path.endswith("/.search")


@dataclass(slots=True)
class Recorder:
    """httpx2 event hooks: count requests by kind; optionally keep what the bare client needs.

    A created user is referred to by where its create was: `u:<i>` (the i-th `POST /Users`) or
    `b:<i>:<bulkId>` (that operation of the i-th `POST /Bulk`), so that the bare client can
    name the users it created itself in the membership PATCHes it replays.
    """

    capture: bool = False
    kinds: Counter[str] = field(default_factory=Counter)
    user_bodies: list[bytes] = field(default_factory=list)
    bulk_bodies: list[bytes] = field(default_factory=list)
    _pending: dict[int, str] = field(default_factory=dict)  # request -> "u:<i>" or "b:<i>"
    created: dict[str, str] = field(default_factory=dict)  # SCIM id -> where it was created
    group_bodies: list[bytes] = field(default_factory=list)
    patches: list[bytes] = field(default_factory=list)

    async def on_request(self, request: httpx2.Request) -> None:
        """Count (and maybe keep) one request."""
        kind = request_kind(request)
        self.kinds[kind] += 1
        if not self.capture:
            return
        if kind == "POST /Users":
            self._pending[id(request)] = f"u:{len(self.user_bodies)}"
            self.user_bodies.append(request.content)
        elif kind == "POST /Bulk":
            self._pending[id(request)] = f"b:{len(self.bulk_bodies)}"
            self.bulk_bodies.append(request.content)
        elif kind == "POST /Groups":
            self.group_bodies.append(request.content)
        elif kind == "PATCH /Groups/{id}":
            self.patches.append(request.content)

    async def on_response(self, response: httpx2.Response) -> None:
        """Remember which create got which SCIM id (Location header; a Bulk response's
        operations for a Bulk request)."""
        where = self._pending.pop(id(response.request), None)
        if where is None:
            return
        if where.startswith("u:") and response.status_code == 201:
            self.created[_last_segment(response.headers.get("Location", ""))] = where
        elif where.startswith("b:") and response.status_code == 200:
            await response.aread()
            for bulk_id, scim_id in _bulk_created(response.json()).items():
                self.created[scim_id] = f"{where}:{bulk_id}"

    @property
    def hooks(self) -> dict[str, list[Callable[..., Awaitable[None]]]]:
        """The event hooks to give httpx2."""
        return {"request": [self.on_request], "response": [self.on_response]}

    def write_capture(self, path: Path) -> None:
        """The creates (bodies) and membership PATCHes (as batches of create references)."""
        batches: list[list[str]] = []
        for body in self.patches:
            members: list[str] = []
            for operation in json.loads(body).get("Operations", []):
                if operation.get("op") == "add" and operation.get("path") == "members":
                    members += [self.created[m["value"]] for m in operation["value"]]
            batches.append(members)
        groups = [json.loads(body)["displayName"] for body in self.group_bodies]
        data = {
            "users": [body.decode() for body in self.user_bodies],
            "bulks": [body.decode() for body in self.bulk_bodies],
            "groups": groups,
            "batches": batches,
        }
        path.write_text(json.dumps(data), encoding="utf-8")


def _last_segment(location: str) -> str:
    return location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def _bulk_created(response: Any) -> dict[str, str]:
    """bulkId -> SCIM id of every POST a BulkResponse reports created (201)."""
    created: dict[str, str] = {}
    for operation in response.get("Operations", []) if isinstance(response, dict) else []:
        if str(operation.get("status")) == "201" and operation.get("bulkId"):
            created[operation["bulkId"]] = _last_segment(operation.get("location", ""))
    return created


@contextlib.contextmanager
def timed(result: Result) -> Iterator[None]:
    """Measure the enclosed block's wall time and this process's CPU time into `result`."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    result.seconds = time.perf_counter() - wall
    result.cpu_seconds = time.process_time() - cpu


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------- jobs


def run_validate(job: Job, result: Result) -> None:
    """Read and validate the HR input (and grants), merge people: what every run must do."""
    from connector import jobs
    from connector.config import load_config

    settings = load_config(Path(job.config))
    with timed(result):
        report = jobs.validate(settings, "bench", dt.date.fromisoformat(job.as_of))
    result.exit_code = report.exit_code
    result.extra = {**report.extra, "rejected": len(report.rejected)}


def run_sync(job: Job, result: Result) -> None:
    """`jobs.sync` with counting hooks (and capture for the bare client, if asked)."""
    from connector import jobs
    from connector.config import load_config

    settings = load_config(Path(job.config))
    recorder = Recorder(capture=bool(job.capture))
    with timed(result):
        report = asyncio.run(
            jobs.sync(
                settings,
                jobs.new_run_id(),
                dt.date.fromisoformat(job.as_of),
                force=job.force,
                event_hooks=recorder.hooks,
            )
        )
    result.requests = dict(sorted(recorder.kinds.items()))
    result.total_requests = sum(recorder.kinds.values())
    result.counts = dict(report.counts)
    result.planned = dict(report.extra.get("planned", {}))
    result.exit_code = report.exit_code
    result.failures = len(report.failures)
    result.extra = {
        "adopted": report.extra.get("adopted", 0),
        "retries": report.extra.get("retries", 0),
        "rejected": len(report.rejected),
        "safety_stopped": report.safety_stopped,
        "failure_sample": [f.reason for f in report.failures[:3]],
    }
    if job.capture:
        recorder.write_capture(Path(job.capture))


def run_bare(job: Job, result: Result) -> None:
    """Replay a captured initial sync's writes with a bare httpx2 client."""
    data = json.loads(Path(job.capture).read_text(encoding="utf-8"))
    recorder = Recorder()
    with timed(result):
        asyncio.run(_bare(job, data, recorder))
    result.requests = dict(sorted(recorder.kinds.items()))
    result.total_requests = sum(recorder.kinds.values())


async def _bare(job: Job, data: dict[str, Any], recorder: Recorder) -> None:
    headers = {"Accept": "application/scim+json", "Content-Type": "application/scim+json"}
    limits = httpx2.Limits(max_connections=max(job.concurrency, 1) * 2)
    async with httpx2.AsyncClient(
        base_url=job.base_url,
        headers=headers,
        limits=limits,
        event_hooks=recorder.hooks,
        timeout=BARE_TIMEOUT_SECONDS,
    ) as http:
        users: list[str] = data["users"]
        bulks: list[str] = data.get("bulks", [])
        ids: dict[str, str] = {}  # where a user was created (see Recorder) -> its id here
        limit = asyncio.Semaphore(job.concurrency)

        async def create(index: int) -> None:
            async with limit:
                response = await http.post("/Users", content=users[index])
                response.raise_for_status()
                ids[f"u:{index}"] = response.json()["id"]

        async def send_bulk(index: int) -> None:
            async with limit:
                response = await http.post("/Bulk", content=bulks[index])
                response.raise_for_status()
                for bulk_id, scim_id in _bulk_created(response.json()).items():
                    ids[f"b:{index}:{bulk_id}"] = scim_id

        # The same requests the connector sent, in the same order: Bulk requests first.
        async with asyncio.TaskGroup() as group:
            for index in range(len(bulks)):
                group.create_task(send_bulk(index))
            for index in range(len(users)):
                group.create_task(create(index))
        group_id = ""
        for name in data["groups"]:
            response = await http.post(
                "/Groups", json={"schemas": [GROUP_SCHEMA], "displayName": name}
            )
            response.raise_for_status()
            group_id = response.json()["id"]
        for batch in data["batches"]:
            members = [{"value": ids[where]} for where in batch]
            body = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": members}],
            }
            response = await http.patch(f"/Groups/{group_id}", json=body)
            response.raise_for_status()


async def _sandbox_profile(base_url: str) -> TargetProfile:
    """What a sync's discovery learns of the bench's target (the sandbox), learned in-process:
    the seed maps people as a real initial sync would have, for that target."""
    from connector.sandbox.scim import SandboxScimApp
    from connector.target.client import TargetClient
    from connector.target.profile import TargetProfile

    transport = httpx2.ASGITransport(app=SandboxScimApp())
    async with httpx2.AsyncClient(transport=transport, base_url=base_url) as http:
        client = TargetClient(http)
        await client.discover()
        return TargetProfile().discovered(client.user_extensions, client.schemas_body, client.notes)


def run_seed(job: Job, result: Result) -> None:
    """Write the state of a finished initial sync: state store and the target's seed file.

    The plan is the connector's own (`jobs.desire` + `jobs.make_planned` against an empty
    store); every create is recorded as `apply` records it (`save_user` with the SCIM id), every
    grant as a managed membership, each right's group with its id, and the run itself (ended
    `done`, its marker beside the store), so that the next sync is a re-sync of a store that
    knows what it granted, not an ownership recovery. Journal entries are left out.
    """
    from connector import jobs
    from connector.config import load_config
    from connector.known import KnownState
    from connector.state import StateStore
    from connector.state.backup import write_run_marker

    settings = load_config(Path(job.config))
    as_of = dt.date.fromisoformat(job.as_of)
    profile = asyncio.run(_sandbox_profile(str(settings.target.base_url)))
    started = time.perf_counter()
    inputs = jobs.read_inputs(settings)
    known = KnownState()
    has_acmidm = settings.target.capabilities.acmidm_extension is not False
    desired = jobs.desire(settings, inputs, known, as_of, has_acmidm, fit=profile.fit())
    plan = jobs.make_planned(settings, inputs, desired, known, as_of).plan
    planned_seconds = time.perf_counter() - started
    store = StateStore.open(Path(settings.state.path))
    with store.transaction():  # one for the whole seed: each save_user's own joins it
        members, ids = _seed(plan, store, desired.groups, Path(job.seed_file))
        store.save_target_profile(jobs.target_key(settings), profile)
        run_id = jobs.new_run_id()
        store.begin_run(run_id, "sync", as_of, dry_run=False)
        store.finish_run(run_id, "done", plan.counts(), 0)
    write_run_marker(Path(settings.state.path), run_id)
    store.close()
    result.seconds = time.perf_counter() - started
    result.planned = plan.counts()
    result.extra = {
        "users": len(ids),
        "memberships": sum(len(m) for m in members.values()),
        "plan_seconds": planned_seconds,
        "rejected": len(inputs.rejected),
    }


def _seed(
    plan: Plan, store: StateStore, groups: dict[str, str], seed_file: Path
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Record the plan's creates and grants as done; write the target's resources."""
    from connector.plan import MembershipOp, OpKind, UserOp

    members: dict[str, list[str]] = {}
    ids: dict[str, str] = {}
    with seed_file.open("w", encoding="utf-8") as seed:
        for op in plan.operations:
            if isinstance(op, UserOp) and op.kind is OpKind.CREATE:
                assert op.after is not None and op.resource is not None
                scim_id = uuid.uuid5(uuid.NAMESPACE_URL, op.person).hex
                ids[op.person] = scim_id
                store.save_user(replace(op.after, scim_id=scim_id))
                item = {"type": "User", "id": scim_id, "resource": op.resource}
                seed.write(json.dumps(item, ensure_ascii=False) + "\n")
            elif isinstance(op, MembershipOp) and op.kind is OpKind.GRANT:
                members.setdefault(op.right, []).append(ids[op.person])
                store.add_membership(op.person, op.right)
        for right, display_name in groups.items():
            group_id = uuid.uuid5(uuid.NAMESPACE_URL, f"group:{right}").hex
            resource = {
                "schemas": [GROUP_SCHEMA],
                "displayName": display_name,
                "members": [{"value": member} for member in members.get(right, [])],
            }
            store.save_group(right, group_id, display_name)
            seed.write(json.dumps({"type": "Group", "id": group_id, "resource": resource}) + "\n")
    return members, ids


JOBS: dict[str, Callable[[Job, Result], None]] = {
    "validate": run_validate,
    "sync": run_sync,
    "bare": run_bare,
    "seed": run_seed,
}


def main(argv: list[str] | None = None) -> None:
    """Run the job in argv[1], write the result to argv[2]."""
    args = sys.argv[1:] if argv is None else argv
    job = Job(**json.loads(Path(args[0]).read_text(encoding="utf-8")))
    result = Result(kind=job.kind)
    run = JOBS[job.kind]
    run(job, result)
    result.peak_rss_mb = round(peak_rss_mb(), 1)
    Path(args[1]).write_text(json.dumps(asdict(result), indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
