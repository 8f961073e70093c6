"""Authentication of the test target: a shared bearer token, or none at all.

django-scim2 itself only checks `request.user.is_authenticated` (its `SCIMAuthCheckMiddleware`,
applied to every SCIM view, answers 401 otherwise). This middleware sets `request.user`:

- `DJANGO_TARGET_TOKEN` unset or empty (what the `django_scim` fixture does): every request is
  the authenticated service client, so the connector talks to it with `method = "none"`;
- `DJANGO_TARGET_TOKEN` set: only requests with `Authorization: Bearer <that token>` are; any
  other gets 401 (for the connector's `method = "bearer"`).

The service client is not a row of the User table, so it never shows up in GET /Users.
"""

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse


class ServiceClient:
    """The provisioning client, authenticated (django-scim2 asks nothing else of it)."""

    is_authenticated = True
    is_anonymous = False


class BearerTokenMiddleware:
    """Set `request.user` to the service client when the token fits (or none is configured)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = settings.DJANGO_TARGET_TOKEN
        given = request.headers.get("Authorization", "")
        authenticated = not token or given == f"Bearer {token}"
        request.user = ServiceClient() if authenticated else AnonymousUser()
        return self.get_response(request)
