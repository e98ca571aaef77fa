"""DrainBeforeExit (textclf/bentoml_compat/shutdown_drain.py, on the GPU runner) with a real SIGTERM
sent to this process: the server's own exit handler (here a recorder standing in for uvicorn's) is
called only once calls have stopped coming for the quiet time, at once on a second SIGTERM, and at
the bound if calls never stop. The whole chain under `bentoml serve` is tested in test_resilience's
SIGTERM drain test, on the GPU service run on the CPU."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import pytest

from textclf.bentoml_compat.shutdown_drain import DrainBeforeExit

QUIET_S = 0.5


async def ok_app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        return
    await asyncio.sleep(0.01)


class ExitRecorder:
    """Stands in for uvicorn's Server.handle_exit: records when it was called."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, signum, frame) -> None:
        self.calls.append(time.monotonic())


@pytest.fixture
def server_exit() -> Iterator[ExitRecorder]:
    recorder = ExitRecorder()
    original = signal.signal(signal.SIGTERM, recorder)
    try:
        yield recorder
    finally:
        signal.signal(signal.SIGTERM, original)


async def started(middleware: DrainBeforeExit) -> None:
    await middleware({"type": "lifespan"}, None, None)


async def call(middleware: DrainBeforeExit) -> None:
    await middleware({"type": "http"}, None, None)


async def wait_for(recorder: ExitRecorder, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not recorder.calls and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def test_exit_waits_until_calls_stop_coming_for_the_quiet_time(server_exit: ExitRecorder) -> None:
    async def scenario() -> tuple[float, float]:
        middleware = DrainBeforeExit(ok_app, quiet_s=QUIET_S, bound_s=30)
        await started(middleware)
        os.kill(os.getpid(), signal.SIGTERM)
        # Calls keep coming every 0.2 s (less than the quiet time) for 1.5 s: the runner keeps serving.
        for _ in range(8):
            await call(middleware)
            await asyncio.sleep(0.2)
        assert server_exit.calls == [], "the server was told to exit while calls were still coming"
        last_call = time.monotonic()
        await wait_for(server_exit, 5)
        return last_call, server_exit.calls[0]

    last_call, exited = asyncio.run(scenario())
    assert len(server_exit.calls) == 1
    assert QUIET_S - 0.2 <= exited - last_call <= QUIET_S + 0.5, exited - last_call


def test_a_call_in_progress_holds_the_exit(server_exit: ExitRecorder) -> None:
    async def slow_app(scope, receive, send) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(1.5)

    async def scenario() -> float:
        middleware = DrainBeforeExit(slow_app, quiet_s=0.2, bound_s=30)
        await started(middleware)
        running = asyncio.create_task(call(middleware))
        await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)
        await running
        assert server_exit.calls == [], "the server was told to exit during a call"
        finished = time.monotonic()
        await wait_for(server_exit, 5)
        return server_exit.calls[0] - finished

    assert 0.1 <= asyncio.run(scenario()) <= 0.7


def test_a_second_sigterm_exits_at_once(server_exit: ExitRecorder) -> None:
    async def scenario() -> float:
        middleware = DrainBeforeExit(ok_app, quiet_s=10, bound_s=30)
        await started(middleware)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.1)
        assert server_exit.calls == []
        second = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)
        await wait_for(server_exit, 5)
        return server_exit.calls[0] - second

    assert asyncio.run(scenario()) < 0.5


def test_calls_that_never_stop_end_the_wait_at_the_bound(server_exit: ExitRecorder) -> None:
    async def scenario() -> float:
        middleware = DrainBeforeExit(ok_app, quiet_s=QUIET_S, bound_s=1.0)
        await started(middleware)
        signalled = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)
        while not server_exit.calls and time.monotonic() - signalled < 5:
            await call(middleware)
            await asyncio.sleep(0.05)
        return server_exit.calls[0] - signalled

    assert 0.9 <= asyncio.run(scenario()) <= 1.6
