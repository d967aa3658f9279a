"""Tasks that adapt to the domain they run in.

flyte sets FLYTE_DOMAIN (and FLYTE_PROJECT) in every environment, so the code can pick its
settings from it; what the manifest varies (resources, env vars, packages) is in flyte.toml.
"""

import logging
import os
import random
import statistics

SETTINGS = {
    "development": {"sample_size": 100, "seed": 0},
    "staging": {"sample_size": 10_000, "seed": 0},
    "production": {"sample_size": 1_000_000, "seed": None},
}


def current_domain() -> str:
    domain = os.environ.get("FLYTE_DOMAIN", "development")
    if domain not in SETTINGS:
        raise RuntimeError(f"no settings for domain {domain!r}; known: {', '.join(SETTINGS)}")
    return domain


def settings() -> dict:
    return SETTINGS[current_domain()]


def _setup() -> logging.Logger:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "info").upper())
    dsn = os.environ.get("SENTRY_DSN")
    if dsn:
        # Only the production image installs sentry-sdk, and only production has the secret.
        import sentry_sdk

        sentry_sdk.init(dsn=dsn, environment=current_domain())
    return logging.getLogger("environment_picker")


log = _setup()


def estimate_mean(n: int) -> dict:
    """Estimates the mean of n dice throws from a domain-sized sample."""
    config = settings()
    rng = random.Random(config["seed"])
    sample_size = min(n, config["sample_size"])
    throws = [rng.randint(1, 6) for _ in range(sample_size)]
    log.info("domain %s: %d of %d throws", current_domain(), sample_size, n)
    return {"domain": current_domain(), "sample_size": sample_size, "mean": round(statistics.fmean(throws), 4)}


if __name__ == "__main__":
    print(estimate_mean(5_000))
