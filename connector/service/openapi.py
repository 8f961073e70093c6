"""The OpenAPI 3.1 description of `serve`'s endpoints (`GET /openapi.json`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connector import __version__
from connector.service import webhook

WEBHOOK_PATH = "/hr/events"


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


def openapi_document(
    max_body_bytes: int, organisations: Sequence[str] | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the service's endpoints (`organisations`: the names of a
    service with several, each with its own webhook and readiness)."""
    document = _document(max_body_bytes)
    if organisations is not None:
        _per_organisation(document, list(organisations))
    return document


def _per_organisation(document: dict[str, Any], names: list[str]) -> None:
    """Several organisations: the webhook and a readiness of its own under each one's name."""
    parameter = {
        "name": "organisation",
        "in": "path",
        "required": True,
        "description": "The organisation: its configuration file's name without `.toml`.",
        "schema": {"type": "string", "enum": names},
    }
    paths = document["paths"]
    webhook_path = paths.pop(WEBHOOK_PATH)
    post = webhook_path["post"]
    post["parameters"] = [parameter, *post["parameters"]]
    post["description"] += " Signed with that organisation's secret."
    post["responses"]["404"] = _json(
        "Error", "No such organisation, or its webhook is not configured."
    )
    paths[WEBHOOK_PATH + "/{organisation}"] = webhook_path
    paths["/readyz"]["get"]["summary"] = (
        "Readiness: every organisation's state store reachable and worker running (an "
        "organisation whose syncs fail is listed as degraded, not made unready)"
    )
    paths["/readyz/{organisation}"] = {
        "get": {
            "operationId": "getOrganisationReadiness",
            "summary": "One organisation: state store reachable, syncs not failing for long",
            "parameters": [parameter],
            "responses": {
                "200": _json("Status", "Ready."),
                "404": _json("Error", "No such organisation."),
                "503": _json("Status", "Not ready; `reasons` says why."),
            },
        }
    }


def _document(max_body_bytes: int) -> dict[str, Any]:
    signature_help = (
        f"HMAC-SHA256 of `<{webhook.TIMESTAMP_HEADER}>.<raw body>` with the shared secret "
        f"(`service.webhook_secret_env` / `_file`), as `{webhook.SIGNATURE_SCHEME}=<hex>`."
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "scim-connector service",
            "version": __version__,
            "description": "The HR webhook and the operational endpoints of `scim-connector "
            "serve`. Every event is stored durably before it is answered 202, and leads to a "
            "resync of that employee from the HR export.",
        },
        "paths": {
            WEBHOOK_PATH: {
                "post": {
                    "operationId": "postHrEvent",
                    "summary": "An HR event about one employee",
                    "description": "Signed with HMAC-SHA256; requests whose timestamp is more "
                    f"than {webhook.REPLAY_WINDOW_SECONDS} seconds from the connector's clock "
                    f"are refused. The body may be at most {max_body_bytes} bytes.",
                    "parameters": [
                        {
                            "name": webhook.TIMESTAMP_HEADER,
                            "in": "header",
                            "required": True,
                            "description": "When the request was signed, in unix seconds.",
                            "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
                        },
                        {
                            "name": webhook.SIGNATURE_HEADER,
                            "in": "header",
                            "required": True,
                            "description": signature_help,
                            "schema": {"type": "string", "pattern": "^sha256=[0-9a-fA-F]{64}$"},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/WebhookEvent"}
                            }
                        },
                    },
                    "responses": {
                        "202": _json("Accepted", "Stored; it will be processed."),
                        "200": _json("Accepted", "A duplicate of an event already stored."),
                        "400": _json("Error", "The body is not a valid event."),
                        "401": _json("Error", "Missing, bad or stale signature."),
                        "404": _json("Error", "The webhook is not configured."),
                        "409": _json(
                            "Error",
                            "The event_id was used for a different event (another type, "
                            "organisation, employee or record).",
                        ),
                        "408": _json("Error", "The body was not sent in time."),
                        "413": _json("Error", "The body is too large."),
                        "503": _json(
                            "Error",
                            "The event could not be stored, or too many webhook requests "
                            "arrived at once; send it again.",
                        ),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "getHealth",
                    "summary": "Liveness: the process and its worker run",
                    "responses": {
                        "200": _json("Status", "Alive."),
                        "503": _json("Status", "The worker stopped: restart the process."),
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "getReadiness",
                    "summary": "Readiness: state store reachable, syncs not failing for long",
                    "responses": {
                        "200": _json("Status", "Ready."),
                        "503": _json("Status", "Not ready; `reasons` says why."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "getMetrics",
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "The text exposition format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "WebhookEvent": webhook.event_schema(),
                "Accepted": {
                    "type": "object",
                    "required": ["status", "event_id"],
                    "properties": {
                        "status": {"type": "string", "enum": ["accepted", "duplicate"]},
                        "event_id": {"type": "string"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "reason"],
                    "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
                },
                "Status": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {
                        "status": {"type": "string"},
                        "reason": {"type": "string"},
                        "reasons": {"type": "array", "items": {"type": "string"}},
                        "organisations": {
                            "type": "object",
                            "description": "A service with several organisations: each one's "
                            "status (ready, degraded, not_ready) and reasons.",
                            "additionalProperties": {
                                "type": "object",
                                "properties": {
                                    "status": {"type": "string"},
                                    "reasons": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
            }
        },
    }
