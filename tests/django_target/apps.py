"""The Django app of the test target: it holds the User and Group models django-scim2 serves."""

from django.apps import AppConfig


class DjangoTargetConfig(AppConfig):
    """`tests.django_target` as an installed app, labelled `django_target`."""

    name = "tests.django_target"
    label = "django_target"
    default_auto_field = "django.db.models.AutoField"
