"""Soak: a few thousand requests at concurrency 64 against a real `bentoml serve` of the tiny model,
two thirds valid (single texts and batches, with and without top_k), one third invalid of many
kinds. Every valid request must get 200 and the in-process classifier's answer, every invalid one a
4xx with a JSON error body; nothing else (no 5xx, no dropped connection), within a time bound.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SENTENCES, TINY_LABELS, start_server, stop_server
from tests.figures import record
from tests.http_load import (
    Connection,
    Failure,
    Reply,
    RssSampler,
    confident_texts,
    mb,
    percentile,
    prediction_problem,
    tiny_reference,
    tree_rss,
)

pytestmark = pytest.mark.integration

LABELS = list(TINY_LABELS)
REQUESTS = 3000
CONCURRENCY = 64
TIME_BOUND = 120.0
MAX_TEXT_CHARS = 2000  # the server's limits here: small, so that breaking them is cheap
MAX_BATCH_TEXTS = 8

# (kind, request body): JSON payloads, or raw bytes sent as application/json.
INVALID = [
    ("empty-text", {"text": ""}),
    ("whitespace-text", {"text": "  \n\t "}),
    ("text-over-char-limit", {"text": "a" * (MAX_TEXT_CHARS + 1)}),
    ("batch-over-limit", {"texts": ["hello there"] * (MAX_BATCH_TEXTS + 1)}),
    ("empty-batch", {"texts": []}),
    ("blank-text-in-batch", {"texts": ["hello there", " "]}),
    ("both-text-and-texts", {"text": "hello", "texts": ["hello"]}),
    ("neither", {}),
    ("text-number", {"text": 42}),
    ("texts-string", {"texts": "hello"}),
    ("extra-field", {"text": "hello", "lang": "en"}),
    ("top_k-zero", {"text": "hello", "top_k": 0}),
    ("top_k-above-label-count", {"texts": ["hello", "bonjour"], "top_k": len(LABELS) + 1}),
    ("top_k-string", {"text": "hello", "top_k": "2"}),
    ("body-json-list", ["hello"]),
    ("not-json", b"hello, this is not JSON"),
    ("truncated-json", b'{"text": "hello'),
    ("empty-body", b""),
]


@dataclass
class Planned:
    kind: str  # "single", "batch" or an INVALID kind
    body: bytes
    texts: list[str]  # valid requests only
    top_k: int | None = None

    @property
    def valid(self) -> bool:
        return self.kind in ("single", "batch")


def plan(texts: list[str], n: int, seed: int = 0) -> list[Planned]:
    rng = random.Random(seed)
    planned = []
    for i in range(n):
        top_k = rng.choice([None, None, 1, 2, len(LABELS)])
        if i % 3 == 2:
            kind, payload = INVALID[(i // 3) % len(INVALID)]
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            planned.append(Planned(kind, body, []))
        elif rng.random() < 0.5:
            text = rng.choice(texts)
            payload = {"text": text} | ({"top_k": top_k} if top_k else {})
            planned.append(Planned("single", json.dumps(payload).encode(), [text], top_k))
        else:
            batch = rng.sample(texts, rng.randint(2, MAX_BATCH_TEXTS))
            payload = {"texts": batch} | ({"top_k": top_k} if top_k else {})
            planned.append(Planned("batch", json.dumps(payload).encode(), batch, top_k))
    return planned


def problem(request: Planned, reply: Reply | Failure, expected: dict[str, list[float]]) -> str | None:
    """What is wrong with the answer to one request, or None."""
    if isinstance(reply, Failure):
        return f"no answer: {reply.error}"
    if not request.valid:
        if not 400 <= reply.status < 500:
            return f"status {reply.status}: {reply.body[:200]!r}"
        if not reply.headers.get("content-type", "").startswith("application/json"):
            return f"content-type {reply.headers.get('content-type')!r}: {reply.body[:200]!r}"
        try:
            body = reply.json()
        except ValueError:
            return f"body is not JSON: {reply.body[:200]!r}"
        return None if isinstance(body, dict) and isinstance(body.get("error"), str) else f"no error field: {body!r}"
    if reply.status != 200:
        return f"status {reply.status}: {reply.body[:200]!r}"
    answer = reply.json()
    predictions = [answer] if request.kind == "single" else answer
    if not isinstance(predictions, list) or len(predictions) != len(request.texts):
        return f"{len(request.texts)} texts, answer {answer!r}"
    for text, prediction in zip(request.texts, predictions):
        if found := prediction_problem(prediction, expected[text], LABELS, request.top_k):
            return f"{text[:30]!r}: {found}"
    return None


@pytest.fixture(scope="module")
def expected(tiny_export) -> dict[str, list[float]]:
    """Sentences of the 4 languages plus a few texts over the model's max length -> in-process scores."""
    lines = {label: SENTENCES.joinpath(f"{label}.txt").read_text(encoding="utf-8").splitlines() for label in TINY_LABELS}
    candidates = [lines[label][i * 3] for i in range(15) for label in TINY_LABELS]
    candidates += [" ".join(lines[label][:40])[:MAX_TEXT_CHARS] for label in TINY_LABELS]
    return confident_texts(tiny_reference(tiny_export), candidates, minimum=20)


def test_soak_mixed_valid_and_invalid_requests_at_concurrency_64(expected: dict[str, list[float]], tmp_path: Path) -> None:
    env = {
        "TEXTCLF_MODEL_NAME": "tiny",
        "TEXTCLF_MAX_TEXT_CHARS": str(MAX_TEXT_CHARS),
        "TEXTCLF_MAX_BATCH_TEXTS": str(MAX_BATCH_TEXTS),
    }
    server = start_server("service:TextClassifier", env, tmp_path / "serve.log")
    try:
        requests = plan(list(expected), REQUESTS)
        idle = tree_rss(server.process.pid)

        async def soak() -> list[Reply | Failure]:
            replies: list[Reply | Failure | None] = [None] * len(requests)
            cursor = iter(range(len(requests)))

            async def worker() -> None:
                connection = Connection(server.url)
                for i in cursor:  # shared: each request is taken by exactly one worker
                    replies[i] = await connection.post("/predict", requests[i].body)
                connection.close()

            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), TIME_BOUND)
            return replies  # type: ignore[return-value]

        started = time.monotonic()
        with RssSampler(server.process.pid, interval=0.5) as rss:
            try:
                replies = asyncio.run(soak())
            except asyncio.TimeoutError:
                pytest.fail(f"{REQUESTS} requests at concurrency {CONCURRENCY} took more than {TIME_BOUND} s")
        elapsed = time.monotonic() - started

        problems = [(request.kind, found) for request, reply in zip(requests, replies) if (found := problem(request, reply, expected))]
        valid = [request.valid for request in requests]
        latency = [reply.latency for reply in replies]
        texts_classified = sum(len(request.texts) for request in requests)
        statuses = Counter(reply.status if isinstance(reply, Reply) else "no answer" for reply in replies)
        record("soak: requests sent (valid / invalid)", f"{len(requests)} ({sum(valid)} / {len(requests) - sum(valid)}, {len(INVALID)} invalid kinds)")
        record("soak: statuses", dict(statuses))
        record("soak: errors seen (unexpected status, answer or connection)", len(problems))
        record("soak: throughput", f"{len(requests) / elapsed:.0f} requests/s, {texts_classified / elapsed:.0f} texts/s over {elapsed:.1f} s")
        record("soak: latency (all requests)", f"p50 {percentile(latency, 50) * 1000:.0f} ms, p99 {percentile(latency, 99) * 1000:.0f} ms")
        record("soak: server RSS idle -> peak", f"{mb(idle)} -> {mb(rss.peak)}")
        if problems:
            record("soak: first errors", problems[:5])

        assert not problems, f"{len(problems)} bad answers, e.g. {problems[:5]}"
        assert rss.peak < 1.5 * idle, f"RSS {mb(idle)} idle -> {mb(rss.peak)}"
    finally:
        stop_server(server)
