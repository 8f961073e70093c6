"""The `django_scim` fixture: a django-scim2 server (stock adapters) answers on loopback.

Only the fixture is checked here; what django-scim2 does with the connector's requests is in
tests/django_target/FINDINGS.md.
"""

from __future__ import annotations

import httpx2
import pytest

from tests.integration.conftest import ScimServer

pytestmark = pytest.mark.integration

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def test_server_answers_service_provider_config(django_scim: ScimServer) -> None:
    response = httpx2.get(f"{django_scim.base_url}/ServiceProviderConfig")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/scim+json"
    assert response.json()["patch"] == {"supported": True}


def test_user_is_created_and_read_back(django_scim: ScimServer) -> None:
    user = {
        "schemas": [USER_SCHEMA],
        "userName": "person1@gent.be",
        "externalId": "E0001",
        "name": {"givenName": "Given1", "familyName": "Family1"},
        "emails": [{"value": "person1@gent.be", "type": "work", "primary": True}],
        "active": True,
    }
    created = httpx2.post(f"{django_scim.base_url}/Users", json=user)
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location == f"{django_scim.base_url}/Users/{created.json()['id']}"

    read = httpx2.get(location).json()
    assert read["userName"] == "person1@gent.be"
    assert read["externalId"] == "E0001"
    assert read["name"]["familyName"] == "Family1"
    assert read["emails"] == [{"value": "person1@gent.be", "primary": True}]  # type is dropped
    assert read["active"] is True


def test_each_test_gets_an_empty_server(django_scim: ScimServer) -> None:
    listed = httpx2.get(f"{django_scim.base_url}/Users", params={"count": 0}).json()
    assert listed["totalResults"] == 0
