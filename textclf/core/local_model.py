"""A model run inside the HTTP process: loaded and run in one worker thread, its requests batched.

Loading happens in that thread once the HTTP server is up: /readyz answers 503 until the model has
loaded and passed its checks, and for good if it fails them (the reason is logged), so a broken
model never serves and the process never crash-loops. Requests that arrive while it loads wait in
the batcher behind the load (as they would wait for a restarting worker) and then run; after a
failed load they get 503 with the reason. The labels come from the model card, read at start, so
`top_k` is checked before any model work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from textclf.api.errors import ModelNotReady
from textclf.api.schemas import TextScores
from textclf.core.batcher import Batcher, in_thread
from textclf.core.classifier import Classifier

logger = logging.getLogger(__name__)


class LocalModel:
    def __init__(self, name: str, read_labels: Callable[[], list[str]], load: Callable[[], Classifier], max_texts: int,
                 max_wait_s: float, observe: Callable[[int], None] = lambda n: None) -> None:
        self.name = name
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="model")
        self._loading: Future[Classifier] = self._thread.submit(load)
        self._loading.add_done_callback(self._log_outcome)
        self._batcher = Batcher(in_thread(self._thread, self._classify), max_texts, max_wait_s, observe)
        try:
            self._labels, self._card_error = read_labels(), None
        except Exception as error:  # the load fails on it too, and logs it: not ready, never a crash loop
            self._labels, self._card_error = [], error

    def _log_outcome(self, loading: Future[Classifier]) -> None:
        if loading.exception() is not None:
            logger.error("model %s failed to load, the service stays not ready: %s", self.name, loading.exception())
        else:
            logger.info("model %s loaded", self.name)

    @property
    def ready(self) -> bool:
        return self._loading.done() and self._loading.exception() is None

    def labels(self) -> list[str]:
        if self._card_error is not None:
            raise ModelNotReady(f"the model {self.name} cannot serve: {self._card_error}")
        return self._labels

    def _classify(self, texts: list[str]) -> list[TextScores]:
        """In the model thread, after the load (the thread's first task)."""
        if self._loading.exception() is not None:
            raise ModelNotReady(f"the model {self.name} failed to load: {self._loading.exception()}")
        return self._loading.result().classify(texts)

    async def classify(self, texts: list[str]) -> list[TextScores]:
        return await self._batcher(texts)

    def close(self) -> None:
        """Finish the run in progress, then stop the thread (at shutdown, after the last request)."""
        self._thread.shutdown(wait=True)
