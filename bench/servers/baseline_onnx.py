"""Baseline O: the hand-trimmed server. FastAPI, onnxruntime int8, `tokenizers`, one request per forward pass.

    BENCH_ONNX_FILE=model.onnx BENCH_TOKENIZER_FILE=tokenizer.json BENCH_LABELS=ar,bg,... \
        python -m uvicorn bench.servers.baseline_onnx:app --host 127.0.0.1 --port 8000 --workers 1

Settings (environment): BENCH_MAX_LENGTH (default 128), BENCH_THREADS (onnxruntime intra-op
threads, default 2). Answers {"text": ...} with {"label", "score", "truncated", "top_k"}, like our
service.

Honest, not a strawman: each text is padded to its own length only (the MiniLM tokenizer.json pads
every input to 128 tokens; that padding is switched off here) and cut at max_length; the session
uses the same thread settings as our service's model.

BENCH_HANDLER (bench/servers/baseline_app.py) defaults to "inline", the leanest path: on 2 cores
the three handlers measured within noise of each other at c=32, and inline adds nothing to the c=1
latency.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from bench.servers.baseline_app import answer, baseline_app

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
    return answer(LABELS[best], float(probs[best]), bool(encoding.overflowing))


app = baseline_app("baseline O: onnxruntime int8 + tokenizers", classify, default_handler="inline")
