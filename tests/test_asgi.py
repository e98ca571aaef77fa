"""The fast tier: the CPU service's ASGI app in this process (`TextClassifier.to_asgi()`) behind
Starlette's TestClient, on the tiny model: the HTTP layer, the model card, the in-process model and
its batcher, without starting `bentoml serve` (tests/test_http_api.py does that, for real, and
checks /metrics, which needs the Prometheus setup `bentoml serve` makes)."""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.conftest import TINY_LABELS
from tests.http_load import tiny_reference
from textclf.config import settings

TEXTS = ["Bonjour tout le monde, comment allez-vous ?", "Доброе утро, как дела?", "こんにちは、元気ですか", "Good morning, how are you?"]


@pytest.fixture(scope="module")
def client(tiny_export) -> Iterator[TestClient]:
    """The service module imported for the tiny model (its settings are read at import), with the
    patches a serving worker applies (textclf/bentoml_compat)."""
    import service
    from textclf import bentoml_compat

    bentoml_compat.apply()

    os.environ["TEXTCLF_MODEL_NAME"] = "tiny"
    settings.cache_clear()
    try:
        tiny_service = importlib.reload(service)
        with TestClient(tiny_service.TextClassifier.to_asgi()) as test_client:  # runs the lifespan: the model loads
            deadline = time.monotonic() + 60
            while test_client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "the model did not load within 60 s"
                time.sleep(0.05)
            yield test_client
    finally:
        del os.environ["TEXTCLF_MODEL_NAME"]
        settings.cache_clear()
        importlib.reload(service)


def test_answers_equal_the_in_process_model(client: TestClient, tiny_export) -> None:
    reference = tiny_reference(tiny_export)
    response = client.post("/predict", json={"texts": TEXTS, "top_k": len(TINY_LABELS)})
    assert response.status_code == 200, response.text
    for text, prediction, expected in zip(TEXTS, response.json(), reference.classify(TEXTS)):
        scores = {item["label"]: item["score"] for item in prediction["top_k"]}
        assert scores == pytest.approx(dict(zip(sorted(TINY_LABELS), expected.scores)), abs=1e-5), text
    single = client.post("/predict", json={"text": TEXTS[0]})  # top_k left out: the API's default
    assert set(single.json()) == {"label", "score", "truncated", "top_k"} and single.json()["top_k"] is None
    assert single.headers["server"] == "BentoML Service/text-classifier"  # through request_path's header patch


def test_errors_go_through_the_status_table(client: TestClient) -> None:
    too_many = client.post("/predict", json={"text": "hello", "top_k": len(TINY_LABELS) + 1})
    assert too_many.status_code == 400 and too_many.json() == {"error": f"top_k={len(TINY_LABELS) + 1} exceeds the model's 4 labels"}
    not_json = client.post("/predict", content=b"hello", headers={"content-type": "text/plain"})
    assert not_json.status_code == 415 and "application/json" in not_json.json()["error"]
    blank = client.post("/predict", json={"text": "  "})
    assert blank.status_code == 400 and "whitespace" in blank.text
