"""Loads JSON records over HTTP and settings from YAML."""

from typing import Any

import httpx
import yaml

DEFAULT_TIMEOUT = 10.0


async def fetch_json(url: str, timeout: float = DEFAULT_TIMEOUT) -> list[dict[str, Any]]:
    """Fetches a JSON list of records; raises on HTTP errors and on anything but a list."""
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client:
        response = await client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        payload = response.json()
    if not isinstance(payload, list):
        raise ValueError(f"expected a JSON list from {url}, got {type(payload).__name__}")
    return [record for record in payload if isinstance(record, dict)]


def load_settings(text: str) -> dict[str, Any]:
    """Parses YAML settings; an empty document gives no settings."""
    settings = yaml.safe_load(text) or {}
    if not isinstance(settings, dict):
        raise ValueError("settings must be a YAML mapping")
    return settings
