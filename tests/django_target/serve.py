"""Run the test target: `python -m tests.django_target.serve --port N` from the repository root.

Migrates `db.sqlite3` in the existing directory `DJANGO_TARGET_DIR`, then serves Django's
ASGI application with uvicorn on 127.0.0.1 until SIGTERM/SIGINT. `DJANGO_TARGET_NETLOC` defaults
to 127.0.0.1:N.
"""

import argparse
import os

import uvicorn


def main() -> None:
    """Parse the port, set up Django, migrate, serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_target.settings")
    os.environ.setdefault("DJANGO_TARGET_NETLOC", f"127.0.0.1:{port}")

    import django
    from django.core.asgi import get_asgi_application
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    application = get_asgi_application()
    uvicorn.run(application, host="127.0.0.1", port=port, lifespan="off", log_level="warning")


if __name__ == "__main__":
    main()
