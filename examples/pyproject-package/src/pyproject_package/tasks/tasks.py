"""Async tasks of the `pipeline` environment (see flyte.toml); each is a plain coroutine."""

from typing import Any

import yaml

from pyproject_package.data.loader import fetch_json, load_settings
from pyproject_package.data.processor import clean_records
from pyproject_package.models.analyzer import analyze

DEFAULT_URL = "https://jsonplaceholder.typicode.com/posts"
DEFAULT_SETTINGS = """
min_body_length: 20
top_words: 5
"""


async def fetch_data(url: str = DEFAULT_URL) -> list[dict[str, Any]]:
    """Downloads the raw records."""
    return await fetch_json(url)


async def process_data(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cleans the records with the default settings."""
    settings = load_settings(DEFAULT_SETTINGS)
    return clean_records(records, min_body_length=int(settings.get("min_body_length", 0)))


async def analyze_data(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Computes the statistics."""
    settings = load_settings(DEFAULT_SETTINGS)
    return analyze(records, top_words=int(settings.get("top_words", 5)))


async def pipeline(url: str = DEFAULT_URL) -> str:
    """Fetches, cleans and analyses; returns the report as YAML."""
    raw = await fetch_data(url)
    cleaned = await process_data(raw)
    report = await analyze_data(cleaned)
    return yaml.safe_dump({"source": url, "fetched": len(raw), **report}, sort_keys=False)
