"""`python -m bench` (`make bench`): the connector's cost measured against a real SCIM server.

Every measured run is a process of its own (`bench.runner`), and so is the SCIM server
(`bench.server`: scim2-server's ASGI app with the ACM/IDM extension under uvicorn on loopback),
so that the server's CPU never shares the connector's GIL. Ratios are measured in the same run,
against the same server. See bench/README.md for what each figure means.

Sizes come from flags or the environment (`BENCH_INITIAL`, `BENCH_PEOPLE`, `BENCH_NEW_HOLDERS`);
`--quick` (or `BENCH_QUICK=1`) runs everything small, in a few minutes. The measured runs of the
connector are sampled by py-spy when it is installed (`pip install -e '.[bench]'`; `--no-profile`
to skip). Results go to `bench/results/<time>/` (`results.json`, `table.txt`, profiles) and
`bench/results/latest.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import profiles
from bench.generate import DAY1, Files, Population
from bench.runner import is_write
from bench.server import Server, _child_env
from connector.state import PostgresAddress
from connector.state.transfer import copy_to_postgres
from tests.postgres import PASSWORD, PASSWORD_ENV, PostgresServer, start_server, stop_server

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DAY2 = DAY1 + dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each benchmark is."""

    initial: int = 10_000  # people in the initial sync (benchmarks 1 and 4)
    people: int = 150_000  # people in the no-change re-sync and the day with changes (2, 3)
    new_holders: int = 5_000  # people granted the right in benchmark 4
    changes: float = 0.01  # share of the people changed on day 2
    concurrency: int = 8  # target.concurrency, for the connector and the bare client
    batch: int = 100  # target.membership_batch_size


QUICK = Sizes(initial=1_000, people=5_000, new_holders=300)


@dataclass(slots=True)
class Bench:
    """One benchmark session: where things go, and what was measured."""

    sizes: Sizes
    seed: int
    work: Path
    out: Path
    profile: bool
    bulk_compare: bool
    changes_day: bool = True  # benchmark 3 (off with `--only resync`)
    results: dict[str, Any] = field(default_factory=dict)
    setup: dict[str, float] = field(default_factory=dict)

    # --- plumbing --------------------------------------------------------------------------

    def config(
        self,
        name: str,
        files: Files,
        base_url: str,
        state: Path,
        capabilities: dict[str, bool] | None = None,
        state_lines: list[str] | None = None,
    ) -> Path:
        """Write a connector configuration for one run; returns its path."""
        lines = [
            "[source]",
            f'path = "{files.hr}"',
            f'grants = "{files.grants}"',
            "[target]",
            f'base_url = "{base_url}"',
            f"concurrency = {self.sizes.concurrency}",
            f"membership_batch_size = {self.sizes.batch}",
            "timeout_seconds = 600",
            "[target.auth]",
            'method = "none"',
        ]
        if capabilities:
            lines.append("[target.capabilities]")
            lines += [f"{key} = {str(value).lower()}" for key, value in capabilities.items()]
        lines += [
            "[state]",
            *(state_lines or [f'path = "{state}"']),
            "[logging]",
            'level = "error"',
        ]
        path = self.work / f"{name}.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def run(
        self, name: str, server: Server | None = None, profile: bool = False, **job: Any
    ) -> dict[str, Any]:
        """Run one job in a fresh process (under py-spy if `profile` and profiling is on);
        its result, with the server's CPU time and the machine's load added."""
        job_file = self.work / f"{name}.job.json"
        result_file = self.work / f"{name}.result.json"
        job_file.write_text(json.dumps(job), encoding="utf-8")
        command = [sys.executable, "-m", "bench.runner", str(job_file), str(result_file)]
        raw = self.out / "profiles" / f"{name}.txt"
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        profiled = profile and self.profile and spy is not None
        if profiled:
            raw.parent.mkdir(parents=True, exist_ok=True)
            command = [
                str(spy),
                "record",
                "--rate",
                "100",
                "--nonblocking",
                "--idle",
                "--format",
                "raw",
                "--output",
                str(raw),
                "--",
                *command,
            ]
        server_cpu = server.cpu_seconds() if server else 0.0
        load = os.getloadavg()[0]
        started = time.perf_counter()
        log_path = self.out / "logs" / f"{name}.log"
        with log_path.open("wb") as log:
            completed = subprocess.run(
                command,
                cwd=ROOT,
                env=_child_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if completed.returncode != 0:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"bench run {name} failed ({completed.returncode}):\n{tail}")
        result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
        result["process_seconds"] = round(time.perf_counter() - started, 3)
        result["load_before"] = round(load, 2)
        result["load_after"] = round(os.getloadavg()[0], 2)
        if server is not None:
            result["server_cpu_seconds"] = round(server.cpu_seconds() - server_cpu, 3)
        if profiled and raw.exists():
            summary = profiles.summarize(raw)
            raw.with_suffix(".summary.txt").write_text(profiles.render(summary), encoding="utf-8")
            result["profile"] = summary
        self.results[name] = result
        _say(f"  {name}: {result['seconds']:.1f} s, {result.get('total_requests', 0)} requests")
        return result

    @contextmanager
    def server(self, name: str, seed: Path | None = None) -> Iterator[Server]:
        """A fresh SCIM server for one part of the benchmark."""
        server = Server(self.out / "logs" / f"server-{name}.log", seed)
        self.setup[f"server {name} start"] = round(server.startup_seconds, 2)
        try:
            yield server
        finally:
            server.stop()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time an unmeasured setup step (data generation, seeding)."""
        started = time.perf_counter()
        yield
        self.setup[name] = round(time.perf_counter() - started, 2)

    # --- the benchmarks --------------------------------------------------------------------

    def initial(self) -> None:
        """1 (initial sync vs bare client) and 4 (new holders)."""
        sizes = self.sizes
        _say(f"initial sync: {sizes.initial:,} people")
        population = Population(sizes.initial, seed=self.seed)
        data = self.work / "initial"
        with self.step("generate initial"):
            day1 = population.write(data)
            holders = population.new_holders(data, sizes.new_holders)
        self.results["data_initial"] = day1.stats.as_dict()
        capture = self.work / "capture.json"
        with self.server("connector") as server:
            state = self.work / "initial.db"
            config = self.config("initial", day1, server.base_url, state)
            self.run(
                "initial_sync",
                server,
                kind="sync",
                config=str(config),
                as_of=DAY1.isoformat(),
                capture=str(capture),
                profile=True,
            )
            self.run(
                "initial_resync", server, kind="sync", config=str(config), as_of=DAY1.isoformat()
            )
            config = self.config("holders", holders, server.base_url, state)
            self.run(
                "new_holders",
                server,
                kind="sync",
                config=str(config),
                as_of=DAY2.isoformat(),
                force=True,
            )
        with self.server("bare") as server:
            self.run(
                "initial_bare",
                server,
                kind="bare",
                base_url=server.base_url,
                capture=str(capture),
                concurrency=sizes.concurrency,
                profile=True,
            )
        if self.bulk_compare:
            with self.server("no-bulk") as server:
                config = self.config(
                    "no_bulk", day1, server.base_url, self.work / "no-bulk.db", {"bulk": False}
                )
                self.run(
                    "initial_sync_no_bulk",
                    server,
                    kind="sync",
                    config=str(config),
                    as_of=DAY1.isoformat(),
                )
        self.plain_holders(day1, holders)

    def plain_holders(self, day1: Files, holders: Files) -> None:
        """4b: the new holders against a target without the ACM/IDM extension (no `rights[]`
        on the user): the membership PATCHes alone. The starting state is seeded."""
        state = self.work / "plain.db"
        seed = self.work / "plain-seed.jsonl"
        plain = {"acmidm_extension": False}
        with self.step("seed plain"):
            config = self.config("plain_seed", day1, "http://127.0.0.1:9/v2", state, plain)
            self.run(
                "plain_seed",
                kind="seed",
                config=str(config),
                as_of=DAY1.isoformat(),
                seed_file=str(seed),
            )
        with self.server("plain", seed) as server:
            config = self.config("plain", holders, server.base_url, state, plain)
            self.run(
                "new_holders_plain",
                server,
                kind="sync",
                config=str(config),
                as_of=DAY2.isoformat(),
                force=True,
            )

    def large(self) -> None:
        """2 (no-change re-sync vs read-and-validate), 2b (the same on PostgreSQL) and 3 (a
        day with changes, unless `changes_day` is off)."""
        sizes = self.sizes
        _say(f"re-syncs: {sizes.people:,} people")
        population = Population(sizes.people, seed=self.seed)
        data = self.work / "large"
        with self.step("generate large"):
            day1 = population.write(data)
            day2 = population.day2(data, sizes.changes) if self.changes_day else None
        self.results["data_large"] = day1.stats.as_dict()
        if day2 is not None:
            self.results["data_day2"] = day2.stats.as_dict()
        state = self.work / "large.db"
        seed = self.work / "large-seed.jsonl"
        config = self.config("large_seed", day1, "http://127.0.0.1:9/v2", state)
        self.run(
            "validate", kind="validate", config=str(config), as_of=DAY1.isoformat(), profile=True
        )
        with self.step("seed large"):
            self.run(
                "large_seed",
                kind="seed",
                config=str(config),
                as_of=DAY1.isoformat(),
                seed_file=str(seed),
            )
        with self.server("large", seed) as server:
            config = self.config("large", day1, server.base_url, state)
            self.run(
                "no_change",
                server,
                kind="sync",
                config=str(config),
                as_of=DAY1.isoformat(),
                profile=True,
            )
            self.no_change_on_postgresql(day1, server, state, config)
            if day2 is None:
                return
            config = self.config("day2", day2, server.base_url, state)
            self.run(
                "day2",
                server,
                kind="sync",
                config=str(config),
                as_of=DAY2.isoformat(),
                force=True,
                profile=True,
            )

    def no_change_on_postgresql(
        self, day1: Files, server: Server, state: Path, on_sqlite: Path
    ) -> None:
        """2b: the same no-change re-sync with the state store in PostgreSQL (a server of this
        machine, started as the tests start theirs: `tests.postgres`), the SQLite store as the
        SQLite run left it copied in by `state migrate`'s code; skipped, with the reason, where
        PostgreSQL is not installed. The PostgreSQL server's CPU time is measured too. Then
        one more re-sync on each (`on_sqlite`: benchmark 2's configuration), alternately and
        not profiled: the ratio is that of the best of two, less at the mercy of what else
        runs on the machine at one moment."""
        started = start_server()
        if isinstance(started, str):
            _say(f"2b, the re-sync on PostgreSQL, skipped: {started}")
            self.results["no_change_postgresql_skipped"] = started
            return
        postgres, folder = started
        try:
            with postgres.admin() as admin:
                version = admin.execute("SHOW server_version").fetchone()
            self.results["postgresql_version"] = str(version[0]).split()[0] if version else "?"
            with self.step("migrate large to postgresql"):
                database = postgres.new_database()
                address = PostgresAddress(postgres.url(database), password=PASSWORD)
                copy_to_postgres(state, address)
                # What autovacuum does soon after a bulk load, done before the run rather
                # than during it: the tables' statistics and visibility map.
                with postgres.admin(database) as admin:
                    admin.execute("VACUUM (ANALYZE)")
            os.environ[PASSWORD_ENV] = PASSWORD  # the runner's environment
            lines = [
                f'url = "{address.url}"',
                f'password_env = "{PASSWORD_ENV}"',
                f'secret_file = "{state}.secret"',  # the SQLite store's, generated beside it
                # Its own run marker: the SQLite store's names the SQLite run (this copy has
                # it), and benchmark 3 must not find this run's there.
                f'path = "{self.work / "large-pg.db"}"',
            ]
            config = self.config("large_pg", day1, server.base_url, state, state_lines=lines)
            for name, profile in (
                ("no_change_postgresql", True),
                ("no_change_postgresql_2", False),
            ):
                if not profile:
                    self.run(
                        "no_change_2",
                        server,
                        kind="sync",
                        config=str(on_sqlite),
                        as_of=DAY1.isoformat(),
                    )
                cpu = _postmaster_cpu_seconds(folder)
                result = self.run(
                    name,
                    server,
                    kind="sync",
                    config=str(config),
                    as_of=DAY1.isoformat(),
                    profile=profile,
                )
                _wait_for_no_sessions(postgres, database)
                result["postgresql_cpu_seconds"] = round(_postmaster_cpu_seconds(folder) - cpu, 3)
        finally:
            stop_server(folder)


def _postmaster_cpu_seconds(folder: Path) -> float:
    """CPU time of a `tests.postgres` server in `folder` so far: its postmaster's, that of its
    children that ended (each connection's backend is one, and ends with the connection), and
    that of those still there (background workers; a backend not yet reaped)."""
    pid = int((folder / "data" / "postmaster.pid").read_text().split()[0])
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(stat.parent.name) == pid:
            ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        elif int(fields[1]) == pid:  # a child
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _wait_for_no_sessions(postgres: PostgresServer, database: str, timeout: float = 30) -> None:
    """Wait until no connection to `database` is left (its backends ended and were counted)."""
    deadline = time.monotonic() + timeout
    with postgres.admin() as admin:
        while time.monotonic() < deadline:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.05)
    raise RuntimeError(f"connections to {database} still open after {timeout:.0f} s")


# ---------------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table."""

    measure: str
    value: str
    baseline: str
    ratio: str
    target: str
    verdict: str


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.inf


def _writes(result: dict[str, Any]) -> int:
    return sum(n for kind, n in result.get("requests", {}).items() if is_write(kind))


def _discovery(result: dict[str, Any]) -> int:
    """Discovery requests: the three configuration reads and the one `.search` probe."""
    requests: dict[str, int] = result.get("requests", {})
    kinds = ("/ServiceProviderConfig", "/Schemas", "/ResourceTypes")
    probe = min(requests.get("POST /Users/.search", 0), 1)
    return sum(n for kind, n in requests.items() if kind.endswith(kinds)) + probe


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def summarize(bench: Bench) -> tuple[list[Row], dict[str, Any]]:
    """The table rows and the figures, from the results."""
    r, s = bench.results, bench.sizes
    rows: list[Row] = []
    figures: dict[str, Any] = {}
    if "initial_sync" in r:
        sync, bare = r["initial_sync"], r["initial_bare"]
        ratio = _ratio(sync["seconds"], bare["seconds"])
        holders = r["data_initial"]["holders"]
        figures["initial_sync_ratio"] = round(ratio, 2)
        rows.append(
            Row(
                f"1. initial sync, {s.initial:,} people ({holders:,} holders): wall time",
                f"{sync['seconds']:.1f} s",
                f"bare {bare['seconds']:.1f} s",
                f"{ratio:.2f}x",
                "<= 1.3x",
                _verdict(ratio <= 1.3),
            )
        )
        rows.append(
            Row(
                "   requests sent",
                f"{sync['total_requests']:,}",
                f"bare {bare['total_requests']:,}",
                f"{_ratio(sync['total_requests'], bare['total_requests']):.2f}x",
                "",
                "",
            )
        )
        rows.append(
            Row(
                "   CPU: connector process / server",
                f"{sync['cpu_seconds']:.1f} s / {sync['server_cpu_seconds']:.1f} s",
                f"bare {bare['cpu_seconds']:.1f} s / {bare['server_cpu_seconds']:.1f} s",
                "",
                "",
                "",
            )
        )
        if "initial_sync_no_bulk" in r:
            nobulk = r["initial_sync_no_bulk"]
            rows.append(
                Row(
                    "   same, bulk switched off (capabilities.bulk = false)",
                    f"{nobulk['seconds']:.1f} s",
                    f"with bulk {sync['seconds']:.1f} s",
                    f"{_ratio(nobulk['seconds'], sync['seconds']):.2f}x",
                    "",
                    "",
                )
            )
    if "no_change" in r:
        nochange, validate = r["no_change"], r["validate"]
        ratio = _ratio(nochange["seconds"], validate["seconds"])
        writes = _writes(nochange)
        figures["no_change_ratio"] = round(ratio, 2)
        rows.append(
            Row(
                f"2. no-change re-sync, {s.people:,} people: wall time",
                f"{nochange['seconds']:.1f} s",
                f"validate {validate['seconds']:.1f} s",
                f"{ratio:.2f}x",
                "<= 2x",
                _verdict(ratio <= 2),
            )
        )
        planned = sum(nochange["planned"].values())
        rows.append(
            Row(
                "   requests sent (writes)",
                f"{nochange['total_requests']} ({writes})",
                f"discovery {_discovery(nochange)}",
                "",
                "no write",
                _verdict(writes == 0 and planned == 0),
            )
        )
        rows.append(
            Row(
                "   peak RSS",
                f"{nochange['peak_rss_mb']:.0f} MB",
                f"validate {validate['peak_rss_mb']:.0f} MB",
                f"{_ratio(nochange['peak_rss_mb'], validate['peak_rss_mb']):.2f}x",
                "< 300 MB",
                _verdict(nochange["peak_rss_mb"] < 300),
            )
        )
    if "no_change_postgresql" in r and "no_change" in r:
        on_pg, on_sqlite = r["no_change_postgresql"], r["no_change"]
        pg_times = [
            r[n]["seconds"] for n in ("no_change_postgresql", "no_change_postgresql_2") if n in r
        ]
        sqlite_times = [r[n]["seconds"] for n in ("no_change", "no_change_2") if n in r]
        ratio = _ratio(min(pg_times), min(sqlite_times))
        figures["no_change_postgresql_ratio"] = round(ratio, 2)
        figures["no_change_postgresql_seconds"] = [round(t, 2) for t in pg_times]
        figures["no_change_sqlite_seconds"] = [round(t, 2) for t in sqlite_times]
        figures["no_change_postgresql_peak_rss_mb"] = max(
            r[n]["peak_rss_mb"]
            for n in ("no_change_postgresql", "no_change_postgresql_2")
            if n in r
        )
        figures["no_change_sqlite_peak_rss_mb"] = max(
            r[n]["peak_rss_mb"] for n in ("no_change", "no_change_2") if n in r
        )
        rows.append(
            Row(
                f"2b. same re-sync, state store in PostgreSQL {r.get('postgresql_version', '')} "
                f"(this machine): wall time, best of {len(pg_times)}",
                f"{min(pg_times):.1f} s ({', '.join(f'{t:.1f}' for t in pg_times)})",
                f"SQLite {min(sqlite_times):.1f} s ({', '.join(f'{t:.1f}' for t in sqlite_times)})",
                f"{ratio:.2f}x",
                "<= 1.5x",
                _verdict(ratio <= 1.5),
            )
        )
        rows.append(
            Row(
                "   CPU: connector process / PostgreSQL server (first runs)",
                f"{on_pg['cpu_seconds']:.1f} s / {on_pg.get('postgresql_cpu_seconds', 0):.1f} s",
                f"SQLite {on_sqlite['cpu_seconds']:.1f} s",
                "",
                "",
                "",
            )
        )
        planned = sum(on_pg["planned"].values())
        rows.append(
            Row(
                "   requests sent (writes)",
                f"{on_pg['total_requests']} ({_writes(on_pg)})",
                f"SQLite {on_sqlite['total_requests']} ({_writes(on_sqlite)})",
                "",
                "no write",
                _verdict(_writes(on_pg) == 0 and planned == 0),
            )
        )
        pg_rss, sqlite_rss = (
            figures["no_change_postgresql_peak_rss_mb"],
            figures["no_change_sqlite_peak_rss_mb"],
        )
        rows.append(
            Row(
                "   peak RSS (the higher of the runs)",
                f"{pg_rss:.0f} MB",
                f"SQLite {sqlite_rss:.0f} MB",
                f"{_ratio(pg_rss, sqlite_rss):.2f}x",
                "< 300 MB",
                _verdict(pg_rss < 300),
            )
        )
    elif "no_change_postgresql_skipped" in r:
        reason = r["no_change_postgresql_skipped"]
        rows.append(Row("2b. same re-sync on PostgreSQL: skipped", reason, "", "", "<= 1.5x", ""))
    if "day2" in r:
        day2, data = r["day2"], r["data_day2"]
        changed = data["job_changes"] + data["leavers"] + data["joiners"]
        per = _ratio(day2["total_requests"] - _discovery(day2), changed)
        figures["day2_requests_per_changed_person"] = round(per, 2)
        rows.append(
            Row(
                f"3. a day with {s.changes:.0%} changes ({changed:,} people: "
                f"{data['job_changes']} jobs, {data['leavers']} leavers, "
                f"{data['joiners']} joiners)",
                f"{day2['seconds']:.1f} s",
                f"validate {r['validate']['seconds']:.1f} s",
                f"{_ratio(day2['seconds'], r['validate']['seconds']):.2f}x",
                "",
                "",
            )
        )
        rows.append(
            Row(
                "   CPU: connector process / server",
                f"{day2['cpu_seconds']:.1f} s / {day2.get('server_cpu_seconds', 0):.1f} s",
                "",
                "",
                "",
                "",
            )
        )
        rows.append(
            Row(
                "   requests per changed person (discovery left out)",
                f"{per:.2f}",
                f"{day2['total_requests']:,} requests",
                "",
                "",
                "",
            )
        )
        rows.append(
            Row(
                "   peak RSS",
                f"{day2['peak_rss_mb']:.0f} MB",
                "",
                "",
                "< 300 MB",
                _verdict(day2["peak_rss_mb"] < 300),
            )
        )
    bound = math.ceil(s.new_holders / s.batch)
    for name, label in (("new_holders", "ACM/IDM target"), ("new_holders_plain", "core only")):
        if name not in r:
            continue
        result = r[name]
        group_writes = sum(
            n for kind, n in result["requests"].items() if kind.startswith("PATCH /Groups")
        )
        user_writes = sum(
            n for kind, n in result["requests"].items() if kind.startswith("PATCH /Users")
        )
        others = result["total_requests"] - group_writes - user_writes
        rows.append(
            Row(
                f"4. membership for {s.new_holders:,} new holders ({label}): requests",
                f"{result['total_requests']:,}",
                f"group PATCH {group_writes}, user PATCH {user_writes}, other {others}",
                "",
                f"<= {bound} + a few",
                _verdict(result["total_requests"] <= bound + 10),
            )
        )
        figures[f"{name}_requests"] = result["total_requests"]
    return rows, figures


def render(rows: list[Row]) -> str:
    """The rows as a plain-text table."""
    header = Row("measure", "connector", "baseline", "ratio", "target", "verdict")
    table = [header, *rows]
    widths = [max(len(getattr(row, name)) for row in table) for name in Row.__slots__]
    lines = []
    for index, row in enumerate(table):
        cells = [
            getattr(row, name).ljust(width)
            for name, width in zip(Row.__slots__, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    versions = {}
    for package in (
        "scim2-server",
        "scim2-client",
        "scim2-models",
        "httpx2",
        "uvicorn",
        "pydantic",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "?"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--", "connector")),
        "connector_digest": _tree_digest(ROOT / "connector"),
    }


def _tree_digest(folder: Path) -> str:
    """A short digest of the Python sources measured (the work tree may differ from HEAD)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _git(*args: str) -> str:
    try:
        completed = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        )
    except OSError:
        return ""
    return completed.stdout.strip()


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- main


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line, with defaults from the environment."""
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", default=quick, help="small sizes, about a minute"
    )
    parser.add_argument("--initial", type=int, help="people in the initial sync (10,000)")
    parser.add_argument("--people", type=int, help="people in the re-syncs (150,000)")
    parser.add_argument("--new-holders", type=int, help="new holders in benchmark 4 (5,000)")
    parser.add_argument("--seed", type=int, default=_env_int("BENCH_SEED", 1))
    parser.add_argument(
        "--only",
        choices=("all", "initial", "large", "resync"),
        default="all",
        help="initial: 1 and 4; large: 2, 2b and 3; resync: 2 and 2b (no day with changes)",
    )
    parser.add_argument("--no-profile", action="store_true", help="do not sample runs with py-spy")
    parser.add_argument(
        "--no-bulk-compare",
        dest="bulk_compare",
        action="store_false",
        help="skip the initial sync with bulk switched off (run by default)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    return parser.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> Sizes:
    """The sizes asked for: flags, then environment, then `--quick` or the defaults."""
    base = QUICK if args.quick else Sizes()
    return Sizes(
        initial=args.initial or _env_int("BENCH_INITIAL", base.initial),
        people=args.people or _env_int("BENCH_PEOPLE", base.people),
        new_holders=args.new_holders or _env_int("BENCH_NEW_HOLDERS", base.new_holders),
    )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmarks, print the table, write the JSON."""
    args = parse(argv)
    sizes = sizes_from(args)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    out = RESULTS / stamp
    (out / "logs").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="scim-bench-"))
    bench = Bench(
        sizes, args.seed, work, out, not args.no_profile, args.bulk_compare, args.only != "resync"
    )
    info = machine()  # before the runs: the connector measured is the one at the start
    started = time.perf_counter()
    _say(f"bench: sizes {asdict(sizes)}; results in {out}")
    try:
        if args.only in ("all", "initial"):
            bench.initial()
        if args.only in ("all", "large", "resync"):
            bench.large()
    finally:
        if args.keep:
            _say(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    rows, figures = summarize(bench)
    table = render(rows)
    heading = (
        f"scim-connector bench, {stamp}: {info['cpu']}, {info['cores']} cores, "
        f"Python {info['python']}, scim2-server {info['packages']['scim2-server']}; "
        f"{elapsed / 60:.1f} min"
    )
    print(f"\n{heading}\n\n{table}\n")
    document = {
        "stamp": stamp,
        "sizes": asdict(sizes),
        "seed": args.seed,
        "machine": info,
        "elapsed_seconds": round(elapsed, 1),
        "figures": figures,
        "table": [asdict(row) for row in rows],
        "setup_seconds": bench.setup,
        "runs": bench.results,
    }
    text = json.dumps(document, indent=2)
    (out / "results.json").write_text(text, encoding="utf-8")
    (out / "table.txt").write_text(f"{heading}\n\n{table}\n", encoding="utf-8")
    (RESULTS / "latest.json").write_text(text, encoding="utf-8")
    _say(f"written: {out / 'results.json'}")


if __name__ == "__main__":
    main()
