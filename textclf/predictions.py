"""Turns runner scores into API predictions, and request problems into 4xx JSON answers."""

from __future__ import annotations

from http import HTTPStatus

import numpy as np
from starlette.responses import JSONResponse

from textclf.schemas import LabelScore, Prediction, TextScores


class RequestError(ValueError):
    """A request the schema let through but the model cannot serve (e.g. top_k above the label count)."""

    status = HTTPStatus.BAD_REQUEST

    def response(self) -> JSONResponse:
        return JSONResponse({"error": str(self)}, status_code=self.status)


def check_top_k(top_k: int, labels: list[str]) -> None:
    if top_k > len(labels):
        raise RequestError(f"top_k={top_k} exceeds the model's {len(labels)} labels")


def to_prediction(result: TextScores, labels: list[str], top_k: int) -> Prediction:
    scores = np.asarray(result.scores)
    best = np.argsort(-scores, kind="stable")[:top_k]
    ranked = [LabelScore(label=labels[i], score=round(float(scores[i]), 6)) for i in best]
    return Prediction(
        label=ranked[0].label,
        score=ranked[0].score,
        truncated=result.truncated,
        top_k=ranked if top_k > 1 else None,
    )
