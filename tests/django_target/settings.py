"""Django settings of the test target, read from the environment of the server process.

- `DJANGO_TARGET_DIR` (required): the directory of the SQLite database (`db.sqlite3`), so every
  server instance has its own;
- `DJANGO_TARGET_NETLOC`: host:port the server is reached at, for `meta.location` and `$ref`
  (default `127.0.0.1:8000`);
- `DJANGO_TARGET_TOKEN`: the bearer token clients must send; unset: no authentication
  (middleware.py);
- `DJANGO_TARGET_SCIM_LOG`: level of the `django_scim` logger (default WARNING); DEBUG logs
  every SCIM request and response with its body to the server's stderr.

django-scim2 runs with its stock adapters, filter parsers and ServiceProviderConfig; only the
settings it requires (NETLOC, AUTHENTICATION_SCHEMES), the group model, http instead of https
for locations, error details in responses (EXPOSE_SCIM_EXCEPTIONS) and a Bearer challenge with
401 are set.
"""

import os
from pathlib import Path

SECRET_KEY = "django-target-for-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_scim",
    "tests.django_target",
]
MIDDLEWARE = ["tests.django_target.middleware.BearerTokenMiddleware"]
ROOT_URLCONF = "tests.django_target.urls"
AUTH_USER_MODEL = "django_target.User"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": Path(os.environ["DJANGO_TARGET_DIR"]) / "db.sqlite3",
    }
}

DJANGO_TARGET_TOKEN = os.environ.get("DJANGO_TARGET_TOKEN", "")

SCIM_SERVICE_PROVIDER = {
    "NETLOC": os.environ.get("DJANGO_TARGET_NETLOC", "127.0.0.1:8000"),
    "SCHEME": "http",
    "GROUP_MODEL": "tests.django_target.models.Group",
    "EXPOSE_SCIM_EXCEPTIONS": True,
    "WWW_AUTHENTICATE_HEADER": 'Bearer realm="django-scim2"',
    "AUTHENTICATION_SCHEMES": [
        {
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token (none when no token is set)",
        }
    ],
}

# Warnings and tracebacks of failed requests go to stderr, that is the server's log file.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {"django_scim": {"level": os.environ.get("DJANGO_TARGET_SCIM_LOG", "WARNING")}},
}
