"""BentoML's client for calls between services (the GPU HTTP service calling its runner) under load.

BentoML 1.4.39's `SessionManager` (`_bentoml_impl/client/proxy2.py`) by default replaces its aiohttp
session every 100 requests and closes the old one at once, with requests still in flight on it. A
request whose answer headers had arrived but not its body then never completes (aiohttp's
`ResponseHandler.close()` drops the body reader before `connection_lost` could fail it): the API
request waits for the 30 s traffic timeout and answers 504; others fail with
RuntimeError("Connection closed.") (a 500). RUNNER_CONNECTION (textclf/bentoml_compat/service_config.py)
sets `runner_connection` so that the session is never replaced.

Here a stub runner on a Unix socket sends headers and body apart, as uvicorn does, and many
concurrent calls go through a SessionManager configured as the runner services configure it and the
project's `call_runner`: every call must complete, none may hang. (With BentoML's defaults, 100 and
300 s, this stub saw 56 hangs and 4 RuntimeErrors in 2,000 calls.) And a runner worker killed between
its answer's headers and body (seen once in the SIGKILL test) fails the call with
ClientPayloadError: `call_runner` must retry it.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections import Counter
from pathlib import Path

from aiohttp import web

from textclf.bentoml_compat.runner_calls import call_runner
from textclf.bentoml_compat.service_config import RUNNER_CONNECTION

CALLS = 2000
CONCURRENCY = 64
HANG = 3.0  # a call still running after this is stuck (the stub answers within ~60 ms)


async def stub_runner(request: web.Request) -> web.StreamResponse:
    await request.read()
    await asyncio.sleep(random.uniform(0.0, 0.05))
    response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "131"})
    await response.prepare(request)  # the headers first ...
    await asyncio.sleep(random.uniform(0.0, 0.005))
    await response.write(b"x" * 131)  # ... the body apart, as uvicorn sends them
    await response.write_eof()
    return response


async def hammer(socket_path: str) -> Counter[str]:
    from _bentoml_impl.client.proxy2 import SessionManager

    app = web.Application()
    app.router.add_post("/classify", stub_runner)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.UnixSite(runner, socket_path).start()
    sessions = SessionManager(f"file://{socket_path}", timeout=30, headers={}, **RUNNER_CONNECTION["runner_connection"])
    outcomes: Counter[str] = Counter()
    calls = iter(range(CALLS))

    async def one_call() -> bytes:
        session = await sessions.get_session()
        response = await session.post("/classify", data=b"y" * random.randint(50, 2000))
        return await response.read()

    async def worker() -> None:
        for _ in calls:
            try:
                await asyncio.wait_for(call_runner(one_call), HANG)
                outcomes["ok"] += 1
            except asyncio.TimeoutError:
                outcomes["hung"] += 1
            except Exception as error:  # noqa: BLE001 - every failure kind is counted and reported
                outcomes[f"{type(error).__name__}: {error}"] += 1

    try:
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    finally:
        await sessions.close()
        await runner.cleanup()
    return outcomes


def test_calls_to_the_runner_neither_hang_nor_fail_when_the_client_renews_its_session() -> None:
    random.seed(0)
    with tempfile.TemporaryDirectory() as directory:
        outcomes = asyncio.run(hammer(str(Path(directory) / "runner.sock")))
    assert outcomes == {"ok": CALLS}, dict(outcomes)


async def cut_answers(socket_path: str, calls: int) -> Counter[str]:
    """A runner that dies mid-answer on every other request: headers sent, then the connection cut
    (what a runner worker killed between its answer's headers and body looks like)."""
    from _bentoml_impl.client.proxy2 import SessionManager

    served = Counter[str]()

    async def dying_runner(request: web.Request) -> web.StreamResponse:
        await request.read()
        served["requests"] += 1
        response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "131"})
        await response.prepare(request)
        if served["requests"] % 2:
            assert request.transport is not None
            request.transport.abort()
            return response
        await response.write(b"x" * 131)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/classify", dying_runner)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.UnixSite(runner, socket_path).start()
    sessions = SessionManager(f"file://{socket_path}", timeout=30, headers={})
    outcomes: Counter[str] = Counter()

    async def one_call() -> bytes:
        session = await sessions.get_session()
        response = await session.post("/classify", data=b"y" * 100)
        return await response.read()

    try:
        for _ in range(calls):  # one at a time: each call's first attempt is cut, its retry served
            try:
                await asyncio.wait_for(call_runner(one_call), HANG)
                outcomes["ok"] += 1
            except asyncio.TimeoutError:
                outcomes["hung"] += 1
            except Exception as error:  # noqa: BLE001
                outcomes[f"{type(error).__name__}: {error}"] += 1
    finally:
        await sessions.close()
        await runner.cleanup()
    return outcomes


def test_a_runner_answer_cut_after_its_headers_is_retried() -> None:
    with tempfile.TemporaryDirectory() as directory:
        outcomes = asyncio.run(cut_answers(str(Path(directory) / "runner.sock"), calls=10))
    assert outcomes == {"ok": 10}, dict(outcomes)


def test_two_broken_connections_in_a_row_are_retried_and_a_third_is_not() -> None:
    """After a burst many pooled connections close at once: two calls in a row may hit one."""
    import aiohttp

    from textclf.bentoml_compat.runner_calls import ATTEMPTS

    def flaky(failures: int):
        calls = {"n": 0}

        async def method(texts: list[str]) -> list[str]:
            calls["n"] += 1
            if calls["n"] <= failures:
                raise aiohttp.ClientOSError(32, "Broken pipe")
            return texts

        return method, calls

    method, calls = flaky(ATTEMPTS - 1)
    assert asyncio.run(call_runner(method, ["a"])) == ["a"] and calls["n"] == ATTEMPTS
    method, calls = flaky(ATTEMPTS)
    try:
        asyncio.run(call_runner(method, ["a"]))
    except aiohttp.ClientOSError:
        assert calls["n"] == ATTEMPTS
    else:
        raise AssertionError("a runner that never answers must fail the call")
