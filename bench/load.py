"""The load generator: a closed loop of `concurrency` asyncio workers on one aiohttp client.

aiohttp, not httpx: the load generator shares the two cores with the server, so its own CPU counts
against every server. At concurrency 32 httpx took 36-39 % of a core, aiohttp 8-12 %; at 64, httpx
took 68 % against our service (whose batched answers arrive together) and its p99 reached 6 s with
the server mostly idle, where aiohttp measured p99 1.1 s on the same server.

Each worker sends its next request as soon as its previous answer arrives. A level stops after a
fixed number of requests or at its time limit, whichever comes first (the result says which).
Request i carries text i modulo the set, so every server sees the same texts in the same order.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import aiohttp
import numpy as np
import psutil


def predict_check(answer: object) -> bool:
    """An answer to {"text": ...} from any of the servers: ours and the baselines answer alike."""
    return isinstance(answer, dict) and isinstance(answer.get("label"), str) and isinstance(answer.get("score"), float)


@dataclass
class LevelResult:
    concurrency: int
    requested: int
    sent: int
    ok: int
    errors: int
    duration_s: float  # first request sent to last answer (or error) received
    rps: float  # successful answers per second, from the first request to the last successful answer
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    time_bounded: bool  # the time limit, not the request count, ended the level
    client_cpu_s: float  # CPU time the load generator itself used: it shares the cores with the server
    error_kinds: dict[str, int] = field(default_factory=dict)
    peak_rss_mb: float | None = None  # filled in by the caller's sampler

    def to_dict(self) -> dict:
        return asdict(self)


def _percentile(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if len(values) else None


def _client(concurrency: int, timeout: float) -> aiohttp.ClientSession:
    """One kept-alive connection per worker."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout))


async def _post(client: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, bytes]:
    async with client.post(url, data=body, headers={"content-type": "application/json"}) as response:
        return response.status, await response.read()


async def _run(url: str, bodies: list[bytes], concurrency: int, requests: int, max_seconds: float, timeout: float) -> LevelResult:
    latencies: list[float] = []
    last_ok = 0.0
    errors: Counter[str] = Counter()
    next_index = 0
    me = psutil.Process()
    cpu_before = sum(me.cpu_times()[:2])
    async with _client(concurrency, timeout) as client:
        start = time.perf_counter()
        deadline = start + max_seconds

        async def worker() -> None:
            nonlocal next_index, last_ok
            while next_index < requests and time.perf_counter() < deadline:
                body = bodies[next_index % len(bodies)]
                next_index += 1
                sent = time.perf_counter()
                try:
                    status, content = await _post(client, url, body)
                    if status != 200:
                        errors[f"HTTP {status}"] += 1
                    elif not predict_check(json.loads(content)):
                        errors["bad answer"] += 1
                    else:
                        last_ok = time.perf_counter()
                        latencies.append(last_ok - sent)
                except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                    errors[type(error).__name__] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        duration = time.perf_counter() - start
    cpu = sum(me.cpu_times()[:2]) - cpu_before
    ms = np.array(latencies) * 1000
    return LevelResult(
        concurrency=concurrency,
        requested=requests,
        sent=next_index,
        ok=len(latencies),
        errors=sum(errors.values()),
        duration_s=round(duration, 3),
        # a request stuck until its timeout must not stretch the window of the answers that came back
        rps=round(len(latencies) / (last_ok - start), 2) if latencies else 0.0,
        p50_ms=_percentile(ms, 50),
        p95_ms=_percentile(ms, 95),
        p99_ms=_percentile(ms, 99),
        mean_ms=round(float(ms.mean()), 3) if len(ms) else None,
        time_bounded=next_index < requests,
        client_cpu_s=round(cpu, 2),
        error_kinds=dict(errors),
    )


def run_level(url: str, texts: list[str], concurrency: int, requests: int, max_seconds: float, timeout: float = 60.0) -> LevelResult:
    """One closed-loop level of {"text": ...} requests against `url`; bodies are encoded before the clock starts."""
    bodies = [json.dumps({"text": text}, ensure_ascii=False).encode() for text in texts]
    return asyncio.run(_run(url, bodies, concurrency, requests, max_seconds, timeout))
