"""Baseline O: the hand-trimmed server. FastAPI, onnxruntime int8, `tokenizers`, one request per forward pass.

    BENCH_ONNX_FILE=model.onnx BENCH_TOKENIZER_FILE=tokenizer.json BENCH_LABELS=ar,bg,... \
        python -m uvicorn bench.servers.baseline_onnx:app --host 127.0.0.1 --port 8000 --workers 1

Settings (environment): BENCH_MAX_LENGTH (default 128), BENCH_THREADS (onnxruntime intra-op
threads, default 2). Answers {"text": ...} with {"label", "score", "truncated", "top_k"}, like our
service.

Honest, not a strawman: each text is padded to its own length only (the MiniLM tokenizer.json pads
every input to 128 tokens; that padding is switched off here) and cut at max_length; the session
uses the same thread settings as our runner.

BENCH_HANDLER picks the request handler: "inline" (the default: `async def` running the model on
the event loop, one forward pass at a time and no thread hand-off, the leanest path), "thread"
(FastAPI's threadpool `def`, concurrent forward passes) or "locked" (threadpool `def`, one forward
pass at a time). On 2 cores the three measured within noise of each other at c=32; inline adds
nothing to the c=1 latency.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel
from tokenizers import Tokenizer

MODEL_FILE = os.environ["BENCH_ONNX_FILE"]
LABELS = os.environ["BENCH_LABELS"].split(",")
MAX_LENGTH = int(os.environ.get("BENCH_MAX_LENGTH", "128"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))

tokenizer = Tokenizer.from_file(os.environ["BENCH_TOKENIZER_FILE"])
tokenizer.no_padding()  # one text per request: no padding at all
tokenizer.enable_truncation(max_length=MAX_LENGTH)

options = ort.SessionOptions()
options.intra_op_num_threads = THREADS
options.inter_op_num_threads = 1
session = ort.InferenceSession(MODEL_FILE, options, providers=["CPUExecutionProvider"])
INPUTS = [i.name for i in session.get_inputs()]


class Request(BaseModel):
    text: str


def classify(text: str) -> dict:
    encoding = tokenizer.encode(text)
    arrays = {
        "input_ids": np.array([encoding.ids], dtype=np.int64),
        "attention_mask": np.array([encoding.attention_mask], dtype=np.int64),
        "token_type_ids": np.array([encoding.type_ids], dtype=np.int64),
    }
    logits = session.run(None, {name: arrays[name] for name in INPUTS})[0][0]
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    best = int(probs.argmax())
    return {"label": LABELS[best], "score": round(float(probs[best]), 6), "truncated": bool(encoding.overflowing), "top_k": None}


app = FastAPI(title="baseline O: onnxruntime int8 + tokenizers")

HANDLER = os.environ.get("BENCH_HANDLER", "inline")
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
