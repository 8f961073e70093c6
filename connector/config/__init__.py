"""Configuration: a TOML file (`config/*.toml`), validated at load into typed `Settings`.

One module per part: `values` (key types), `secret_sources` (secrets named by keys), a module
per section (`source`, `target`, `lifecycle`, `safety`, `state`, `service`), `settings` (the
whole), `loading` (file + environment -> `Settings`, and every problem named by its key).

How a file becomes `Settings` (`load_config`):

1. the TOML is read (a syntax error names its line);
2. environment variables `SCIM_CONNECTOR_<SECTION>__<KEY>` override single keys, e.g.
   `SCIM_CONNECTOR_TARGET__BASE_URL` or `SCIM_CONNECTOR_TARGET__AUTH__CLIENT_ID` (names are
   case-insensitive, empty values are ignored, `__` separates the levels);
3. everything is validated: unknown keys are errors (a typo is reported by its name), and each
   auth method must have what it needs and nothing it does not use;
4. relative paths, from the file or the environment, are resolved against the folder of the
   config file, so the same file works from any working directory.

Sections absent from the file take their defaults; `[target.auth]` absent means method "none".
Secrets are never in the file: it names an environment variable (`*_env`) or a file (`*_file`)
for each, read when used (`TargetAuth.resolve_token()`, `Settings.state_secret()`, ...), not at
load. Every problem is a `ConfigError` naming the dotted key (`target.auth.client_id`), never a
secret's value. `config/example.toml` documents every key.
"""

from connector.config.lifecycle import ExternalsSettings, LifecycleSettings
from connector.config.loading import (
    CONFIG_PATH_ENV,
    DEFAULT_CONFIG_PATH,
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    config_path_from_env,
    environment_keys,
    load_config,
)
from connector.config.safety import SafetySettings
from connector.config.secret_sources import MIN_STATE_SECRET_BYTES, MIN_WEBHOOK_SECRET_BYTES
from connector.config.service import ServiceSettings
from connector.config.settings import LoggingSettings, ReportSettings, Settings
from connector.config.source import MappingSettings, SourceKind, SourceSettings
from connector.config.state import StateSettings
from connector.config.target import (
    AuthMethod,
    Capabilities,
    RetrySettings,
    SigningAlg,
    TargetAuth,
    TargetSettings,
)

__all__ = [
    "CONFIG_PATH_ENV",
    "DEFAULT_CONFIG_PATH",
    "ENV_NESTED_DELIMITER",
    "ENV_PREFIX",
    "MIN_STATE_SECRET_BYTES",
    "MIN_WEBHOOK_SECRET_BYTES",
    "AuthMethod",
    "Capabilities",
    "ExternalsSettings",
    "LifecycleSettings",
    "LoggingSettings",
    "MappingSettings",
    "ReportSettings",
    "RetrySettings",
    "SafetySettings",
    "ServiceSettings",
    "Settings",
    "SigningAlg",
    "SourceKind",
    "SourceSettings",
    "StateSettings",
    "TargetAuth",
    "TargetSettings",
    "config_path_from_env",
    "environment_keys",
    "load_config",
]
