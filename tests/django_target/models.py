"""User and Group models with django-scim2's SCIM mixins, as in django-scim2's own test models.

The stock adapters (`django_scim.adapters.SCIMUser`, `SCIMGroup`) read `username`, `first_name`,
`last_name`, `email`, `is_active`, `date_joined` and `scim_groups` of a user, `name` and
`user_set` of a group: Django's `AbstractUser` plus a many-to-many to the group provide them.
"""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django_scim.models import AbstractSCIMGroupMixin, AbstractSCIMUserMixin


class Group(AbstractSCIMGroupMixin):
    """A SCIM Group; its members are the users whose `scim_groups` hold it (`user_set`)."""

    name = models.CharField("name", max_length=80, unique=True)


class User(AbstractSCIMUserMixin, AbstractUser):
    """A SCIM User: Django's user (unique `username` = userName) with SCIM id and externalId."""

    scim_groups = models.ManyToManyField(Group, related_name="user_set")
