"""Router settings: typed values (settings) and the gorouter YAML loader (loader)."""

from portico.config.settings import RouterConfig

__all__ = ["RouterConfig"]
