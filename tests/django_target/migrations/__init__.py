"""Migrations of the test target's app (`django_target`)."""
