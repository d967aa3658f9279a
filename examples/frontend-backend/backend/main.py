"""The backend: a JSON API over a small in-memory catalogue.

Reading is open; adding items needs the token from the `items-api-token` secret, which flyte
exposes as ITEMS_API_TOKEN.
"""

import os
import secrets

from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel

app = FastAPI(title="Catalogue backend")


class Item(BaseModel):
    name: str
    price: float


ITEMS: dict[int, Item] = {
    1: Item(name="Teapot", price=24.0),
    2: Item(name="Mug", price=9.5),
}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/items")
async def list_items() -> dict[int, Item]:
    return ITEMS


@app.get("/api/items/{item_id}")
async def get_item(item_id: int) -> Item:
    if item_id not in ITEMS:
        raise HTTPException(status_code=404, detail=f"no item {item_id}")
    return ITEMS[item_id]


@app.post("/api/items", status_code=201)
async def add_item(item: Item, authorization: str = Header(default="")) -> dict[str, int]:
    expected = os.environ.get("ITEMS_API_TOKEN", "")
    if not expected or not secrets.compare_digest(authorization, f"Bearer {expected}"):
        raise HTTPException(status_code=401, detail="a valid bearer token is required")
    item_id = max(ITEMS, default=0) + 1
    ITEMS[item_id] = item
    return {"id": item_id}
