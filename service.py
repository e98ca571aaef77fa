"""HTTP predict API. On the CPU (the default) the int8 ONNX model runs inside the HTTP process with
its own batcher; on a GPU a runner service owns the device and runs the torch model
(TextClassifierGPU) or the fp16 ONNX model on onnxruntime-gpu (TextClassifierOnnxGPU)."""

from functools import partial
from typing import TYPE_CHECKING

import bentoml

from textclf import bentoml_compat
from textclf.api import predictions
from textclf.api.body_limit import BodyLimit
from textclf.api.metrics import BATCH_TEXTS
from textclf.api.schemas import PredictRequest, PredictResponse, TextScores
from textclf.bentoml_compat.service_config import RUNNER_CONNECTION, json_list, untraced
from textclf.bentoml_compat.shutdown_drain import DrainBeforeExit
from textclf.config import settings
from textclf.core.model_card import ModelCard

if TYPE_CHECKING:
    from textclf.core.classifier import Classifier

SETTINGS = settings()
if bentoml_compat.in_worker():  # not in `bentoml serve`'s supervisor (textclf/bentoml_compat)
    bentoml_compat.apply()
HTTP_CONFIG = {"traffic": {"timeout": 30, "max_concurrency": SETTINGS.max_concurrency}, "logging": {"access": {"enabled": SETTINGS.access_log}}}
HTTP_CONFIG |= untraced(SETTINGS, "/predict")


@bentoml.service(name="text-classifier", workers=SETTINGS.workers, **HTTP_CONFIG)
class TextClassifier:
    model = bentoml.models.BentoModel(SETTINGS.onnx_model_tag)

    def __init__(self) -> None:
        from textclf.core.loading import onnx_classifier, read_card
        from textclf.core.local_model import LocalModel

        name, metadata = str(self.model.tag), self.model.info.metadata
        self.local = LocalModel(
            name, lambda: read_card(name, metadata).labels, partial(onnx_classifier, self.model.path, metadata, SETTINGS),
            SETTINGS.max_batch_size, SETTINGS.max_latency_ms / 1000, BATCH_TEXTS.observe,
        )

    async def __is_ready__(self) -> bool:
        return self.local.ready

    @bentoml.api(route="/predict", input_spec=PredictRequest)
    async def predict(self, text: str | None, texts: list[str] | None, top_k: int) -> PredictResponse:
        return await predictions.predict(self.local, text, texts, top_k)

    @bentoml.on_shutdown
    def close(self) -> None:
        self.local.close()


class GpuRunner:
    """One process owns the GPU; BentoML batches the HTTP workers' calls (textclf/bentoml_compat/batch_dispatch.py)."""

    classifier: "Classifier"

    @bentoml.api(batchable=True, max_batch_size=SETTINGS.max_batch_size, max_latency_ms=SETTINGS.max_latency_ms)
    def classify(self, texts: list[str]) -> json_list(TextScores):
        return self.classifier.classify(texts)


GPU_RUNNER_CONFIG = {"workers": 1, "resources": {"gpu": 1}, "traffic": {"timeout": 30}, "logging": {"access": {"enabled": False}}}
GPU_RUNNER_CONFIG |= RUNNER_CONNECTION | untraced(SETTINGS, "/classify")


@bentoml.service(**GPU_RUNNER_CONFIG)
class TorchRunner(GpuRunner):
    model = bentoml.models.BentoModel(SETTINGS.torch_model_tag)

    def __init__(self) -> None:
        from textclf.core.loading import torch_classifier

        self.classifier = torch_classifier(self.model.path, self.model.info.metadata, SETTINGS)


@bentoml.service(**GPU_RUNNER_CONFIG)
class OnnxGpuRunner(GpuRunner):
    model = bentoml.models.BentoModel(SETTINGS.onnx_fp16_model_tag)

    def __init__(self) -> None:
        from textclf.core.loading import gpu_onnx_classifier

        self.classifier = gpu_onnx_classifier(self.model.path, self.model.info.metadata, SETTINGS)


class GpuHTTP:
    """The HTTP layer in front of a GPU runner; `runner` and its `model` are set by each service."""

    runner: "TorchRunner | OnnxGpuRunner"
    model: bentoml.models.BentoModel  # the runner's: its labels, read here at start

    def __init__(self) -> None:
        from textclf.core.remote_model import RemoteModel

        labels = ModelCard.from_metadata(self.model.info.metadata).labels
        # The runner's client learns its methods once it has connected: look classify up per call.
        self.remote = RemoteModel(labels, lambda texts: self.runner.to_async.classify(texts), SETTINGS.max_batch_size, SETTINGS.max_latency_ms / 1000)

    @bentoml.api(route="/predict", input_spec=PredictRequest)
    async def predict(self, text: str | None, texts: list[str] | None, top_k: int) -> PredictResponse:
        return await predictions.predict(self.remote, text, texts, top_k)


@bentoml.service(name="text-classifier-gpu", **HTTP_CONFIG)
class TextClassifierGPU(GpuHTTP):
    runner = bentoml.depends(TorchRunner)
    model = bentoml.models.BentoModel(SETTINGS.torch_model_tag)


@bentoml.service(name="text-classifier-gpu-onnx", **HTTP_CONFIG)
class TextClassifierOnnxGPU(GpuHTTP):
    runner = bentoml.depends(OnnxGpuRunner)
    model = bentoml.models.BentoModel(SETTINGS.onnx_fp16_model_tag)


# Non-JSON bodies get 415 and oversized ones 413 before BentoML reads them whole (textclf/api/body_limit.py).
for http_service in (TextClassifier, TextClassifierGPU, TextClassifierOnnxGPU):
    http_service.add_asgi_middleware(BodyLimit, settings=SETTINGS)
# On SIGTERM a runner serves on until the HTTP service has sent its last call (textclf/bentoml_compat/shutdown_drain.py).
for runner_service in (TorchRunner, OnnxGpuRunner):
    runner_service.add_asgi_middleware(DrainBeforeExit)
