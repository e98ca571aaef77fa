"""The GPU path's HTTP side (textclf/core/remote_model.py) against a stand-in runner method that
records the calls it gets: concurrent requests reach the runner together, as one call, every request
gets its own answers back in order, a request larger than a call goes alone (the runner's own
batcher splits it), a failed call fails only the requests that were in it, and a call whose
connection broke is repeated."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from textclf.api.schemas import TextScores
from textclf.core.remote_model import RemoteModel


class StandInRunner:
    """Scores each text by its length; fails on `fail_when`, and with a broken connection `breaks` times."""

    def __init__(self, seconds: float = 0.05, fail_when: str | None = None, breaks: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.seconds, self.fail_when, self.breaks = seconds, fail_when, breaks

    async def __call__(self, texts: list[str]) -> list[TextScores]:
        self.calls.append(list(texts))
        await asyncio.sleep(self.seconds)
        if self.breaks:
            self.breaks -= 1
            raise aiohttp.ServerDisconnectedError()
        if self.fail_when in texts:
            raise RuntimeError(f"runner failed on {self.fail_when}")
        return [TextScores(scores=[float(len(text))], truncated=False) for text in texts]


def remote(runner: StandInRunner, max_texts: int = 64) -> RemoteModel:
    return RemoteModel(["x"], runner, max_texts, max_wait_s=15.0)


def lengths(results: list[TextScores]) -> list[float]:
    return [result.scores[0] for result in results]


def test_requests_queued_behind_a_running_call_share_the_next_one() -> None:
    async def scenario() -> list[list[str]]:
        runner = StandInRunner()
        model = remote(runner)
        first = asyncio.create_task(model.classify(["a"]))
        await asyncio.sleep(0.01)  # the first call is running now
        queued = [[f"b{i}", f"cc{i}"] for i in range(5)] + [["ddd"]]
        answers = await asyncio.gather(first, *(model.classify(texts) for texts in queued))
        assert [lengths(a) for a in answers] == [[1.0]] + [[float(len(t)) for t in texts] for texts in queued]
        return runner.calls

    assert asyncio.run(scenario()) == [["a"], ["b0", "cc0", "b1", "cc1", "b2", "cc2", "b3", "cc3", "b4", "cc4", "ddd"]]


def test_a_lone_request_is_sent_at_once() -> None:
    async def scenario() -> float:
        model = remote(StandInRunner(seconds=0.0))
        started = asyncio.get_running_loop().time()
        assert lengths(await model.classify(["xy"])) == [2.0]
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(scenario()) < 0.05


def test_a_request_larger_than_a_call_goes_alone() -> None:
    async def scenario() -> list[list[str]]:
        runner = StandInRunner()
        model = remote(runner, max_texts=4)
        first = asyncio.create_task(model.classify(["a"]))
        await asyncio.sleep(0.01)
        big = [f"t{i}" for i in range(7)]
        answers = await asyncio.gather(first, model.classify(["b", "c"]), model.classify(big))
        assert [lengths(a) for a in answers] == [[1.0], [1.0, 1.0], [2.0] * 7]
        return runner.calls

    assert asyncio.run(scenario()) == [["a"], ["b", "c"], [f"t{i}" for i in range(7)]]


def test_a_failed_call_fails_the_requests_in_it_and_the_next_call_still_works() -> None:
    async def scenario() -> None:
        runner = StandInRunner(fail_when="bad")
        model = remote(runner)
        first = asyncio.create_task(model.classify(["a"]))
        await asyncio.sleep(0.01)
        riders = [asyncio.create_task(model.classify(texts)) for texts in (["b"], ["bad"], ["c"])]
        assert lengths(await first) == [1.0]
        for rider in riders:  # all three rode in the call that failed
            with pytest.raises(RuntimeError, match="runner failed on bad"):
                await rider
        assert lengths(await model.classify(["d"])) == [1.0]
        assert runner.calls == [["a"], ["b", "bad", "c"], ["d"]]

    asyncio.run(scenario())


def test_a_call_whose_connection_broke_is_repeated() -> None:
    runner = StandInRunner(seconds=0.0, breaks=2)
    assert lengths(asyncio.run(remote(runner).classify(["abc"]))) == [3.0]
    assert runner.calls == [["abc"]] * 3
