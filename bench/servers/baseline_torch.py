"""Baseline T: what most people write first. FastAPI and a transformers `pipeline` on torch fp32 CPU,
one request per forward pass.

    BENCH_MODEL_DIR=<Hugging Face model folder> \
        python -m uvicorn bench.servers.baseline_torch:app --host 127.0.0.1 --port 8000 --workers 1

Settings (environment): BENCH_MAX_LENGTH (default 128), BENCH_THREADS (torch intra-op threads,
default 2). Answers {"text": ...} with {"label", "score", "truncated", "top_k"} like our service;
`truncated` is null because the pipeline does not say whether it cut the text.

BENCH_HANDLER picks the request handler: "locked" (the default: FastAPI's threadpool `def`, one
forward pass at a time), "thread" (threadpool `def`, concurrent forward passes) or "inline" (`async
def` running the pipeline on the event loop). "locked" is the safe choice on 2 cores: concurrent
passes put 2 OpenMP threads per request on the cores, and torch's OpenMP team on the event loop's
(main) thread measured 5-7x slower than on a worker thread while other work shared the cores.
"""

from __future__ import annotations

import os
import threading

import torch
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline

MODEL_DIR = os.environ["BENCH_MODEL_DIR"]
MAX_LENGTH = int(os.environ.get("BENCH_MAX_LENGTH", "128"))
torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))

classifier = pipeline("text-classification", model=MODEL_DIR, device="cpu", torch_dtype=torch.float32)


class Request(BaseModel):
    text: str


def classify(text: str) -> dict:
    (best,) = classifier(text, truncation=True, max_length=MAX_LENGTH)
    return {"label": best["label"], "score": round(float(best["score"]), 6), "truncated": None, "top_k": None}


app = FastAPI(title="baseline T: transformers pipeline, torch fp32")

HANDLER = os.environ.get("BENCH_HANDLER", "locked")
_model_lock = threading.Lock()

if HANDLER == "inline":  # async def: the model runs on the event loop, one request at a time

    @app.post("/predict")
    async def predict(request: Request) -> dict:
        return classify(request.text)

elif HANDLER == "thread":  # def: FastAPI's threadpool, forward passes run concurrently

    @app.post("/predict")
    def predict(request: Request) -> dict:
        return classify(request.text)

else:  # "locked", def with one forward pass at a time: the event loop keeps parsing while the model runs

    @app.post("/predict")
    def predict(request: Request) -> dict:
        with _model_lock:
            return classify(request.text)


@app.get("/readyz")
async def readyz() -> dict:
    return {"ready": True}
