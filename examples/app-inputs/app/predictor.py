"""The predictor app: serves the trained model. Each setting is an app input (see flyte.toml),
exposed as an environment variable, so serving can override any of them.
"""

import json
import os

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel


def _flag(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


MODEL = json.loads(os.environ.get("MODEL_COEFFICIENTS", '{"a": 3.0, "b": 2.0}'))
MODEL_NAME = os.environ.get("MODEL_NAME", "local")
MAX_BATCH_SIZE = int(os.environ.get("MAX_BATCH_SIZE", "64"))
ALERT_THRESHOLD = float(os.environ.get("ALERT_THRESHOLD", "4.5"))
DEBUG = _flag(os.environ.get("DEBUG", "false"))

app = FastAPI(title="Predictor", debug=DEBUG)


class Batch(BaseModel):
    xs: list[float]


def predict(x: float) -> dict[str, float | bool]:
    y = MODEL["a"] * x + MODEL["b"]
    return {"x": x, "y": round(y, 4), "alert": y > ALERT_THRESHOLD}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/predict")
async def predict_one(x: float) -> dict:
    return {"model": MODEL_NAME, **predict(x)}


@app.post("/predict")
async def predict_batch(batch: Batch) -> dict:
    if len(batch.xs) > MAX_BATCH_SIZE:
        raise HTTPException(status_code=413, detail=f"at most {MAX_BATCH_SIZE} values per batch")
    return {"model": MODEL_NAME, "predictions": [predict(x) for x in batch.xs]}


@app.get("/settings")
async def settings() -> dict:
    if not DEBUG:
        raise HTTPException(status_code=404, detail="settings are shown in debug mode only")
    return {"model": MODEL, "model_name": MODEL_NAME, "max_batch_size": MAX_BATCH_SIZE, "alert_threshold": ALERT_THRESHOLD}
