"""Calling a runner service (the GPU runner) from the HTTP service: calls repeated around a BentoML 1.4
client flaw."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import aiohttp

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
