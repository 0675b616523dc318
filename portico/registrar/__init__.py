"""`portico registrar`: keep routes registered on NATS (gorouter's router.register) while their health checks pass.

A drop-in for Cloud Foundry's route-registrar: `config` reads its YAML/JSON format (plus Portico's additions),
`health` runs script and HTTP checks, `service` publishes registrations and answers router.start/greet.
"""

from portico.registrar.config import ConfigError, RegistrarConfig, Route, load_config, parse_config
from portico.registrar.service import Registrar, run

__all__ = ["ConfigError", "Registrar", "RegistrarConfig", "Route", "load_config", "parse_config", "run"]
