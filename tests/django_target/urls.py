"""URLs of the test target: django-scim2's SCIM endpoints under /scim/v2/ (namespace `scim`)."""

from django.urls import include, path

urlpatterns = [path("scim/v2/", include("django_scim.urls"))]
