"""Baseline T: what most people write first. FastAPI and a transformers `pipeline` on torch fp32 CPU,
one request per forward pass.

    BENCH_MODEL_DIR=<Hugging Face model folder> \
        python -m uvicorn bench.servers.baseline_torch:app --host 127.0.0.1 --port 8000 --workers 1

Settings (environment): BENCH_MAX_LENGTH (default 128), BENCH_THREADS (torch intra-op threads,
default 2). Answers {"text": ...} with {"label", "score", "truncated", "top_k"} like our service;
`truncated` is null because the pipeline does not say whether it cut the text.

BENCH_HANDLER (bench/servers/baseline_app.py) defaults to "locked", the safe choice on 2 cores:
concurrent passes put 2 OpenMP threads per request on the cores, and torch's OpenMP team on the
event loop's (main) thread measured 5-7x slower than on a worker thread while other work shared
the cores.
"""

from __future__ import annotations

import os

import torch
from transformers import pipeline

from bench.servers.baseline_app import answer, baseline_app

MODEL_DIR = os.environ["BENCH_MODEL_DIR"]
MAX_LENGTH = int(os.environ.get("BENCH_MAX_LENGTH", "128"))
torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))

classifier = pipeline("text-classification", model=MODEL_DIR, device="cpu", torch_dtype=torch.float32)


def classify(text: str) -> dict:
    (best,) = classifier(text, truncation=True, max_length=MAX_LENGTH)
    return answer(best["label"], float(best["score"]), None)


app = baseline_app("baseline T: transformers pipeline, torch fp32", classify, default_handler="locked")
