"""The GPU runner's batcher (BentoML's, patched): after a burst has taught BentoML's dispatcher a long average wait, a lone
request is still dispatched at once, and requests queued behind a running batch still share one."""

from __future__ import annotations

import asyncio
import time

from bentoml._internal.marshal.dispatcher import CorkDispatcher

from textclf.bentoml_compat import batch_dispatch
from textclf.bentoml_compat.batch_dispatch import dispatch_without_waiting

# service.py may have patched it already in this test session: keep BentoML's own for the control.
ORIGINAL_REFRESH = batch_dispatch.BENTOML_REFRESH

BURST_WAIT = 0.5  # the average queueing time a c=32 burst leaves behind (measured: ~0.2-0.6 s)


async def lone_request_latency(patched: bool) -> tuple[float, list[int]]:
    if patched:
        dispatch_without_waiting()
    batches: list[int] = []

    async def model(items):
        batches.append(len(items))
        await asyncio.sleep(0.01)
        return [item * 2 for item in items]

    dispatcher = CorkDispatcher(max_latency_in_ms=15_000, max_batch_size=64, fallback=lambda: None, get_batch_size=lambda item: 1)
    call = dispatcher(model)
    for i in range(15):  # past the training phase (11 batches)
        await call(i)
    for _ in range(50):  # what a burst leaves in the optimizer's window
        dispatcher.optimizer.log_outbound(n=16, wait=BURST_WAIT, duration=0.1)
    dispatcher.optimizer.trigger_refresh()
    started = time.monotonic()
    assert await call(21) == 42
    latency = time.monotonic() - started
    batches.clear()
    assert await asyncio.gather(*(call(i) for i in range(10))) == [i * 2 for i in range(10)]
    return latency, batches


def test_a_lone_request_after_a_burst_is_dispatched_at_once() -> None:
    latency, batches = asyncio.run(lone_request_latency(patched=True))
    assert latency < BURST_WAIT / 5, f"waited {latency:.3f} s"
    assert sum(batches) == 10 and len(batches) < 10  # queued requests still share batches


def test_unpatched_bentoml_makes_it_wait(monkeypatch) -> None:
    """The flaw the patch is for, so that this test file fails if a BentoML upgrade removes it."""
    from bentoml._internal.marshal import dispatcher

    monkeypatch.setattr(dispatcher.Optimizer, "trigger_refresh", ORIGINAL_REFRESH)
    latency, _ = asyncio.run(lone_request_latency(patched=False))
    assert latency > BURST_WAIT / 2, f"BentoML no longer waits ({latency:.3f} s): textclf.bentoml_compat.batch_dispatch may go"
