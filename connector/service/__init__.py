"""`scim-connector serve`: the HR webhook, scheduled syncs, health, readiness and metrics.

`webhook` (the request contract: signature, body), `schedule` (when full syncs run), `inbox`
(the state store's event inbox for the event loop), `runner` (one worker running every sync),
`metrics` (Prometheus), `app` (the Starlette application), `server` (uvicorn and logging).
"""
