"""The `scim-connector` command line: thin. Parses, loads config, calls a job, renders.

`app` registers the commands (`runs`: validate, plan, sync, resync, upcoming; `state`: log,
resolve, approve, state backup/restore; `target`: check-target; `service`: serve, sandbox,
demo). Exit codes, and the mapping of errors to them, live in `exits` and only there; what
the commands print goes through `output`; `--help`'s looks are `help`'s.
"""

from connector.cli.app import app, main

__all__ = ["app", "main"]
