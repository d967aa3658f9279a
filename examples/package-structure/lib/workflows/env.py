"""What every workflow shares about the environment it runs in.

The `workflows` task environment itself is declared in flyte.toml; this module reads what
flyte sets in it (FLYTE_PROJECT, FLYTE_DOMAIN) and configures logging once.
"""

import logging
import os

ENVIRONMENT = "workflows"


def project() -> str:
    return os.environ.get("FLYTE_PROJECT", "package-structure")


def domain() -> str:
    return os.environ.get("FLYTE_DOMAIN", "development")


def get_logger(name: str) -> logging.Logger:
    """A logger tagged with the project and domain, at INFO (DEBUG in development)."""
    level = logging.DEBUG if domain() == "development" else logging.INFO
    logging.basicConfig(level=level, format=f"%(asctime)s {project()}/{domain()} %(name)s %(levelname)s %(message)s")
    return logging.getLogger(name)
