"""The in-process batcher (textclf/core/batcher.py) on a stand-in model that records its runs."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from textclf.api.errors import Overloaded
from textclf.core.batcher import Batcher, in_thread

RUN_S = 0.2  # each run of the stand-in model: long enough that "during a run" holds on a busy machine


class Model:
    """Doubles each text's length; records the texts of every run, in the model thread."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.runs: list[list[str]] = []
        self.threads: set[str] = set()
        self.fail_on = fail_on

    def __call__(self, texts: list[str]) -> list[int]:
        self.threads.add(threading.current_thread().name)
        time.sleep(RUN_S)
        self.runs.append(list(texts))
        if self.fail_on in texts:
            raise ValueError(f"cannot run {self.fail_on!r}")
        return [2 * len(t) for t in texts]


def batcher(model: Model, max_texts: int = 64, max_wait_s: float = 10.0, observe=lambda n: None) -> Batcher[int]:
    return Batcher(in_thread(ThreadPoolExecutor(1, thread_name_prefix="model"), model), max_texts, max_wait_s, observe)


def test_a_lone_request_runs_at_once_in_the_model_thread() -> None:
    model = Model()

    async def main() -> tuple[list[int], float]:
        started = time.monotonic()
        result = await batcher(model)(["ab", "abc"])
        return result, time.monotonic() - started

    result, elapsed = asyncio.run(main())
    assert result == [4, 6] and model.runs == [["ab", "abc"]]
    assert elapsed < RUN_S + 0.1, f"waited {elapsed - RUN_S:.3f} s beyond the run"
    assert model.threads == {"model_0"}


def test_requests_queued_during_a_run_share_the_next_run_and_get_their_own_results() -> None:
    model = Model()
    observed: list[int] = []

    async def main() -> list[list[int]]:
        b = batcher(model, observe=observed.append)
        first = asyncio.create_task(b(["a"]))
        await asyncio.sleep(RUN_S / 3)  # the first run is under way
        rest = [asyncio.create_task(b(["x" * i, "y" * i])) for i in range(1, 6)]
        return [await first, *[await task for task in rest]]

    results = asyncio.run(main())
    assert model.runs == [["a"], ["x", "y", "xx", "yy", "xxx", "yyy", "xxxx", "yyyy", "xxxxx", "yyyyy"]]
    assert results == [[2], *[[2 * i, 2 * i] for i in range(1, 6)]]
    assert observed == [1, 10]


def test_a_run_takes_whole_requests_up_to_max_texts_and_a_larger_request_alone() -> None:
    model = Model()

    async def main() -> None:
        b = batcher(model, max_texts=4)
        first = asyncio.create_task(b(["warm"]))
        await asyncio.sleep(RUN_S / 3)
        queued = [asyncio.create_task(b(texts)) for texts in (["a", "b"], ["c", "d"], ["e"], ["f"] * 6, ["g"])]
        await asyncio.gather(first, *queued)

    asyncio.run(main())
    assert [len(run) for run in model.runs] == [1, 4, 1, 6, 1]


def test_a_request_past_the_deadline_gets_overloaded_and_the_others_still_run() -> None:
    model = Model()

    async def main() -> list[object]:
        b = batcher(model, max_wait_s=RUN_S / 2)
        first = asyncio.create_task(b(["slow"]))  # runs at once: it never waited
        await asyncio.sleep(0.001)
        late = asyncio.create_task(b(["late"]))  # waits a whole run, past the deadline
        results = await asyncio.gather(first, late, return_exceptions=True)
        return [*results, await b(["fresh"])]

    first, late, fresh = asyncio.run(main())
    assert first == [8] and fresh == [10]
    assert isinstance(late, Overloaded) and "waited over" in str(late)
    assert ["late"] not in model.runs


def test_a_request_whose_caller_went_away_is_not_run() -> None:
    model = Model()

    async def main() -> None:
        b = batcher(model)
        first = asyncio.create_task(b(["a"]))
        await asyncio.sleep(RUN_S / 3)
        gone = asyncio.create_task(b(["gone"]))
        kept = asyncio.create_task(b(["kept"]))
        await asyncio.sleep(0)
        gone.cancel()
        assert await kept == [8]
        await first

    asyncio.run(main())
    assert model.runs == [["a"], ["kept"]]


def test_a_failing_run_fails_its_callers_only_and_the_batcher_goes_on() -> None:
    model = Model(fail_on="bad")

    async def main() -> tuple[list[object], list[int]]:
        b = batcher(model)
        first = asyncio.create_task(b(["a"]))
        await asyncio.sleep(RUN_S / 3)
        together = await asyncio.gather(b(["bad"]), b(["with it"]), return_exceptions=True)
        await first
        return together, await b(["after"])

    together, after = asyncio.run(main())
    assert all(isinstance(e, ValueError) and "cannot run 'bad'" in str(e) for e in together)
    assert after == [10]


@pytest.mark.parametrize("concurrency", [1, 32])
def test_every_request_of_a_burst_gets_its_own_answers(concurrency: int) -> None:
    model = Model()

    async def main() -> list[list[int]]:
        b = batcher(model, max_texts=16)
        return await asyncio.gather(*(b(["x" * i] * (1 + i % 3)) for i in range(concurrency)))

    results = asyncio.run(main())
    assert results == [[2 * i] * (1 + i % 3) for i in range(concurrency)]
    assert all(len(run) <= 16 for run in model.runs)
    assert sum(map(len, model.runs)) == sum(1 + i % 3 for i in range(concurrency))
