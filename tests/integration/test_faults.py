"""Faults survived: a flaky target (through the fault proxy), lost answers, Retry-After, and
mass mistakes stopped by the safety threshold."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from rich.console import Console
from typer.testing import CliRunner

from connector import cli, jobs
from connector.cli import output
from connector.config import load_config
from connector.report import Report
from tests.factories import HR_FIELDS, hr_row, write_csv
from tests.faultproxy import Fault, FaultKind, FaultPlan, fault_proxy, nth, random_faults
from tests.integration.conftest import ScimServer, ScimTenants, _serve
from tests.integration.target_state import everything
from tests.postgres import state_toml

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("state_backend")]

DAY = dt.date(2026, 12, 1)
RIGHT = "Premiezoeker Gebruiker"
FAST_RETRIES = """
[target.retry]
attempts = 12
initial_wait_seconds = 0.01
max_wait_seconds = 0.5
"""
# The single-request path (one POST per create, lookups before creating), as these tests were
# written for: with Bulk, an initial sync is a handful of requests. Bulk under faults is in
# test_bulk.py.
NO_BULK = "[target.capabilities]\nbulk = false\n"
# Lookups one GET after the other (externalId, then userName in the URL), not one POST .search:
# so that a fault plan, which sees paths, can pick one person's lookups.
GET_LOOKUPS = "[target.capabilities]\nsearch = false\n"


def rows(count: int) -> list[dict[str, str]]:
    return [hr_row(n, rights=RIGHT if n % 4 == 0 else "") for n in range(1, count + 1)]


def configure(
    directory: Path, base_url: str, people: list[dict[str, str]], extra: str = ""
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write_csv(directory / "hr.csv", people, fields=HR_FIELDS)
    secret = directory.parent / "shared.secret"
    if not secret.exists():
        secret.write_text("one secret for every run of this test, so externalIds agree\n")
    config = directory / "connector.toml"
    config.write_text(
        f"""
[source]
path = "hr.csv"

[target]
base_url = "{base_url}"

[state]
{state_toml(directory, secret=False)}secret_file = "{secret}"
{FAST_RETRIES}
{extra}
""",
        encoding="utf-8",
    )
    return config


def sync(config: Path, **kw: Any) -> Report:
    return asyncio.run(jobs.sync(load_config(config), jobs.new_run_id(), DAY, **kw))


def upstream(server: ScimServer) -> str:
    return server.base_url.removesuffix("/v2")


def fill_with_others(server: ScimServer, count: int = 10) -> None:
    """Users nobody in the HR file matches: a target big enough, relative to a few joiners, for
    the connector to look each joiner up rather than read every user."""
    for n in range(count):
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": f"someone{n}@elsewhere.example",
        }
        assert httpx2.post(f"{server.base_url}/Users", json=body).status_code == 201


@contextmanager
def proxied(server: ScimServer, plan: FaultPlan) -> Any:
    with fault_proxy(upstream(server), plan) as proxy:
        yield proxy


def test_sync_through_20_percent_faults_ends_equal_to_a_fault_free_sync(
    scim_server: ScimServer, tmp_path: Path
) -> None:
    people = rows(500)
    with proxied(scim_server, random_faults(0.2, seed=7)) as proxy:
        config = configure(tmp_path / "faulty", proxy.base_url(), people, NO_BULK)
        report = sync(config)
    assert report.exit_code == 0, report.to_json()["failures"][:3]
    assert len(proxy.faults()) > 100
    assert report.extra["retries"] > 0
    faulty_users, faulty_members = everything(scim_server)
    assert len({u["externalId"] for u in faulty_users}) == len(faulty_users) == 500
    assert len(set(faulty_members)) == len(faulty_members) == 125

    (tmp_path / "clean-server").mkdir()
    with contextmanager(_serve)(tmp_path / "clean-server", acmidm=True) as clean:
        sync(configure(tmp_path / "clean", clean.base_url, people, NO_BULK))
        assert everything(clean) == (faulty_users, faulty_members)


def test_a_create_whose_answer_was_lost_does_not_duplicate(
    scim_server: ScimServer, tmp_path: Path
) -> None:
    plan = nth(1, Fault(FaultKind.DROP_AFTER), pattern=r"^POST /v2/Users$")
    with proxied(scim_server, plan) as proxy:
        report = sync(configure(tmp_path / "run", proxy.base_url(), rows(3), NO_BULK))
    assert [s.fault for s in proxy.faults()] == [FaultKind.DROP_AFTER]
    assert report.exit_code == 0
    users, _ = everything(scim_server)
    assert len(users) == 3


def test_a_429_with_retry_after_2_waits_about_2_seconds(
    scim_server: ScimServer, tmp_path: Path
) -> None:
    plan = nth(1, Fault(FaultKind.TOO_MANY, 2), pattern=r"^POST /v2/Users$")
    with proxied(scim_server, plan) as proxy:
        config = configure(tmp_path / "run", proxy.base_url(), rows(1), NO_BULK)
        config.write_text(
            config.read_text().replace("max_wait_seconds = 0.5", "max_wait_seconds = 5")
        )
        report = sync(config)
    assert report.exit_code == 0
    posts = [s for s in proxy.seen if s.method == "POST" and s.path == "/v2/Users"]
    refused, retried = posts[0], posts[1]
    assert refused.fault is FaultKind.TOO_MANY
    assert 1.9 <= retried.at - refused.at < 3.5


def test_a_target_that_keeps_failing_is_reported_per_person_and_the_run_goes_on(
    scim_server: ScimServer, tmp_path: Path
) -> None:
    people = rows(4)
    doomed = people[1]["email"].split("@")[0]  # in the userName filter of its lookup
    always_500: FaultPlan = lambda method, path, index: (  # noqa: E731
        Fault(FaultKind.ERROR) if method == "GET" and doomed in path else Fault()
    )
    extra = "[target.retry]\nattempts = 3\ninitial_wait_seconds = 0.01\nmax_wait_seconds = 0.05\n"
    fill_with_others(scim_server)
    with proxied(scim_server, always_500) as proxy:
        config = configure(tmp_path / "run", proxy.base_url(), people, GET_LOOKUPS)
        config.write_text(config.read_text().replace(FAST_RETRIES, extra))
        report = sync(config)
    assert report.exit_code == 1
    assert len(report.failures) == 1 and report.failures[0].operation == "create"
    assert "***" in report.failures[0].person
    assert report.counts["create"] == 3


def test_an_hr_file_with_60_percent_missing_trips_the_threshold_and_applies_nothing(
    scim_server: ScimServer, tmp_path: Path
) -> None:
    people = rows(20)
    config = configure(tmp_path / "run", scim_server.base_url, people)
    sync(config)
    write_csv(tmp_path / "run" / "hr.csv", people[:8], fields=HR_FIELDS)
    stopped = sync(config)
    assert stopped.exit_code == 3 and stopped.safety_stopped
    assert stopped.to_json()["planned"]["deactivate"] == 12  # the plan is shown
    assert stopped.to_json()["counts"]["deactivate"] == 0  # and nothing was done
    users, _ = everything(scim_server)
    assert all(u["active"] for u in users)
    forced = sync(config, force=True)
    assert forced.exit_code == 0 and forced.counts["deactivate"] == 12


def test_an_empty_hr_export_trips_the_threshold(scim_server: ScimServer, tmp_path: Path) -> None:
    config = configure(tmp_path / "run", scim_server.base_url, rows(12))
    sync(config)
    write_csv(tmp_path / "run" / "hr.csv", [], fields=HR_FIELDS)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "connector",
            "sync",
            "--config",
            str(config),
            "--as-of",
            "2026-12-02",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3, result.stderr
    assert "safety" in result.stdout.lower()


def test_a_stopped_run_reports_nothing_done_the_plan_as_planned_and_how_to_approve_it(
    scim_tenants: ScimTenants, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = scim_tenants.new()
    people = rows(20)
    config = configure(tmp_path / "run", server.base_url, people)
    sync(config)
    write_csv(tmp_path / "run" / "hr.csv", people[:8], fields=HR_FIELDS)
    monkeypatch.setattr(output, "out", Console(width=400, soft_wrap=True))  # no folded lines
    command = ["sync", "--config", str(config), "--as-of", DAY.isoformat()]

    as_json = CliRunner().invoke(cli.app, [*command, "--format", "json"])
    assert as_json.exit_code == 3, as_json.output
    report = json.loads(as_json.stdout)
    assert report["safety_stopped"] is True
    assert set(report["counts"].values()) == {0}
    assert report["planned"]["deactivate"] == 12 and report["planned"]["withdraw"] == 3
    assert report["approve"] == f"scim-connector approve {report['run_id']}"

    text = CliRunner().invoke(cli.app, command)
    assert text.exit_code == 3, text.output
    run_id = re.search(r"^sync (\S+) as of ", text.stdout, re.MULTILINE)
    assert run_id is not None, text.stdout
    assert f"scim-connector approve {run_id.group(1)}" in text.stdout
    assert "withdraw 0, deactivate 0" in text.stdout and "Deactivate (12)" in text.stdout
    users, _ = everything(server)
    assert all(u["active"] for u in users)

    preview = sync(config, dry_run=True)  # a preview: its counts are what it would change
    assert preview.safety_stopped and preview.counts["deactivate"] == 12
    assert "approve" not in preview.extra


def test_a_second_sync_does_not_run_while_one_is_running(
    scim_server: ScimServer, tmp_path: Path
) -> None:
    slow: FaultPlan = lambda method, path, index: Fault(FaultKind.DELAY, 0.1)  # noqa: E731
    with proxied(scim_server, slow) as proxy:
        config = configure(tmp_path / "run", proxy.base_url(), rows(60), NO_BULK)
        config.write_text(config.read_text().replace("[target]\n", "[target]\nconcurrency = 1\n"))
        command = [sys.executable, "-m", "connector", "sync", "--config", str(config)]
        first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not any(s.method == "POST" for s in proxy.seen):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.02)
        second = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert first.wait(timeout=120) == 0
    assert second.returncode == 2
    assert "another sync is running" in second.stderr


def test_an_approved_stopped_run_is_applied_once_only_for_the_same_changes_and_until_superseded(
    scim_server: ScimServer, tmp_path: Path
) -> None:
    people = rows(20)
    config = configure(tmp_path / "run", scim_server.base_url, people)
    sync(config)
    write_csv(tmp_path / "run" / "hr.csv", people[:8], fields=HR_FIELDS)
    stopped = sync(config)
    assert stopped.exit_code == 3
    assert stopped.extra["approve"] == f"scim-connector approve {stopped.run_id}"
    jobs.approve(load_config(config), stopped.run_id)

    write_csv(tmp_path / "run" / "hr.csv", people[:7], fields=HR_FIELDS)
    assert sync(config).exit_code == 3  # a different plan: the approval does not cover it
    write_csv(tmp_path / "run" / "hr.csv", people[:8], fields=HR_FIELDS)
    again = sync(config)  # the approved plan again, but a later run superseded the approval
    assert again.exit_code == 3
    assert "approval_superseded" in [w.kind for w in again.warnings]
    jobs.approve(load_config(config), again.run_id)
    applied = sync(config)
    assert applied.exit_code == 0 and applied.counts["deactivate"] == 12
    assert "safety_approved" in [w.kind for w in applied.warnings]
    assert sync(config).counts["deactivate"] == 0  # used once: nothing left to apply


def test_a_person_failing_in_consecutive_runs_is_reported_loudly(
    scim_server: ScimServer, tmp_path: Path
) -> None:
    people = rows(3)
    doomed = people[0]["email"].split("@")[0]
    always_500: FaultPlan = lambda method, path, index: (  # noqa: E731
        Fault(FaultKind.ERROR) if method == "GET" and doomed in path else Fault()
    )
    extra = "[target.retry]\nattempts = 1\n"
    fill_with_others(scim_server)
    with proxied(scim_server, always_500) as proxy:
        config = configure(tmp_path / "run", proxy.base_url(), people, GET_LOOKUPS)
        config.write_text(config.read_text().replace(FAST_RETRIES, extra))
        kinds = [[w.kind for w in sync(config).warnings] for _ in range(3)]
    assert "persistent_failure" not in kinds[0] + kinds[1]
    assert "persistent_failure" in kinds[2]
