import pytest
from pydantic import ValidationError

from textclf.api.errors import STATUS, BadRequest, ModelNotReady, Overloaded, PayloadTooLarge, ServiceError, UnsupportedMediaType, error_response
from textclf.api.predictions import check_top_k, to_prediction
from textclf.api.schemas import PredictRequest, TextScores
from textclf.config import settings

LIMITS = settings()


@pytest.mark.parametrize(
    "body",
    [
        {"text": "hello"},
        {"texts": ["hello", "bonjour"], "top_k": 2},
        {"text": "x" * LIMITS.max_text_chars},
        {"texts": ["a"] * LIMITS.max_batch_texts},
    ],
)
def test_valid_requests(body: dict) -> None:
    PredictRequest.model_validate(body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"text": ""}, "empty"),
        ({"text": " \n\t"}, "whitespace"),
        ({"text": "x" * (LIMITS.max_text_chars + 1)}, "at most"),
        ({"texts": []}, "at least 1"),
        ({"texts": ["a"] * (LIMITS.max_batch_texts + 1)}, "at most"),
        ({"texts": ["ok", " "]}, "whitespace"),
        ({"text": "a", "texts": ["b"]}, "exactly one"),
        ({}, "exactly one"),
        ({"text": 5}, "string"),
        ({"texts": [1, 2]}, "string"),
        ({"text": "a", "top_k": 0}, "greater than or equal to 1"),
        ({"text": "a", "top_k": "2"}, "integer"),
        ({"text": "a", "lang": "fr"}, "Extra inputs"),
    ],
)
def test_invalid_requests_say_what_is_wrong(body: dict, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        PredictRequest.model_validate(body)


def test_top_k_above_label_count_is_a_bad_request() -> None:
    check_top_k(3, ["a", "b", "c"])
    with pytest.raises(BadRequest, match="top_k=4 exceeds the model's 3 labels"):
        check_top_k(4, ["a", "b", "c"])


@pytest.mark.parametrize(
    ("error", "status"),
    [(BadRequest, 400), (PayloadTooLarge, 413), (UnsupportedMediaType, 415), (ModelNotReady, 503), (Overloaded, 503)],
)
def test_every_service_error_has_its_status_and_a_json_body(error: type[ServiceError], status: int) -> None:
    response = error_response(error("what was wrong"))
    assert response.status_code == status and response.body == b'{"error":"what was wrong"}'
    assert {cls for cls in STATUS} == set(ServiceError.__subclasses__())  # none left out of the table


def test_prediction_ranks_labels_by_score() -> None:
    scores = TextScores(scores=[0.1, 0.6, 0.3], truncated=True)
    prediction = to_prediction(scores, ["a", "b", "c"], top_k=3)
    assert (prediction.label, prediction.score, prediction.truncated) == ("b", 0.6, True)
    assert [s.label for s in prediction.top_k] == ["b", "c", "a"]
    assert to_prediction(scores, ["a", "b", "c"], top_k=1).top_k is None
