"""/predict, whatever runs the model: the request's texts to the model, its scores to predictions,
every ServiceError to its status (textclf/api/errors.py)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from starlette.responses import JSONResponse

from textclf.api.errors import BadRequest, ServiceError, error_response
from textclf.api.schemas import LabelScore, Prediction, PredictResponse, TextScores


class ServedModel(Protocol):
    """What the HTTP layer needs of a model: its labels, and scores for texts (both may raise
    ModelNotReady)."""

    def labels(self) -> list[str]: ...

    def classify(self, texts: list[str]) -> Awaitable[list[TextScores]]: ...


def check_top_k(top_k: int, labels: list[str]) -> None:
    if top_k > len(labels):
        raise BadRequest(f"top_k={top_k} exceeds the model's {len(labels)} labels")


def to_prediction(result: TextScores, labels: list[str], top_k: int) -> Prediction:
    scores = result.scores
    # Plain Python, not numpy: this module is imported by `bentoml serve`'s supervisor too (service.py).
    best = sorted(range(len(scores)), key=lambda i: -scores[i])[:top_k]  # stable: ties keep label order
    ranked = [LabelScore(label=labels[i], score=round(scores[i], 6)) for i in best]
    return Prediction(
        label=ranked[0].label,
        score=ranked[0].score,
        truncated=result.truncated,
        top_k=ranked if top_k > 1 else None,
    )


async def predict(model: ServedModel, text: str | None, texts: list[str] | None, top_k: int) -> PredictResponse | JSONResponse:
    """One prediction for `text`, a list for `texts`; top_k is checked against the labels before any model work."""
    try:
        labels = model.labels()
        check_top_k(top_k, labels)
        results = await model.classify([text] if texts is None else texts)
    except ServiceError as error:
        return error_response(error)
    predictions = [to_prediction(r, labels, top_k) for r in results]
    return PredictResponse(predictions[0] if texts is None else predictions)
