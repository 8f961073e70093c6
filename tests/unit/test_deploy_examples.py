"""The deployment examples in deploy/ (Kubernetes and docker compose) hold together: every YAML
file parses, the connector configuration they carry loads with the connector's own loader in
the container's environment (its secrets faked), the probes ask /healthz and /readyz on the
port the configuration listens on, and two replicas are declared."""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.config import Settings, load_config
from connector.state.address import PostgresAddress

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY.parent / "Dockerfile"

# What a faked secret holds, by the name of the Secret key, file or variable it stands for.
FAKE_JWK = json.dumps({"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "d": "d"})


def _fake_secret(name: str) -> str:
    """A value good enough for the secret called `name` (random where randomness is checked)."""
    if "jwk" in name or "key" in name:
        return FAKE_JWK
    if "pem" in name:
        return "-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n"
    return secrets.token_hex(32)


def _documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of a file (empty ones left out)."""
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def _image_env() -> dict[str, str]:
    """The `ENV` variables the Dockerfile sets in the image."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for part in line[4:].split():
                name, _, value = part.partition("=")
                env[name] = value
    return env


@dataclass
class Container:
    """A container's view, faked under a temporary folder: files at container paths, its
    environment, the mount points that are writable."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    mounts: set[str] = field(default_factory=set)
    writable: set[str] = field(default_factory=set)

    def host(self, container_path: str) -> Path:
        """Where a container path is in the fake."""
        return self.root / container_path.lstrip("/")

    def write(self, container_path: str, text: str) -> None:
        """Put a file at a container path."""
        target = self.host(container_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def rerooted(self, text: str) -> str:
        """`text` with absolute paths under a mount point moved into the fake."""
        for mount in sorted(self.mounts, key=len, reverse=True):
            text = re.sub(rf'(?<![^"=]){re.escape(mount)}(?=/|"|$)', str(self.host(mount)), text)
        return text

    def load(self, monkeypatch: pytest.MonkeyPatch) -> Settings:
        """The connector's settings as `load_config` gives them inside the container."""
        for name in [n for n in os.environ if n.upper().startswith("SCIM_")]:
            monkeypatch.delenv(name)
        for name, value in self.env.items():
            monkeypatch.setenv(name, self.rerooted(value))
        config = self.host(self.env["SCIM_CONNECTOR_CONFIG"])
        config.write_text(self.rerooted(config.read_text(encoding="utf-8")), encoding="utf-8")
        return load_config(config)

    def is_writable(self, host_path: Path) -> bool:
        """Whether a path (in the fake) is on a writable mount."""
        return any(host_path.is_relative_to(self.host(mount)) for mount in self.writable)


def _secrets_are_read(settings: Settings) -> None:
    """Every secret the configuration names can be read, as `serve` reads them at start."""
    location = settings.state.location
    assert isinstance(location, PostgresAddress), "the examples keep the state in PostgreSQL"
    assert len(settings.state_secret()) >= 16
    assert settings.service.resolve_webhook_secret() is not None
    assert settings.target.auth.resolve_private_key() == FAKE_JWK


# ------------------------------------------------------------------------------ every file


def test_every_yaml_file_in_deploy_parses():
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert COMPOSE in files and KUBERNETES / "deployment.yaml" in files
    for path in files:
        assert _documents(path), f"{path} holds no YAML document"


# ------------------------------------------------------------------------------ Kubernetes


def _kubernetes() -> dict[str, list[dict[str, Any]]]:
    """The manifests kustomization.yaml lists, by kind."""
    (kustomization,) = _documents(KUBERNETES / "kustomization.yaml")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for resource in kustomization["resources"]:
        for doc in _documents(KUBERNETES / resource):
            by_kind.setdefault(doc["kind"], []).append(doc)
    assert {p.name for p in KUBERNETES.glob("*.yaml")} == {
        "kustomization.yaml",
        *kustomization["resources"],
    }, "every manifest is listed in kustomization.yaml"
    return by_kind


def _kubernetes_container(tmp_path: Path) -> tuple[Container, dict[str, Any], dict[str, Any]]:
    """The fake container of the Deployment, with its pod spec and container spec."""
    manifests = _kubernetes()
    (deployment,) = manifests["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (spec,) = pod["containers"]
    config_maps = {m["metadata"]["name"]: m["data"] for m in manifests["ConfigMap"]}
    secret_objects = {s["metadata"]["name"]: s["stringData"] for s in manifests["Secret"]}
    container = Container(tmp_path, env=_image_env())
    volumes = {volume["name"]: volume for volume in pod["volumes"]}

    def secret_value(name: str, key: str) -> str:
        assert key in secret_objects[name], f"Secret {name} has no key {key}"
        return _fake_secret(key)

    for mount in spec["volumeMounts"]:
        path = mount["mountPath"]
        container.mounts.add(path)
        container.host(path).mkdir(parents=True, exist_ok=True)
        if not mount.get("readOnly"):
            container.writable.add(path)
        volume = volumes[mount["name"]]
        for source in volume.get("projected", {}).get("sources", []):
            if "configMap" in source:
                data = config_maps[source["configMap"]["name"]]
                for item in source["configMap"]["items"]:
                    container.write(f"{path}/{item['path']}", data[item["key"]])
            if "secret" in source:
                for item in source["secret"]["items"]:
                    value = secret_value(source["secret"]["name"], item["key"])
                    container.write(f"{path}/{item['path']}", value)
    for variable in spec.get("env", []):
        if "value" in variable:
            container.env[variable["name"]] = variable["value"]
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            container.env[variable["name"]] = secret_value(ref["name"], ref["key"])
    return container, pod, spec


def test_kubernetes_config_map_loads_with_the_connectors_loader(tmp_path, monkeypatch):
    container, _, spec = _kubernetes_container(tmp_path)
    settings = container.load(monkeypatch)
    _secrets_are_read(settings)
    assert spec["args"] == ["scim-connector", "serve"]
    assert container.is_writable(settings.state.path.parent), "the run marker needs a disk"


def test_kubernetes_deployment_declares_two_replicas_and_probes_on_the_configured_port(
    tmp_path, monkeypatch
):
    container, pod, spec = _kubernetes_container(tmp_path)
    settings = container.load(monkeypatch)
    (deployment,) = _kubernetes()["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    ports = {port["name"]: port["containerPort"] for port in spec["ports"]}
    _, listen_port = settings.service.listen_host_port()
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = spec[probe]["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == listen_port
    # SIGTERM lets a sync finish before Kubernetes kills.
    assert pod["terminationGracePeriodSeconds"] > settings.service.shutdown_grace_seconds
    (service,) = _kubernetes()["Service"]
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)


def test_kubernetes_runs_non_root_on_a_read_only_root_and_ships_no_secret():
    manifests = _kubernetes()
    (deployment,) = manifests["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (spec,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["allowPrivilegeEscalation"] is False
    assert "/tmp" in {mount["mountPath"] for mount in spec["volumeMounts"]}
    for secret in manifests["Secret"]:
        assert set(secret["stringData"].values()) == {""}, "the example holds no real secret"


# ------------------------------------------------------------------------------ compose


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}")


def _compose_container(tmp_path: Path) -> tuple[Container, dict[str, Any], dict[str, Any]]:
    """The fake container of the connector service, with the compose file and the service."""
    (compose,) = _documents(COMPOSE)
    service = compose["services"]["scim-connector"]
    fakes: dict[str, str] = {}

    def interpolate(value: str) -> str:
        return _INTERPOLATION.sub(
            lambda match: fakes.setdefault(match[1], _fake_secret(match[1])), value
        )

    container = Container(tmp_path, env=_image_env())
    for name, value in service["environment"].items():
        container.env[name] = interpolate(str(value))
    for config in service["configs"]:
        target = config["target"]
        container.mounts.add(str(Path(target).parent))
        container.write(target, compose["configs"][config["source"]]["content"])
    for volume in service["volumes"]:
        source, target, *mode = volume.split(":")
        container.mounts.add(target)
        container.host(target).mkdir(parents=True, exist_ok=True)
        if mode != ["ro"]:
            container.writable.add(target)
        if source == "./secrets":
            container.write(f"{target}/client-key.jwk", _fake_secret("client-key.jwk"))
    return container, compose, service


def test_compose_config_loads_with_the_connectors_loader(tmp_path, monkeypatch):
    container, _, service = _compose_container(tmp_path)
    settings = container.load(monkeypatch)
    _secrets_are_read(settings)
    assert service["command"] == ["scim-connector", "serve"]
    assert settings.state.url is not None and "@postgres:" in settings.state.url
    assert container.is_writable(settings.state.path.parent), "the run marker needs a disk"
    assert service["read_only"] is True and "/tmp" in service["tmpfs"]


def test_compose_declares_two_replicas_and_checks_health_on_the_configured_port(
    tmp_path, monkeypatch
):
    container, compose, service = _compose_container(tmp_path)
    settings = container.load(monkeypatch)
    _, port = settings.service.listen_host_port()
    assert service["deploy"]["replicas"] == 2
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(service["healthcheck"]["test"])
    assert f"server scim-connector:{port}" in compose["configs"]["nginx"]["content"]
    stop = int(service["stop_grace_period"].removesuffix("s"))
    assert stop > settings.service.shutdown_grace_seconds
