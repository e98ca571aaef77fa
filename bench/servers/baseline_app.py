"""The request handling both FastAPI baselines share: the request schema, the answer's shape and the
/predict handler, one text per request and one forward pass per request.

BENCH_HANDLER picks how /predict runs the model: "inline" (`async def` on the event loop, one
forward pass at a time, no thread hand-off), "thread" (FastAPI's threadpool `def`, concurrent
forward passes) or "locked" (threadpool `def`, one forward pass at a time, the event loop parsing
meanwhile). Each baseline picks its own default (see its docstring for why).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable

from fastapi import FastAPI
from pydantic import BaseModel


class Request(BaseModel):
    text: str


def answer(label: str, score: float, truncated: bool | None) -> dict:
    """The fields our service answers one text with (top_k is never asked for)."""
    return {"label": label, "score": round(score, 6), "truncated": truncated, "top_k": None}


def baseline_app(title: str, classify: Callable[[str], dict], default_handler: str) -> FastAPI:
    app = FastAPI(title=title)
    handler = os.environ.get("BENCH_HANDLER", default_handler)
    if handler == "inline":

        @app.post("/predict")
        async def predict_inline(request: Request) -> dict:
            return classify(request.text)

    elif handler in ("thread", "locked"):
        lock = threading.Lock() if handler == "locked" else contextlib.nullcontext()

        @app.post("/predict")
        def predict(request: Request) -> dict:
            with lock:
                return classify(request.text)

    else:
        raise ValueError(f"BENCH_HANDLER={handler!r}: choose inline, thread or locked")

    @app.get("/readyz")
    async def readyz() -> dict:
        return {"ready": True}

    return app
