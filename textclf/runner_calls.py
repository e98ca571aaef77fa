"""Calling a runner service from the API service, around a BentoML 1.4 client flaw."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import aiohttp

P = ParamSpec("P")
R = TypeVar("R")


async def call_runner(method: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
    """Retry once when the connection to the runner breaks.

    BentoML 1.4.39's dependency client may reuse a keep-alive connection the runner already closed
    (bentoml/BentoML#4971, fix proposed in #5698): a connection error. A runner worker killed (and
    restarted by BentoML) between sending an answer's headers and its body: a payload error.
    Runner methods are pure, so repeating the call is safe.
    """
    try:
        return await method(*args, **kwargs)
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
        return await method(*args, **kwargs)
