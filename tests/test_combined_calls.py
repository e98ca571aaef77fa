"""Combining concurrent requests into one runner call (textclf.bentoml_compat.runner_calls.CombinedCalls), against a
stand-in runner call that records what it was sent: the texts of requests queued behind a running
call go in the next call together, every request gets its own answers back in order, a request with
more texts than a call may carry is split and reassembled, and a failed call fails only the requests
that were in it."""

from __future__ import annotations

import asyncio

import pytest

from textclf.bentoml_compat.batch_dispatch import dispatch_without_waiting
from textclf.bentoml_compat.runner_calls import CombinedCalls


class StandInRunner:
    def __init__(self, seconds: float = 0.05, fail_when: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.seconds, self.fail_when = seconds, fail_when

    async def __call__(self, texts: list[str]) -> list[str]:
        self.calls.append(list(texts))
        await asyncio.sleep(self.seconds)
        if self.fail_when in texts:
            raise RuntimeError(f"runner failed on {self.fail_when}")
        return [text.upper() for text in texts]


def combined(runner: StandInRunner, max_texts: int = 64) -> CombinedCalls[str]:
    dispatch_without_waiting()  # as service.py does: a lone request is sent at once
    return CombinedCalls(runner, max_texts=max_texts, max_latency_ms=15_000)


def test_requests_queued_behind_a_running_call_share_the_next_one() -> None:
    async def scenario() -> list[list[str]]:
        runner = StandInRunner()
        calls = combined(runner)
        first = asyncio.create_task(calls(["a"]))
        await asyncio.sleep(0.01)  # the first call is running now
        queued = [[f"b{i}", f"c{i}"] for i in range(5)] + [["d"]]
        answers = await asyncio.gather(first, *(calls(texts) for texts in queued))
        assert answers == [["A"]] + [[t.upper() for t in texts] for texts in queued]
        return runner.calls

    assert asyncio.run(scenario()) == [["a"], ["b0", "c0", "b1", "c1", "b2", "c2", "b3", "c3", "b4", "c4", "d"]]


def test_a_lone_request_is_sent_at_once() -> None:
    async def scenario() -> float:
        calls = combined(StandInRunner(seconds=0.0))
        for i in range(20):  # past BentoML's batcher training, which may hold a request for a few more
            await calls([str(i)])
        started = asyncio.get_running_loop().time()
        assert await calls(["x"]) == ["X"]
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(scenario()) < 0.05


def test_a_request_with_more_texts_than_a_call_carries_is_split_and_reassembled() -> None:
    async def scenario() -> list[list[str]]:
        runner = StandInRunner()
        calls = combined(runner, max_texts=4)
        first = asyncio.create_task(calls(["a"]))
        await asyncio.sleep(0.01)
        big = [f"t{i}" for i in range(7)]
        answers = await asyncio.gather(first, calls(["b", "c"]), calls(big))
        assert answers == [["A"], ["B", "C"], [t.upper() for t in big]]
        return runner.calls

    sent = asyncio.run(scenario())
    assert all(len(call) <= 4 for call in sent), sent
    assert [t for call in sent for t in call] == ["a", "b", "c"] + [f"t{i}" for i in range(7)]


def test_a_failed_call_fails_the_requests_in_it_and_the_next_call_still_works() -> None:
    async def scenario() -> None:
        runner = StandInRunner(fail_when="bad")
        calls = combined(runner)
        first = asyncio.create_task(calls(["a"]))
        await asyncio.sleep(0.01)
        riders = [asyncio.create_task(calls(texts)) for texts in (["b"], ["bad"], ["c"])]
        assert await first == ["A"]
        for rider in riders:  # all three rode in the call that failed
            with pytest.raises(RuntimeError, match="runner failed on bad"):
                await rider
        assert await calls(["d"]) == ["D"]
        assert runner.calls == [["a"], ["b", "bad", "c"], ["d"]]

    asyncio.run(scenario())
