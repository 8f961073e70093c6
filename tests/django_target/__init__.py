"""A minimal Django project serving django-scim2 with its stock adapters: a SCIM test target.

`serve.py` migrates a fresh SQLite database and serves the project with uvicorn; the integration
tests start it through the `django_scim` fixture (tests/integration/conftest.py). FINDINGS.md
records what this server really answers.
"""
