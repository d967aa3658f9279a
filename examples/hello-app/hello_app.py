"""A minimal FastAPI app, served by uvicorn (see `command` in flyte.toml)."""

import os

from fastapi import FastAPI

app = FastAPI(title="Hello app")


@app.get("/")
async def root() -> dict[str, str]:
    return {"message": "Hello, world!", "domain": os.environ.get("FLYTE_DOMAIN", "local")}


@app.get("/hello/{name}")
async def hello(name: str) -> dict[str, str]:
    return {"message": f"Hello, {name}!"}


@app.get("/health")
async def health() -> dict[str, str]:
    """The health check: answers as soon as the app can serve."""
    return {"status": "ok"}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8080)
