# scim-connector container image: `scim-connector serve` (HR webhook, scheduled syncs, /healthz,
# /readyz, /metrics) by default; any other subcommand can be given instead.
#
# Config and state live on mounted volumes:
#   /config  read-only: connector.toml, HR exports, keys and secrets (SCIM_CONNECTOR_CONFIG)
#   /state   read-write: the state store, /state/state.db (SCIM_CONNECTOR_STATE__PATH overrides
#            [state] path; the generated state secret is kept beside it)
# The service listens on 0.0.0.0:8000 inside the container (SCIM_CONNECTOR_SERVICE__LISTEN).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SCIM_CONNECTOR_CONFIG=/config/connector.toml \
    SCIM_CONNECTOR_STATE__PATH=/state/state.db \
    SCIM_CONNECTOR_SERVICE__LISTEN=0.0.0.0:8000

RUN python3 -m venv /opt/scim-connector
COPY pyproject.toml README.md /src/
COPY connector /src/connector
COPY mappings /src/mappings
COPY config/demo /src/config/demo
RUN /opt/scim-connector/bin/pip install --no-cache-dir /src && rm -rf /src

RUN useradd --system --uid 10001 --home-dir /state --shell /usr/sbin/nologin connector \
    && mkdir -p /state /config && chown connector /state
USER connector
WORKDIR /state
ENV PATH=/opt/scim-connector/bin:$PATH
VOLUME ["/state"]
EXPOSE 8000

# The slim image has no curl: Python's urllib asks /healthz on the port `serve` listens on.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('SCIM_CONNECTOR_SERVICE__LISTEN', ':8000').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

# uvicorn stops gracefully on SIGTERM (the default stop signal): requests in progress finish,
# the sync in progress gets service.shutdown_grace_seconds (default 20) to finish.
STOPSIGNAL SIGTERM
CMD ["scim-connector", "serve"]
