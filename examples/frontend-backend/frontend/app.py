"""The frontend: an HTML page listing the backend's items.

BACKEND_URL is the backend's endpoint, an input of this app (see flyte.toml).
"""

import html
import os

import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

BACKEND_URL = os.environ.get("BACKEND_URL", "http://127.0.0.1:8000").rstrip("/")

app = FastAPI(title="Catalogue frontend")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/", response_class=HTMLResponse)
async def index() -> str:
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(f"{BACKEND_URL}/api/items")
        response.raise_for_status()
        items = response.json()
    rows = "".join(
        f"<li>{html.escape(item['name'])}: {item['price']:.2f}</li>" for item in items.values()
    )
    return f"<!doctype html><title>Catalogue</title><h1>Catalogue</h1><ul>{rows}</ul>"
