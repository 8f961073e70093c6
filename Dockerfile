# scim-connector container image. Config and state live on mounted volumes:
#   /config (read-only: connector.toml, HR exports, keys) and /state (the state store).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SCIM_CONNECTOR_CONFIG=/config/connector.toml

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

CMD ["scim-connector", "--help"]
