"""HTTP predict API over two runners: int8 ONNX on the CPU (the default) and torch on a GPU."""

import asyncio
from typing import Annotated

import bentoml
from bentoml.validators import ContentType

from textclf.batch_dispatch import dispatch_without_waiting
from textclf.body_limit import BodyLimit
from textclf.classifier import Classifier
from textclf.client_error_logs import quiet_client_error_tracebacks
from textclf.config import settings, untraced
from textclf.predictions import RequestError, check_top_k, to_prediction
from textclf.runner_calls import CombinedCalls, call_runner
from textclf.schemas import ModelInfo, PredictRequest, PredictResponse, TextScores
from textclf.shutdown_drain import DrainBeforeExit

SETTINGS = settings()
# Declared, so BentoML does not rebuild the answer's JSON schema to find its media type on every call
# (a fifth of the runner's event-loop time at concurrency 32).
JSONList = Annotated[list[TextScores], ContentType("application/json")]
BATCHING = {"batchable": True, "max_batch_size": SETTINGS.max_batch_size, "max_latency_ms": SETTINGS.max_latency_ms}
dispatch_without_waiting()  # batch what is queued when the model is free; never wait for more
quiet_client_error_tracebacks()  # a 4xx is logged as one line naming the error, not a traceback
# Runner services are internal: their calls are already in the entry service's access log, and
# BentoML's client of a runner renews its connection pool every 100 requests or 300 s, closing the
# old pool with calls still in flight on it (they hang until the timeout or fail: bentoml#4971).
# Between two local processes nothing is gained by renewing it.
RUNNER_CONFIG = {
    "traffic": {"timeout": 30},
    "logging": {"access": {"enabled": False}},
    "runner_connection": {"max_requests": 2**31 - 1, "max_age": 1e9},
} | untraced(SETTINGS, "/classify", "/info")


class RunnerAPI:
    """What the HTTP layer calls, shared by both runners; each loads its own `classifier`."""

    classifier: Classifier
    model: bentoml.Model

    @bentoml.api(**BATCHING)
    def classify(self, texts: list[str]) -> JSONList:
        return self.classifier.classify(texts)

    @bentoml.api
    def info(self) -> ModelInfo:
        return self.classifier.describe(str(self.model.tag))


@bentoml.service(**RUNNER_CONFIG, workers=SETTINGS.cpu_runner_workers)
class OnnxRunner(RunnerAPI):
    model = bentoml.models.BentoModel(SETTINGS.onnx_model_tag)

    def __init__(self) -> None:
        from textclf.loading import onnx_classifier

        self.classifier = onnx_classifier(self.model.path, self.model.info.metadata, SETTINGS)


@bentoml.service(**RUNNER_CONFIG, workers=1, resources={"gpu": 1})
class TorchRunner(RunnerAPI):
    model = bentoml.models.BentoModel(SETTINGS.torch_model_tag)

    def __init__(self) -> None:
        from textclf.loading import torch_classifier

        self.classifier = torch_classifier(self.model.path, self.model.info.metadata, SETTINGS)


class PredictAPI:
    """The HTTP layer, shared by both entry services; `runner` is set by each of them."""

    runner: "OnnxRunner | TorchRunner"
    # Concurrent requests go to a one-worker runner as one call (textclf/runner_calls.py; c=32 against
    # baseline O, medians of 3 rounds: 0.82-0.85x before, 0.89-1.02x after). Safe on SIGTERM because
    # runners outlive their callers (textclf/shutdown_drain.py). Not to several workers: the few
    # connections combined calls use stick to one of them (2 workers: 133 -> 108 req/s).
    combine_runner_calls: bool

    def __init__(self) -> None:
        self._labels: list[str] | None = None
        self._labels_lock = asyncio.Lock()
        self._classify = self._call_runner
        if self.combine_runner_calls:
            self._classify = CombinedCalls(self._call_runner, SETTINGS.max_batch_size, SETTINGS.max_latency_ms)

    async def _call_runner(self, texts: list[str]) -> list[TextScores]:
        # Awaiting the batchable method is what lets concurrent calls share one runner batch.
        return await call_runner(self.runner.to_async.classify, texts)

    async def labels(self) -> list[str]:
        """Asked of the runner once: a burst of first requests must not each ask again."""
        async with self._labels_lock:
            if self._labels is None:
                self._labels = (await call_runner(self.runner.to_async.info)).labels
        return self._labels

    @bentoml.api(route="/predict", input_spec=PredictRequest)
    async def predict(self, text: str | None, texts: list[str] | None, top_k: int) -> PredictResponse:
        labels = await self.labels()
        try:
            check_top_k(top_k, labels)
        except RequestError as error:
            return error.response()
        results = await self._classify([text] if texts is None else texts)
        predictions = [to_prediction(r, labels, top_k) for r in results]
        return PredictResponse(predictions[0] if texts is None else predictions)


ENTRY_CONFIG = {"traffic": {"timeout": 30, "max_concurrency": SETTINGS.max_concurrency}} | untraced(SETTINGS, "/predict")


@bentoml.service(name="text-classifier", **ENTRY_CONFIG)
class TextClassifier(PredictAPI):
    runner = bentoml.depends(OnnxRunner)
    combine_runner_calls = SETTINGS.cpu_runner_workers == 1


@bentoml.service(name="text-classifier-gpu", **ENTRY_CONFIG)
class TextClassifierGPU(PredictAPI):
    runner = bentoml.depends(TorchRunner)
    combine_runner_calls = True


# Non-JSON bodies get 415 and oversized ones 413 before BentoML reads them whole (textclf/body_limit.py).
for entry_service in (TextClassifier, TextClassifierGPU):
    entry_service.add_asgi_middleware(BodyLimit, settings=SETTINGS)
# On SIGTERM a runner serves on until the API service has sent its last call (textclf/shutdown_drain.py).
for runner_service in (OnnxRunner, TorchRunner):
    runner_service.add_asgi_middleware(DrainBeforeExit)
