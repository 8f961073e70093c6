"""`check-target`: what a check teaches the first sync, how answers are judged, and that a
garbled or failing answer never stops the other probes. Against real servers: see
tests/integration/test_check_target.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.config import load_config
from connector.errors import TargetError
from connector.state import StateStore
from connector.target.check import (
    MEMBERS_ON_POST,
    OR_FILTER,
    Area,
    Finding,
    TargetCheck,
    Verdict,
    profile_from,
)
from connector.target.checking import job, probe
from connector.target.checking.announcements import (
    LIST_KEYS,
    SPC_KEYS,
    described,
    is_scim,
    not_scim,
    resource_types,
)
from connector.target.checking.answer import Answer
from connector.target.checking.filters import FilterTest, Term, filter_finding
from connector.target.discovery import relative_endpoint
from connector.target.profile import MemberRemoval, TargetProfile
from connector.target.retry import RetryPolicy
from connector.target.transport import RetryingTransport

runner = CliRunner()
EMPLOYEE_NUMBER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"


def finding(area: Area, verdict: Verdict, subject: str = "") -> Finding:
    return Finding(area, f"{area} {subject}", "-", "-", verdict, subject)


def check(*findings: Finding, extensions: frozenset[str] | None = None) -> TargetCheck:
    return TargetCheck("https://idp.example/scim/v2", True, findings, extensions)


# ---------------------------------------------------------------------------- profile_from


def test_member_removal_is_the_first_form_that_worked_in_the_ladder_order() -> None:
    learned = profile_from(
        check(
            finding(Area.GROUP, Verdict.REFUSED, MemberRemoval.FILTER.value),
            finding(Area.GROUP, Verdict.REFUSED, MemberRemoval.VALUE_FILTER.value),
            finding(Area.GROUP, Verdict.OK, MemberRemoval.REPLACE.value),
            finding(Area.GROUP, Verdict.OK, MemberRemoval.VALUE_LIST.value),
        )
    )
    assert learned.member_removal is MemberRemoval.VALUE_LIST


def test_without_a_working_removal_form_the_ladder_starts_at_the_top() -> None:
    learned = profile_from(
        check(
            finding(Area.GROUP, Verdict.REFUSED, MemberRemoval.FILTER.value),
            finding(Area.GROUP, Verdict.SKIPPED, MemberRemoval.VALUE_LIST.value),
        )
    )
    assert learned.member_removal is MemberRemoval.FILTER


def test_refused_patches_go_by_put_and_unkept_attributes_are_not_kept() -> None:
    learned = profile_from(
        check(
            finding(Area.USER_CREATE, Verdict.NOT_KEPT, "displayName"),
            finding(Area.USER_CREATE, Verdict.PARTLY_KEPT, "emails"),  # some is kept: still sent
            finding(Area.USER_CREATE, Verdict.OK, "externalId"),
            finding(Area.USER_PATCH, Verdict.REFUSED, "displayName"),
            finding(Area.USER_PATCH, Verdict.REFUSED, "externalId"),
            finding(Area.USER_PATCH, Verdict.NOT_KEPT, EMPLOYEE_NUMBER),
            finding(Area.USER_PATCH, Verdict.OK, "active"),
        )
    )
    assert learned.put_paths == {"displayName", "externalId"}
    assert learned.not_kept == {"displayName", EMPLOYEE_NUMBER}


def test_members_dropped_by_a_group_create_or_replace_are_learned() -> None:
    dropped_on_post = check(finding(Area.GROUP, Verdict.NOT_KEPT, MEMBERS_ON_POST))
    dropped_on_put = check(finding(Area.GROUP, Verdict.NOT_KEPT, MemberRemoval.REPLACE.value))
    kept = check(
        finding(Area.GROUP, Verdict.OK, MEMBERS_ON_POST),
        finding(Area.GROUP, Verdict.OK, MemberRemoval.REPLACE.value),
    )
    assert profile_from(dropped_on_post).drops_members_on_write
    assert profile_from(dropped_on_put).drops_members_on_write
    assert not profile_from(kept).drops_members_on_write


def test_only_filters_seen_to_give_wrong_results_are_untrusted() -> None:
    learned = profile_from(
        check(
            finding(Area.FILTER, Verdict.UNTRUSTED, "externalId"),
            finding(Area.FILTER, Verdict.UNTRUSTED, "emails.value"),
            finding(Area.FILTER, Verdict.UNVERIFIED, "displayName"),
            finding(Area.FILTER, Verdict.REFUSED, "userName"),
            finding(Area.FILTER, Verdict.UNTRUSTED, OR_FILTER),  # not an attribute
        )
    )
    assert learned.untrusted_filters == {"externalid", "emails.value"}


def test_a_check_that_verified_nothing_teaches_only_the_user_extensions() -> None:
    extensions = frozenset({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:user"})
    learned = profile_from(check(extensions=extensions))
    assert learned == TargetProfile(user_extensions=extensions)


# ---------------------------------------------------------------------------- judging


def test_an_endpoint_from_the_host_root_is_made_relative_to_the_base_url() -> None:
    assert relative_endpoint("/scim/v2/Users", "/scim/v2", "/Users") == "/Users"
    assert relative_endpoint("/Users", "/scim/v2", "/Users") == "/Users"
    assert relative_endpoint("https://idp.example/scim/v2/Groups", "/scim/v2", "/x") == "/Groups"
    assert relative_endpoint("Users", "", "/x") == "/Users"


def listing(*resources: dict[str, object]) -> Answer:
    body = {"totalResults": len(resources), "Resources": list(resources)}
    return Answer(200, body)


def test_resource_types_are_used_at_the_endpoints_discovery_uses_and_say_why() -> None:
    types = listing(
        {"name": "User", "endpoint": "/scim/v2/Users"},
        {"name": "Group", "endpoint": "/Groups/"},
    )
    findings, endpoints = resource_types(types, "/scim/v2")
    assert (endpoints.users, endpoints.groups) == ("/Users", "/Groups")
    seen = {f.item: (f.verdict, f.observed) for f in findings}
    root = "a path from the host root, not relative to the base URL: /Users used"
    assert seen["User endpoint"] == (Verdict.NOTE, root)
    written = "relative, but not written as RFC 7643 §6 does: /Groups used"
    assert seen["Group endpoint"] == (Verdict.NOTE, written)
    plain = listing({"name": "User", "endpoint": "/Users"})
    assert resource_types(plain, "/scim/v2")[0][1].verdict is Verdict.OK


def test_a_filter_that_finds_a_value_nobody_has_is_ignored_by_the_target() -> None:
    test = FilterTest("externalId eq", "externalId", listing({"id": "1"}, {"id": "2"}))
    assert filter_finding(test, "-").verdict is Verdict.UNTRUSTED


def test_a_filter_is_trusted_only_when_a_known_value_was_found() -> None:
    nothing = listing()
    unverified = FilterTest("externalId eq", "externalId", nothing, unfiltered=3)
    term = Term("externalId", "E1")
    missed = FilterTest(
        "externalId eq", "externalId", nothing, nothing, (term,), frozenset({"1"}), 3
    )
    found = FilterTest(
        "externalId eq",
        "externalId",
        nothing,
        listing({"id": "1", "externalId": "E1"}),
        (term,),
        frozenset({"1"}),
        3,
    )
    assert filter_finding(unverified, "-").verdict is Verdict.UNVERIFIED
    assert filter_finding(missed, "-").verdict is Verdict.UNTRUSTED
    assert filter_finding(found, "-").verdict is Verdict.OK


def test_a_filter_whose_results_do_not_have_the_value_is_untrusted() -> None:
    term = Term("externalId", "E1")
    wider = listing({"id": "1", "externalId": "E1"}, {"id": "2", "externalId": "e1"})
    test = FilterTest(
        "externalId eq", "externalId", listing(), wider, (term,), frozenset({"1"})
    )  # externalId is caseExact: "e1" does not match
    assert filter_finding(test, "-").verdict is Verdict.UNTRUSTED


def test_a_refused_filter_is_refused_with_the_status_and_detail() -> None:
    answer = Answer(400, {"status": "400", "scimType": "invalidFilter", "detail": "no"})
    result = filter_finding(FilterTest("userName eq", "userName", answer), "-")
    assert (result.verdict, result.observed) == (Verdict.REFUSED, "400: invalidFilter no")


# ---------------------------------------------------------------------------- isolation


def write_config(directory: Path, base_url: str = "http://127.0.0.1:9/v2") -> Path:
    config = directory / "connector.toml"
    config.write_text(
        f'[source]\npath = "hr.csv"\n\n[target]\nbase_url = "{base_url}"\n\n'
        '[target.auth]\nmethod = "none"\n\n[target.retry]\nattempts = 1\n\n'
        '[state]\npath = "state.db"\n',
        encoding="utf-8",
    )
    return config


def garbling(request: httpx2.Request) -> httpx2.Response:
    """A target whose discovery answers are broken in every way but one."""
    path = request.url.path
    if path.endswith("/ServiceProviderConfig"):
        return httpx2.Response(200, json={"patch": {"supported": True}})
    if path.endswith("/ResourceTypes"):
        return httpx2.Response(200, content=b"<html>not json</html>")
    if path.endswith("/Schemas"):
        return httpx2.Response(200, json={"Resources": "not a list"})
    if request.method == "GET" and request.url.params.get("filter"):
        raise httpx2.ReadError("connection reset", request=request)
    if path.endswith("/Groups"):
        return httpx2.Response(500, json={"status": "500", "detail": "boom"})
    return httpx2.Response(200, json={"totalResults": 0, "Resources": []})


def test_a_garbled_or_failing_answer_is_a_finding_and_the_other_probes_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def mocked(*args: object, **kwargs: object) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            base_url="http://127.0.0.1:9/v2", transport=httpx2.MockTransport(garbling)
        )

    monkeypatch.setattr(probe, "http_client", mocked)
    settings = load_config(write_config(tmp_path))
    result = asyncio.run(probe.check_target(settings, write_test=False))
    verdicts = {(f.area, f.item): f.verdict for f in result.findings}
    assert verdicts[(Area.SERVICE_PROVIDER_CONFIG, "GET /ServiceProviderConfig")] is Verdict.OK
    assert verdicts[(Area.RESOURCE_TYPES, "GET /ResourceTypes")] is Verdict.FAILED
    assert verdicts[(Area.SCHEMAS, "GET /Schemas")] is Verdict.FAILED
    assert verdicts[(Area.READ, "GET /Users?count=0")] is Verdict.OK
    assert verdicts[(Area.READ, "GET /Groups?count=0")] is Verdict.REFUSED
    assert verdicts[(Area.FILTER, "userName eq")] is Verdict.FAILED  # no answer at all
    assert verdicts[(Area.FILTER, "externalId eq")] is Verdict.FAILED
    assert verdicts[(Area.READ, "POST /Users/.search")] is Verdict.UNVERIFIED


# ---------------------------------------------------------------------------- exit codes


def test_an_unreachable_target_exits_2_with_the_error_in_the_json(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = runner.invoke(app, ["check-target", "--config", str(config), "--format", "json"])
    assert result.exit_code == 2
    answer = json.loads(result.stdout)
    assert answer["exit_code"] == 2
    assert [error["kind"] for error in answer["errors"]] == ["target"]
    assert "cannot reach the target at http://127.0.0.1:9/v2" in answer["errors"][0]["message"]


def test_a_bad_config_exits_2_with_the_error_in_the_json(tmp_path: Path) -> None:
    config = tmp_path / "connector.toml"
    config.write_text('[source]\npath = "hr.csv"\n[target]\nbase_url = "nowhere"\n')
    result = runner.invoke(app, ["check-target", "--config", str(config), "--format", "json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["errors"][0]["kind"] == "config"
    text = runner.invoke(app, ["check-target", "--config", str(config)])
    assert (text.exit_code, text.stdout) == (2, "")
    assert "target.base_url" in text.stderr


class FakeTarget:
    """A minimal in-memory target: it creates what it is sent, and can be made to lose the
    answer to the first user create and to refuse deleting groups."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, object]] = {}
        self.lost_first_answer = True

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path.removeprefix("/v2")
        kind = path.split("/")[1]
        if request.method == "POST" and path in ("/Users", "/Groups"):
            resource = {**json.loads(request.content), "id": f"{kind}-{len(self.resources)}"}
            self.resources[str(resource["id"])] = resource
            if kind == "Users" and self.lost_first_answer:
                self.lost_first_answer = False
                raise httpx2.ReadError("connection reset", request=request)
            return httpx2.Response(201, json=resource)
        if request.method == "DELETE":
            if kind == "Groups":
                return httpx2.Response(500, json={"status": "500", "detail": "not today"})
            self.resources.pop(path.split("/")[2], None)
            return httpx2.Response(204)
        if request.method == "GET" and path.count("/") == 2:
            found = self.resources.get(path.split("/")[2])
            return httpx2.Response(200, json=found) if found else httpx2.Response(404)
        if request.method == "GET" and path == "/Users" and "filter" in request.url.params:
            wanted = request.url.params["filter"].split('"')[1]
            hits = [r for r in self.resources.values() if r.get("userName") == wanted]
            return httpx2.Response(200, json={"totalResults": len(hits), "Resources": hits})
        if path == "/ServiceProviderConfig":
            return httpx2.Response(200, json={"patch": {"supported": True}})
        return httpx2.Response(200, json={"totalResults": 0, "Resources": []})


def test_throwaway_resources_are_deleted_even_when_a_create_answer_was_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTarget()

    def mocked(*args: object, **kwargs: object) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            base_url="http://127.0.0.1:9/v2", transport=httpx2.MockTransport(fake)
        )

    monkeypatch.setattr(probe, "http_client", mocked)
    names = probe.Names("0badcafe")
    settings = load_config(write_config(tmp_path))
    result = asyncio.run(probe.check_target(settings, write_test=True, names=names))
    cleanup = {f.item: f for f in result.of(Area.CLEANUP)}
    # The first user's POST got no answer: it is found by its random userName and deleted.
    assert cleanup["DELETE throwaway user"].verdict is Verdict.OK
    assert cleanup["DELETE throwaway second user"].verdict is Verdict.OK
    # A throwaway the target would not delete is reported, with the name to remove it by.
    group = cleanup["DELETE throwaway group"]
    assert group.verdict is Verdict.FAILED
    assert "displayName scim-connector-check-0badcafe" in group.observed
    assert [r["displayName"] for r in fake.resources.values()] == ["scim-connector-check-0badcafe"]


# ---------------------------------------------------------------------------- not a SCIM service

BASE = "http://127.0.0.1:9/v2"


def test_scim_json_is_an_object_naming_a_scim_urn_or_a_2xx_with_the_endpoints_keys() -> None:
    error = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404"}
    assert is_scim(Answer(404, error), SPC_KEYS)  # a SCIM server without the endpoint
    assert is_scim(Answer(200, {"patch": {"supported": True}}), SPC_KEYS)
    assert is_scim(Answer(200, {"totalResults": 0}), LIST_KEYS)
    assert not is_scim(Answer(200, None, content_type="text/html"), SPC_KEYS)
    assert not is_scim(Answer(200, {"hello": "world"}), SPC_KEYS)
    assert not is_scim(Answer(404, {"detail": "not found"}), SPC_KEYS)
    assert not is_scim(Answer(200, [1, 2]), LIST_KEYS)


def test_not_scim_names_both_answers_and_is_none_when_either_is_scim() -> None:
    html = Answer(404, None, content_type="text/html")
    json_api = Answer(200, {"hello": "world"}, content_type="application/json")
    assert not_scim(BASE, html, json_api) == (
        f"{BASE}: not a SCIM 2.0 service: /ServiceProviderConfig answered 404 text/html, "
        "/Users answered 200 application/json, not a SCIM object "
        "(is target.base_url the SCIM base URL?)"
    )
    assert "/Users no answer (ReadTimeout)" in str(not_scim(BASE, html, "no answer (ReadTimeout)"))
    assert not_scim(BASE, html, Answer(200, {"totalResults": 3, "Resources": []})) is None
    assert not_scim(BASE, Answer(200, {"bulk": {"supported": False}}), html) is None
    assert described(Answer(200, None, content_type="application/scim+json")) == (
        "200 application/scim+json, but not JSON"
    )
    assert described(Answer(204)) == "204 without a Content-Type"


def mocked_client(
    monkeypatch: pytest.MonkeyPatch, handler: Callable[[httpx2.Request], httpx2.Response]
) -> list[str]:
    """Route the check's requests to `handler`, through the retrying transport; the requests
    sent, as `METHOD path`."""
    sent: list[str] = []

    def recording(request: httpx2.Request) -> httpx2.Response:
        sent.append(f"{request.method} {request.url.path}")
        return handler(request)

    def mocked(*args: object, **kwargs: object) -> httpx2.AsyncClient:
        policy = RetryPolicy(attempts=3, initial_wait=0, max_wait=0)
        transport = RetryingTransport(httpx2.MockTransport(recording), policy)
        return httpx2.AsyncClient(base_url=BASE, transport=transport)

    monkeypatch.setattr(probe, "http_client", mocked)
    return sent


def test_html_for_everything_stops_the_check_after_two_requests_sent_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    html = httpx2.Response(200, content=b"<html></html>", headers={"Content-Type": "text/html"})
    sent = mocked_client(monkeypatch, lambda request: html)
    settings = load_config(write_config(tmp_path))
    with pytest.raises(TargetError, match=r"not a SCIM 2\.0 service"):
        asyncio.run(probe.check_target(settings, write_test=True))
    assert sent == ["GET /v2/ServiceProviderConfig", "GET /v2/Users"]


def test_a_first_answer_that_looks_unavailable_is_still_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([httpx2.Response(503, text="busy")])

    def flaky(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/ServiceProviderConfig"):
            return next(answers, httpx2.Response(200, json={"patch": {"supported": True}}))
        return httpx2.Response(200, json={"totalResults": 0, "Resources": []})

    sent = mocked_client(monkeypatch, flaky)
    result = asyncio.run(probe.check_target(load_config(write_config(tmp_path)), write_test=False))
    verdicts = {(f.area, f.item): f.verdict for f in result.findings}
    assert verdicts[(Area.SERVICE_PROVIDER_CONFIG, "GET /ServiceProviderConfig")] is Verdict.OK
    assert sent[:2] == ["GET /v2/ServiceProviderConfig"] * 2


def test_without_service_provider_config_a_scim_users_answer_lets_the_check_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_config(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/ServiceProviderConfig"):
            return httpx2.Response(404, text="Not Found", headers={"Content-Type": "text/plain"})
        return httpx2.Response(200, json={"totalResults": 0, "Resources": []})

    mocked_client(monkeypatch, no_config)
    result = asyncio.run(probe.check_target(load_config(write_config(tmp_path)), write_test=False))
    verdicts = {(f.area, f.item): f.verdict for f in result.findings}
    assert verdicts[(Area.SERVICE_PROVIDER_CONFIG, "GET /ServiceProviderConfig")] is Verdict.REFUSED
    assert verdicts[(Area.READ, "GET /Users?count=0")] is Verdict.OK


def test_a_check_where_every_probe_was_refused_saves_no_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "403"}
    mocked_client(monkeypatch, lambda request: httpx2.Response(403, json=error))
    settings = load_config(write_config(tmp_path))
    checked = asyncio.run(job.check_target(settings, write_test=True))
    assert not checked.check.answered()
    assert checked.saved is False
    row = checked.check.of(Area.PROFILE)
    assert [(f.verdict, f.observed) for f in row] == [
        (Verdict.SKIPPED, "not saved: every probe failed or was refused, nothing was learned")
    ]
    store = StateStore.open(tmp_path / "state.db")
    try:
        assert store.target_profile(BASE) == TargetProfile()
    finally:
        store.close()


def test_answered_ignores_the_schemas_extension_rows_judged_without_an_answer() -> None:
    refused = finding(Area.SERVICE_PROVIDER_CONFIG, Verdict.REFUSED)
    extension = finding(Area.SCHEMAS, Verdict.NOTE, "urn:ietf:params:scim:schemas:extension:x")
    assert not check(refused, extension, finding(Area.BULK, Verdict.SKIPPED)).answered()
    assert check(refused, extension, finding(Area.READ, Verdict.NOTE)).answered()
