"""A runner service that, told to stop, keeps answering until its callers have gone quiet.

On SIGTERM, `bentoml serve` (circus) signals the API service and its runner services at the same
moment, and uvicorn in the runner stops accepting connections at once. Requests the API service
holds but has not yet passed on (combined into its next runner call, or still being validated)
would then find no runner and get a 500. So the runner takes SIGTERM as "finish up": it goes on
serving until no call is in progress and none has arrived for `quiet_s` (the API service has
answered its last request and exited), then hands the signal to uvicorn's own graceful exit. A
second SIGTERM, or `bound_s` without quiet, ends the wait.

Installed on a BentoML service with `Service.add_asgi_middleware(DrainBeforeExit)`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[int, FrameType | None], Any]

logger = logging.getLogger(__name__)
POLL_S = 0.05


class DrainBeforeExit:
    def __init__(self, app: ASGIApp, quiet_s: float = 1.0, bound_s: float = 25.0) -> None:
        self.app = app
        self.quiet_s = quiet_s
        self.bound_s = bound_s  # below circus' 30 s graceful_timeout, after which it kills
        self.in_progress = 0
        self.last_activity = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server_exit: Handler | None = None
        self._draining = False
        self._drain: asyncio.Future | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self._loop is None:
            self._take_over_sigterm()
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self.in_progress += 1
        self.last_activity = time.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1
            self.last_activity = time.monotonic()

    def _take_over_sigterm(self) -> None:
        # The lifespan starts after uvicorn installed its handler (Server.capture_signals) and runs in
        # the main thread, the only one that may set handlers; uvicorn restores the old one on exit.
        self._loop = asyncio.get_running_loop()
        previous = signal.getsignal(signal.SIGTERM)
        if callable(previous):
            self._server_exit = previous
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        assert self._loop is not None and self._server_exit is not None
        if self._draining:  # asked twice: stop waiting
            self._server_exit(signum, frame)
            return
        self._draining = True
        # A Python signal handler runs between any two bytecodes of the loop's thread: hand over to
        # the loop the way asyncio's own signal handling does.
        self._loop.call_soon_threadsafe(self._start_drain, signum, frame)

    def _start_drain(self, signum: int, frame: FrameType | None) -> None:
        self._drain = asyncio.ensure_future(self._exit_when_quiet(signum, frame))  # held: tasks are weakly referenced

    async def _exit_when_quiet(self, signum: int, frame: FrameType | None) -> None:
        assert self._server_exit is not None
        started = time.monotonic()
        logger.info("SIGTERM: serving until no call has come for %.1f s", self.quiet_s)
        while time.monotonic() - started < self.bound_s:
            if self.in_progress == 0 and time.monotonic() - self.last_activity >= self.quiet_s:
                break
            await asyncio.sleep(POLL_S)
        self._server_exit(signum, frame)
