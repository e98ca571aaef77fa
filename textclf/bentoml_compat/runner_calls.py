"""Calling a runner service (the GPU runner) from the HTTP service: concurrent requests combined into
one call with BentoML's own batcher, and calls repeated around a BentoML 1.4 client flaw."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from itertools import accumulate
from typing import Generic, ParamSpec, TypeVar

import aiohttp
from bentoml._internal.marshal.dispatcher import CorkDispatcher

from textclf.api.errors import Overloaded

P = ParamSpec("P")
R = TypeVar("R")


ATTEMPTS = 3


async def call_runner(method: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
    """Repeat a call whose connection to the runner broke, up to ATTEMPTS times in all.

    BentoML 1.4.39's dependency client keeps idle connections pooled for 15 s (aiohttp's default)
    while the runner's uvicorn closes them after 5 s, so a call may be written to a connection the
    runner is closing (bentoml/BentoML#4971, fix proposed in #5698); after a burst, many pooled
    connections close at once and two calls in a row can hit one (seen: two Broken pipe errors in a
    row, a 500). A runner worker killed (and restarted by BentoML) between sending an answer's
    headers and its body: a payload error. Each failed attempt drops its broken connection and
    costs milliseconds; runner methods are pure, so repeating the call is safe.
    """
    for _ in range(ATTEMPTS - 1):
        try:
            return await method(*args, **kwargs)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
            continue
    return await method(*args, **kwargs)


def _overloaded() -> None:
    raise Overloaded("the request waited past the batch deadline for the runner")


class CombinedCalls(Generic[R]):
    """Requests that reach an HTTP worker while its runner call is running go to the runner together,
    as one call with all their texts, when that call returns.

    A runner call costs BentoML's HTTP handling in the runner process about the same CPU whatever its
    size (~2 ms: parsing, middleware, pickling, its batcher's bookkeeping), and on 2 cores that CPU is
    taken from the model. The runner's own batcher still groups calls; this makes them fewer. It is
    BentoML's batcher (CorkDispatcher) on the calling side: one call in flight at a time, the texts of
    the queued requests up to `max_texts` in the next (a request with more is split across calls),
    a request queued past `max_latency_ms` answered 503, and, with textclf.bentoml_compat.batch_dispatch's patch in
    (service.py applies it), never a wait for more requests.
    """

    def __init__(self, call: Callable[[list[str]], Awaitable[list[R]]], max_texts: int, max_latency_ms: int) -> None:
        self._call = call
        dispatcher = CorkDispatcher(max_latency_ms, max_texts, fallback=_overloaded, get_batch_size=len)
        self._dispatch = dispatcher(self._call_combined)

    async def _call_combined(self, requests: Sequence[list[str]]) -> list[list[R]]:
        results = await self._call([text for texts in requests for text in texts])
        ends = accumulate(len(texts) for texts in requests)
        return [results[end - len(texts) : end] for texts, end in zip(requests, ends)]

    async def __call__(self, texts: list[str]) -> list[R]:
        return await self._dispatch(texts)
