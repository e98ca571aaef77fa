"""Load-test helpers for the resilience and soak tests: a minimal asyncio HTTP/1.1 client, latency
percentiles and the resident memory of a server's process tree.

The client is raw asyncio rather than httpx: at a few hundred concurrent connections on 2 cores,
httpx's connection pool spent seconds of CPU per request burst in the test process itself, which
showed up as server latency (measured: 429 answers "took" 7 s with httpx, 0.9 s with this client).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from dataclasses import dataclass, field

import psutil


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: float  # time.monotonic() when the request was written
    done: float  # when the whole answer was read

    @property
    def latency(self) -> float:
        return self.done - self.sent

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class Failure:
    """A request that got no HTTP answer (refused, reset, closed mid-answer)."""

    error: str
    sent: float
    done: float
    status: None = field(default=None, init=False)

    @property
    def latency(self) -> float:
        return self.done - self.sent


class Connection:
    """One keep-alive HTTP/1.1 connection, opened on first use and again after the server closes it."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: object, timeout: float = 60) -> Reply | Failure:
        """`payload` bytes are sent as they are (with a JSON content type), anything else as JSON."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sent = time.monotonic()
        try:
            return await asyncio.wait_for(self._exchange(head.encode() + body, sent), timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError) as error:
            self.close()
            return Failure(f"{type(error).__name__}: {error}", sent, time.monotonic())

    async def _exchange(self, request: bytes, sent: float) -> Reply:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(request)
        await self._writer.drain()
        lines = (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16):
                body += (await self._reader.readexactly(size + 2))[:-2]
            await self._reader.readuntil(b"\r\n")
        else:
            body = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Reply(status, headers, body, sent, time.monotonic())

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (shared pages counted in each)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


class RssSampler:
    """Samples tree_rss(pid) in a thread while the block runs; `peak` is the largest sample."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss(self.pid))


def mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.0f} MB"


# --- expected answers ----------------------------------------------------------------------------

# The int8 model quantizes activations per batch: a text's scores move with its batch mates, so
# answers served in shared batches are compared with the in-process classifier within
# CROSS_BATCH_TOLERANCE. The drift is not the same for every text: on one tiny model most texts moved
# by < 0.003 and one short text by up to 0.013. So only texts are used whose label is clear (the
# best score leads the second by MIN_MARGIN) and whose scores moved by at most MAX_DRIFT in-process
# across a few batch compositions: a wrong answer still shows, batch-mate noise does not.
CROSS_BATCH_TOLERANCE = 0.02
MIN_MARGIN = 0.1
MAX_DRIFT = 0.005


def tiny_reference(tiny_export):
    """The stored tiny ONNX model the servers run, loaded in-process with the servers' settings."""
    import bentoml

    from textclf.config import load_settings
    from textclf.core.loading import onnx_classifier

    model = bentoml.models.get(tiny_export.onnx_tag)
    assert bentoml.models.get("tiny-onnx:latest").tag == model.tag  # what the servers load
    return onnx_classifier(model.path, model.info.metadata, load_settings(environ={"TEXTCLF_MODEL_NAME": "tiny"}))


def confident_texts(reference, candidates: list[str], minimum: int) -> dict[str, list[float]]:
    """text -> in-process scores (each text alone), for the candidates with a clear label and
    stable scores (see MIN_MARGIN, MAX_DRIFT)."""
    import random

    alone = {text: reference.classify([text])[0].scores for text in dict.fromkeys(candidates)}
    drift = dict.fromkeys(alone, 0.0)
    rng = random.Random(0)
    for _ in range(40):  # random batch mates, as the server's adaptive batches give them
        batch = rng.choices(list(alone), k=rng.randint(2, 120))
        for text, result in zip(batch, reference.classify(batch)):
            drift[text] = max(drift[text], *(abs(a - b) for a, b in zip(result.scores, alone[text])))
    chosen = {}
    for text, scores in alone.items():
        top, second = sorted(scores, reverse=True)[:2]
        if top - second >= MIN_MARGIN and drift[text] <= MAX_DRIFT:
            chosen[text] = scores
    assert len(chosen) >= minimum, f"only {len(chosen)} of {len(alone)} texts have a clear label and stable scores on the tiny model"
    return chosen


def prediction_problem(prediction: object, scores: list[float], labels: list[str], top_k: int | None) -> str | None:
    """What is wrong with one served prediction against the in-process scores, or None."""
    if not isinstance(prediction, dict) or set(prediction) != {"label", "score", "truncated", "top_k"}:
        return f"malformed prediction {prediction!r}"
    best = max(range(len(labels)), key=scores.__getitem__)
    if prediction["label"] != labels[best]:
        return f"label {prediction['label']!r}, expected {labels[best]!r}"
    if abs(prediction["score"] - scores[best]) > CROSS_BATCH_TOLERANCE:
        return f"score {prediction['score']}, expected {scores[best]:.6f}"
    ranked = prediction["top_k"]
    if top_k is None or top_k == 1:  # the list comes only with top_k > 1
        return None if ranked is None else f"top_k {ranked!r} not asked for"
    if not isinstance(ranked, list) or len(ranked) != top_k:
        return f"top_k {ranked!r}, expected {top_k} entries"
    if ranked[0] != {"label": prediction["label"], "score": prediction["score"]}:
        return f"top_k starts with {ranked[0]!r}, not the answer"
    if [r["score"] for r in ranked] != sorted((r["score"] for r in ranked), reverse=True):
        return f"top_k not by descending score: {ranked!r}"
    for item in ranked:
        if item.get("label") not in labels or len({r["label"] for r in ranked}) != top_k:
            return f"top_k {ranked!r} has unknown or repeated labels"
        if abs(item["score"] - scores[labels.index(item["label"])]) > CROSS_BATCH_TOLERANCE:
            return f"top_k entry {item!r}, expected {scores[labels.index(item['label'])]:.6f}"
    return None
