"""Adaptive batching, the same for every model: the requests queued while a run is in progress go
into the next run together, and a request that finds no run in progress runs at once.

One run at a time: the in-process CPU model in its worker thread (textclf/core/local_model.py), or
one call to the GPU runner service (textclf/core/remote_model.py), whose every call costs the
runner ~2 ms of CPU whatever its size. Nothing waits for more requests to arrive: under load
batches form by themselves, from what queued during a run (16 texts per run at concurrency 32 in
the benchmark), and a wait would only delay a request that comes alone (README "Speed").
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Generic, TypeVar

from textclf.api.errors import Overloaded

R = TypeVar("R")


@dataclass
class _Request(Generic[R]):
    texts: list[str]
    future: asyncio.Future[list[R]]
    queued_at: float = field(default_factory=time.monotonic)


class Batcher(Generic[R]):
    """`await batcher(texts)` gives `await run(texts)`'s results, run with the texts of the other
    requests queued at the time.

    A run takes whole requests, oldest first, up to `max_texts` texts (a larger request runs alone).
    A request still queued `max_wait_s` after it arrived is answered with Overloaded (503) instead
    of being run late; `observe(n)` is told the text count of every run (the metrics histogram).
    """

    def __init__(
        self, run: Callable[[list[str]], Awaitable[Sequence[R]]], max_texts: int, max_wait_s: float,
        observe: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._run = run
        self._max_texts, self._max_wait_s, self._observe = max_texts, max_wait_s, observe
        self._queue: deque[_Request[R]] = deque()
        self._worker: asyncio.Task[None] | None = None

    async def __call__(self, texts: list[str]) -> list[R]:
        request = _Request(texts, asyncio.get_running_loop().create_future())
        self._queue.append(request)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work())
        return await request.future

    def _take(self) -> list[_Request[R]]:
        """The next run's requests; requests whose caller went away are dropped, expired ones answered."""
        taken: list[_Request[R]] = []
        count, now = 0, time.monotonic()
        while self._queue and (not taken or count + len(self._queue[0].texts) <= self._max_texts):
            request = self._queue.popleft()
            if request.future.done():  # cancelled: the client disconnected
                continue
            if now - request.queued_at > self._max_wait_s:
                request.future.set_exception(Overloaded(f"the request waited over {self._max_wait_s:g} s for the model"))
                continue
            taken.append(request)
            count += len(request.texts)
        return taken

    async def _work(self) -> None:
        while requests := self._take():
            texts = [text for request in requests for text in request.texts]
            try:
                results = await self._run(texts)
            except Exception as error:  # every caller of this run gets the error; the batcher goes on
                for request in requests:
                    if not request.future.done():
                        request.future.set_exception(error)
                continue
            self._observe(len(texts))
            ends = accumulate(len(request.texts) for request in requests)
            for request, end in zip(requests, ends, strict=True):
                if not request.future.done():
                    request.future.set_result(list(results[end - len(request.texts) : end]))


def in_thread(executor: Executor, run: Callable[[list[str]], Sequence[R]]) -> Callable[[list[str]], Awaitable[Sequence[R]]]:
    """`run` made awaitable in `executor`: onnxruntime and tokenizers release the GIL, so the event
    loop goes on parsing and answering requests while the model runs."""

    async def run_in_thread(texts: list[str]) -> Sequence[R]:
        return await asyncio.get_running_loop().run_in_executor(executor, run, texts)

    return run_in_thread
