"""A sync killed part-way and started again ends where an uninterrupted sync ends."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from connector import jobs
from connector.config import load_config
from connector.state import StateStore
from tests.factories import HR_FIELDS, hr_row, write_csv
from tests.faultproxy import Gate, fault_proxy
from tests.integration.conftest import ScimServer, _serve
from tests.postgres import StateBackend

pytestmark = pytest.mark.integration

PEOPLE = 200
DAY = dt.date(2026, 12, 1)
# One POST per create, so that the run can be killed between two of them. With Bulk (one
# request for all 200 here): test_bulk.py kills a run between Bulk requests.
NO_BULK = "[target.capabilities]\nbulk = false\n"


def write_setup(
    directory: Path,
    server: ScimServer,
    secret_file: Path,
    state: StateBackend,
    extra: str = NO_BULK,
) -> Path:
    rows = [
        hr_row(n, rights="Premiezoeker Gebruiker" if n % 4 == 0 else "")
        for n in range(1, PEOPLE + 1)
    ]
    write_csv(directory / "hr.csv", rows, fields=HR_FIELDS)
    config = directory / "connector.toml"
    config.write_text(
        f"""
[source]
path = "hr.csv"

[target]
base_url = "{server.base_url}"
concurrency = 4

[target.auth]
method = "none"

[state]
{state.toml(directory, secret=False)}
secret_file = "{secret_file}"
{extra}
""",
        encoding="utf-8",
    )
    return config


def user_count(server: ScimServer) -> int:
    answer = httpx2.get(f"{server.base_url}/Users", params={"count": 0})
    total: int = answer.json()["totalResults"]
    return total


def snapshot(server: ScimServer) -> tuple[list[tuple[Any, ...]], list[str]]:
    users = httpx2.get(f"{server.base_url}/Users", params={"count": 1000}).json()["Resources"]
    ids_to_external = {u["id"]: u["externalId"] for u in users}
    groups = httpx2.get(f"{server.base_url}/Groups").json().get("Resources", [])
    members = sorted(
        f"{g['displayName']}:{ids_to_external[m['value']]}"
        for g in groups
        for m in g.get("members", [])
    )
    rows = sorted(
        (u["externalId"], u["userName"], u["active"], u["displayName"], len(u["emails"]))
        for u in users
    )
    return rows, members


def test_a_killed_sync_run_again_reaches_the_state_of_an_uninterrupted_sync(
    scim_server: ScimServer, tmp_path: Path, state_backend: StateBackend
) -> None:
    secret = tmp_path / "state.secret"
    secret.write_text("a shared secret for both runs, so externalIds agree\n")
    secret.chmod(0o600)  # private, as a secret should be: else a warning in the report
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    killed_dir.mkdir()
    clean_dir.mkdir()

    # The run is held at its 41st user create (up to `concurrency` creates wait at the proxy),
    # killed there, and the held creates then reach the server: answers lost to a dead client.
    gate = Gate(41, r"^POST \S*/Users$")
    server = urlsplit(scim_server.base_url)
    with fault_proxy(f"{server.scheme}://{server.netloc}", gate.plan) as proxy:
        proxied = ScimServer(proxy.base_url(server.path), scim_server.log, scim_server.acmidm)
        config = write_setup(killed_dir, proxied, secret, state_backend)
        command = [sys.executable, "-m", "connector", "sync", "--config", str(config)]
        command += ["--as-of", DAY.isoformat()]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert gate.held.wait(60), "the sync never reached its 41st create"
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        finally:
            gate.open()
    assert 40 <= user_count(scim_server) < PEOPLE, "the run should have been killed part-way"
    config = write_setup(
        killed_dir, scim_server, secret, state_backend
    )  # the next runs reach it directly

    report = asyncio.run(jobs.sync(load_config(config), jobs.new_run_id(), DAY))
    assert report.exit_code == 0, report.to_json()
    store = StateStore.open_read_only(state_backend.location(killed_dir))
    assert store is not None
    runs = {run.run_id: run.status for run in store.runs()}
    store.close()
    assert sorted(runs.values()) == ["done", "interrupted"], "the killed run is not left running"
    # The creates in flight when it was killed are read back (they were marked uncertain).
    assert [w.kind for w in report.warnings] == ["interrupted_run", "uncertain_resolved"]
    rows, members = snapshot(scim_server)
    assert len(rows) == PEOPLE
    assert len({r[0] for r in rows}) == PEOPLE  # one user per person: no duplicates
    assert len(members) == len(set(members)) == PEOPLE // 4
    again = asyncio.run(jobs.sync(load_config(config), jobs.new_run_id(), DAY))
    assert sum(again.counts.values()) == 0

    with contextmanager(_serve)(clean_dir, acmidm=True) as clean_server:
        clean_config = write_setup(clean_dir, clean_server, secret, state_backend)
        asyncio.run(jobs.sync(load_config(clean_config), jobs.new_run_id(), DAY))
        assert snapshot(clean_server) == (rows, members)
