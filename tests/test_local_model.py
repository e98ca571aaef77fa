"""The in-process model (textclf/core/local_model.py): not ready until its load has run in the model
thread, requests made meanwhile wait behind the load, and a failed load or a bad model card is
reported as ModelNotReady with the reason, never a crash."""

from __future__ import annotations

import asyncio
import threading

import pytest

from textclf.api.errors import ModelNotReady
from textclf.api.schemas import TextScores
from textclf.core.local_model import LocalModel


class StandIn:
    """A loaded classifier: one score per label."""

    labels = ["a", "b"]

    def classify(self, texts: list[str]) -> list[TextScores]:
        return [TextScores(scores=[0.25, 0.75], truncated=len(t) > 5) for t in texts]


def test_requests_during_the_load_wait_for_it_and_readiness_follows_the_load() -> None:
    release = threading.Event()

    def load() -> StandIn:
        release.wait(timeout=10)
        return StandIn()

    model = LocalModel("slow", lambda: ["a", "b"], load, max_texts=8, max_wait_s=30)

    async def main() -> list[TextScores]:
        assert not model.ready and model.labels() == ["a", "b"]  # the card is read at start, the load is not done
        pending = asyncio.create_task(model.classify(["short", "longer text"]))
        await asyncio.sleep(0.1)
        assert not pending.done() and not model.ready
        release.set()
        return await pending

    results = asyncio.run(main())
    assert model.ready and [r.truncated for r in results] == [False, True]
    model.close()


def test_a_failed_load_is_not_ready_and_answers_with_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    def load() -> StandIn:
        raise ValueError("the graph's output width is 4 but its metadata lists 5 labels")

    model = LocalModel("broken", lambda: ["a", "b"], load, max_texts=8, max_wait_s=30)
    with pytest.raises(ModelNotReady, match="broken failed to load: the graph's output width is 4"):
        asyncio.run(model.classify(["x"]))
    assert not model.ready
    assert "model broken failed to load, the service stays not ready" in caplog.text
    model.close()


def test_a_bad_model_card_is_reported_on_every_request_not_raised_at_start() -> None:
    def bad_card() -> list[str]:
        raise ValueError("bad metadata: key 'labels' is missing")

    def load() -> StandIn:
        raise ValueError("bad metadata: key 'labels' is missing")

    model = LocalModel("nolabels", bad_card, load, max_texts=8, max_wait_s=30)
    with pytest.raises(ModelNotReady, match="nolabels cannot serve: bad metadata: key 'labels' is missing"):
        model.labels()
    model.close()
