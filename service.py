"""HTTP predict API over two runners: int8 ONNX on the CPU (the default) and torch on a GPU."""

import bentoml

from textclf.config import settings
from textclf.predictions import RequestError, check_top_k, to_prediction
from textclf.schemas import ModelInfo, Prediction, PredictRequest, TextScores

SETTINGS = settings()
BATCHING = {"batchable": True, "max_batch_size": SETTINGS.max_batch_size, "max_latency_ms": SETTINGS.max_latency_ms}


@bentoml.service(workers=1, traffic={"timeout": 30})
class OnnxRunner:
    model = bentoml.models.BentoModel(SETTINGS.onnx_model_tag)

    def __init__(self) -> None:
        from textclf.loading import onnx_classifier

        self.classifier = onnx_classifier(self.model.path, self.model.info.metadata, SETTINGS.intra_op_threads)

    @bentoml.api(**BATCHING)
    def classify(self, texts: list[str]) -> list[TextScores]:
        return self.classifier.classify(texts)

    @bentoml.api
    def info(self) -> ModelInfo:
        return self.classifier.describe(str(self.model.tag))


@bentoml.service(workers=1, resources={"gpu": 1}, traffic={"timeout": 30})
class TorchRunner:
    model = bentoml.models.BentoModel(SETTINGS.torch_model_tag)

    def __init__(self) -> None:
        from textclf.loading import torch_classifier

        self.classifier = torch_classifier(self.model.path, self.model.info.metadata, SETTINGS.device)

    @bentoml.api(**BATCHING)
    def classify(self, texts: list[str]) -> list[TextScores]:
        return self.classifier.classify(texts)

    @bentoml.api
    def info(self) -> ModelInfo:
        return self.classifier.describe(str(self.model.tag))


class PredictAPI:
    """The HTTP layer, shared by both entry services; `runner` is set by each of them."""

    runner: "OnnxRunner | TorchRunner"
    labels: list[str] | None = None  # fetched from the runner once, on the first request

    @bentoml.api(route="/predict", input_spec=PredictRequest)
    async def predict(self, text: str | None, texts: list[str] | None, top_k: int) -> Prediction | list[Prediction]:
        if self.labels is None:
            self.labels = (await self.runner.to_async.info()).labels
        try:
            check_top_k(top_k, self.labels)
        except RequestError as error:
            return error.response()
        # Awaiting the batchable method is what lets concurrent requests share one batch.
        results = await self.runner.to_async.classify([text] if texts is None else texts)
        predictions = [to_prediction(r, self.labels, top_k) for r in results]
        return predictions[0] if texts is None else predictions


@bentoml.service(name="text-classifier", traffic={"timeout": 30})
class TextClassifier(PredictAPI):
    runner = bentoml.depends(OnnxRunner)


@bentoml.service(name="text-classifier-gpu", traffic={"timeout": 30})
class TextClassifierGPU(PredictAPI):
    runner = bentoml.depends(TorchRunner)
