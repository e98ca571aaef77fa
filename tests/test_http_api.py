"""The CPU entry service over real HTTP: answer shapes, parity with the in-process classifier, request
errors, health and metrics endpoints, the OpenAPI document and adaptive batching under a burst.

Runs against the session's `cpu_server` (tiny model, TEXTCLF_MAX_TEXT_CHARS=2000,
TEXTCLF_MAX_BATCH_TEXTS=8). The tiny model is not asserted to be accurate: answers are compared with
what the same stored model gives in-process.
"""

from __future__ import annotations

import asyncio
import json
import math

import httpx
import numpy as np
import pytest

from tests.conftest import SENTENCES, TINY_LABELS, Server

pytestmark = pytest.mark.integration

MAX_TEXT_CHARS = 2000  # the cpu_server fixture's limits
MAX_BATCH_TEXTS = 8
# Scores come back rounded to 6 decimals; a request served alone in its runner batch must give what
# the in-process classifier gives on the same texts.
SCORE_TOLERANCE = 1e-4
# The int8 model quantizes activations dynamically, over the whole padded batch tensor: a text's
# probabilities move slightly with the other texts sharing its runner batch (measured: up to ~5e-3 on
# the tiny model). Comparisons across different batch compositions use this looser bound.
CROSS_BATCH_TOLERANCE = 0.02


def sample_texts(per_label: int = 2) -> list[str]:
    """Real sentences of each of the tiny model's languages, interleaved (en, fr, ja, ru, en, ...)."""
    lines = {label: (SENTENCES / f"{label}.txt").read_text(encoding="utf-8").splitlines() for label in TINY_LABELS}
    return [lines[label][i * 7] for i in range(per_label) for label in TINY_LABELS]


TEXTS = sample_texts()  # 8 texts: exactly the batch limit
GOOD = {"text": TEXTS[0]}


@pytest.fixture(scope="module")
def reference(tiny_export):
    """The same stored ONNX model the server runs, loaded in-process with the server's settings."""
    import bentoml

    from textclf.config import load_settings
    from textclf.loading import onnx_classifier

    model = bentoml.models.get(tiny_export.onnx_tag)
    # The server loads "tiny-onnx:latest": it must be this very model for the comparisons to hold.
    assert bentoml.models.get("tiny-onnx:latest").tag == model.tag
    assert model.info.metadata["labels"] == list(TINY_LABELS)
    return onnx_classifier(model.path, model.info.metadata, load_settings(environ={"TEXTCLF_MODEL_NAME": "tiny"}))


@pytest.fixture(scope="module")
def max_length(tiny_export) -> int:
    import bentoml

    return int(bentoml.models.get(tiny_export.onnx_tag).info.metadata["max_length"])


def ok_json(response: httpx.Response) -> object:
    assert response.status_code == 200, f"{response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def assert_prediction_shape(prediction: object) -> None:
    assert isinstance(prediction, dict)
    assert set(prediction) == {"label", "score", "truncated", "top_k"}
    assert prediction["label"] in TINY_LABELS
    assert isinstance(prediction["score"], float) and 0.0 <= prediction["score"] <= 1.0
    assert isinstance(prediction["truncated"], bool)


def assert_matches(prediction: dict, scores: list[float], truncated: bool, tolerance: float = SCORE_TOLERANCE) -> None:
    """`prediction` (HTTP) against one row of in-process probabilities in label order."""
    best = int(np.argmax(scores))
    assert prediction["label"] == TINY_LABELS[best]
    assert prediction["score"] == pytest.approx(scores[best], abs=tolerance)
    assert prediction["truncated"] is truncated


# --- answer shapes and parity ------------------------------------------------------------------


def test_single_text_answers_one_prediction_equal_to_the_in_process_model(cpu_server: Server, reference) -> None:
    for text in TEXTS:
        prediction = ok_json(cpu_server.post({"text": text}))
        assert_prediction_shape(prediction)
        assert prediction["truncated"] is False
        assert prediction["top_k"] is None
        (expected,) = reference.classify([text])
        assert_matches(prediction, expected.scores, expected.truncated)


def test_batch_answers_a_list_in_input_order(cpu_server: Server, reference) -> None:
    batch = ok_json(cpu_server.post({"texts": TEXTS}))
    assert isinstance(batch, list) and len(batch) == len(TEXTS)
    # The runner got exactly this batch: the in-process model on the same list gives the same numbers.
    for prediction, expected in zip(batch, reference.classify(TEXTS)):
        assert_prediction_shape(prediction)
        assert prediction["top_k"] is None
        assert_matches(prediction, expected.scores, expected.truncated)
    # And each item is the answer the single form gives for that text.
    for text, prediction in zip(TEXTS, batch):
        single = ok_json(cpu_server.post({"text": text}))
        assert prediction["label"] == single["label"], text
        assert prediction["truncated"] == single["truncated"]
        assert prediction["score"] == pytest.approx(single["score"], abs=CROSS_BATCH_TOLERANCE)


def test_batch_order_follows_the_input_not_the_length_sort(cpu_server: Server, reference) -> None:
    """The runner sorts texts by token count; answers must still come back in input order."""
    texts = [TEXTS[1] * 6, TEXTS[2], TEXTS[3] * 3, TEXTS[0]]  # fr (long), ja, ru (medium), en (short)
    forward = ok_json(cpu_server.post({"texts": texts}))
    for prediction, expected in zip(forward, reference.classify(texts)):
        assert_matches(prediction, expected.scores, expected.truncated)
    backward = ok_json(cpu_server.post({"texts": texts[::-1]}))
    assert [p["label"] for p in forward] == [p["label"] for p in backward][::-1]
    for a, b in zip(forward, backward[::-1]):
        assert a["score"] == pytest.approx(b["score"], abs=CROSS_BATCH_TOLERANCE)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_top_k_lists_k_labels_by_descending_score(cpu_server: Server, reference, k: int) -> None:
    for text in TEXTS[:4]:
        single = ok_json(cpu_server.post({"text": text}))
        prediction = ok_json(cpu_server.post({"text": text, "top_k": k}))
        assert_prediction_shape(prediction)
        ranked = prediction["top_k"]
        assert isinstance(ranked, list) and len(ranked) == k
        labels = [item["label"] for item in ranked]
        scores = [item["score"] for item in ranked]
        assert len(set(labels)) == k and set(labels) <= set(TINY_LABELS)
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 <= s <= 1.0 for s in scores)
        # The first entry is the answer itself, and the answer is the one without top_k.
        assert ranked[0] == {"label": prediction["label"], "score": prediction["score"]}
        assert (prediction["label"], prediction["score"]) == (single["label"], single["score"])
        # Each listed score is the model's probability for that label.
        (expected,) = reference.classify([text])
        for item in ranked:
            assert item["score"] == pytest.approx(expected.scores[TINY_LABELS.index(item["label"])], abs=SCORE_TOLERANCE)
        if k == len(TINY_LABELS):
            assert math.fsum(scores) == pytest.approx(1.0, abs=1e-4)  # all labels: a distribution


def test_top_k_in_a_batch_applies_to_every_item(cpu_server: Server) -> None:
    batch = ok_json(cpu_server.post({"texts": TEXTS[:4], "top_k": 3}))
    assert len(batch) == 4
    for prediction in batch:
        assert_prediction_shape(prediction)
        ranked = prediction["top_k"]
        assert len(ranked) == 3
        assert ranked[0] == {"label": prediction["label"], "score": prediction["score"]}
        assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)


def test_text_longer_than_the_model_max_length_is_truncated(cpu_server: Server, reference, max_length: int) -> None:
    text = " ".join(SENTENCES.joinpath("en.txt").read_text(encoding="utf-8").splitlines()[:30])[:1500]
    assert len(text) < MAX_TEXT_CHARS
    (encoding,) = reference.encoder.tokenize([text])
    assert len(encoding.ids) == max_length and encoding.overflowing  # more tokens than the model takes
    prediction = ok_json(cpu_server.post({"text": text}))
    assert_prediction_shape(prediction)
    assert prediction["truncated"] is True
    (expected,) = reference.classify([text])
    assert expected.truncated is True
    assert_matches(prediction, expected.scores, True)
    # In a batch, only the long text is marked.
    batch = ok_json(cpu_server.post({"texts": [TEXTS[0], text]}))
    assert [p["truncated"] for p in batch] == [False, True]


def test_text_at_exactly_the_char_limit_is_accepted(cpu_server: Server) -> None:
    prediction = ok_json(cpu_server.post({"text": ("Good morning! " * 200)[:MAX_TEXT_CHARS]}))
    assert_prediction_shape(prediction)
    assert prediction["truncated"] is True


# --- request errors ----------------------------------------------------------------------------

# (id, request): a JSON payload, or raw bytes sent with content-type application/json.
BAD_REQUESTS = [
    ("empty-text", {"text": ""}),
    ("whitespace-text", {"text": " \n\t  "}),
    ("text-over-char-limit", {"text": "a" * (MAX_TEXT_CHARS + 1)}),
    ("batch-over-limit", {"texts": ["hello there"] * (MAX_BATCH_TEXTS + 1)}),
    ("empty-batch", {"texts": []}),
    ("blank-text-in-batch", {"texts": ["hello there", "  "]}),
    ("text-over-char-limit-in-batch", {"texts": ["hello there", "a" * (MAX_TEXT_CHARS + 1)]}),
    ("both-text-and-texts", {"text": "hello", "texts": ["hello"]}),
    ("neither-text-nor-texts", {}),
    ("only-top_k", {"top_k": 2}),
    ("text-number", {"text": 42}),
    ("text-null", {"text": None}),
    ("texts-null", {"texts": None}),
    ("texts-list-of-numbers", {"texts": [1, 2, 3]}),
    ("texts-string", {"texts": "hello"}),
    ("text-nested-object", {"text": {"text": "hello"}}),
    ("texts-nested-lists", {"texts": [["hello"]]}),
    ("extra-field", {"text": "hello", "lang": "en"}),
    ("top_k-zero", {"text": "hello", "top_k": 0}),
    ("top_k-negative", {"text": "hello", "top_k": -1}),
    ("top_k-above-label-count", {"text": "hello", "top_k": len(TINY_LABELS) + 1}),
    ("top_k-above-label-count-batch", {"texts": ["hello", "bonjour"], "top_k": 100}),
    ("top_k-string", {"text": "hello", "top_k": "2"}),
    ("top_k-float", {"text": "hello", "top_k": 2.5}),
    ("top_k-null", {"text": "hello", "top_k": None}),
    ("body-json-list", ["hello"]),
    ("body-json-string", "hello"),
    ("not-json", b"hello, this is not JSON"),
    ("truncated-json", b'{"text": "hello'),
    ("empty-body", b""),
    ("lone-surrogate-escape", b'{"text": "hello \\ud800 world"}'),
    ("invalid-utf8", b'{"text": "\xff\xfe"}'),
    ("deeply-nested-json", b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
]


@pytest.mark.parametrize("payload", [p for _, p in BAD_REQUESTS], ids=[i for i, _ in BAD_REQUESTS])
def test_bad_request_gets_a_4xx_json_error_and_the_service_keeps_serving(
    cpu_server: Server, reference, payload: object, record_property
) -> None:
    if isinstance(payload, bytes):
        response = httpx.post(
            f"{cpu_server.url}/predict", content=payload, headers={"content-type": "application/json"}, timeout=30
        )
    else:
        response = cpu_server.post(payload)
    content_type = response.headers.get("content-type", "")
    record_property("status", response.status_code)
    record_property("content_type", content_type)
    print(f"status={response.status_code} content-type={content_type} body={response.text[:300]}")

    assert response.status_code < 500, f"server error {response.status_code}: {response.text[:500]}"
    assert 400 <= response.status_code < 500, f"expected a 4xx, got {response.status_code}: {response.text[:500]}"
    assert content_type.startswith("application/json"), f"non-JSON error body ({content_type}): {response.text[:500]}"
    try:
        body = response.json()
    except json.JSONDecodeError:
        pytest.fail(f"error body is not JSON: {response.text[:500]}")
    assert isinstance(body, dict) and "error" in body, body
    assert isinstance(body["error"], str) and body["error"]

    good = ok_json(cpu_server.post(GOOD))
    (expected,) = reference.classify([GOOD["text"]])
    assert_matches(good, expected.scores, expected.truncated)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/nope"), ("POST", "/predict/extra")],
    ids=["unknown-route", "predict-subpath"],
)
def test_unknown_route_is_404_and_the_service_keeps_serving(cpu_server: Server, method: str, path: str, record_property) -> None:
    response = httpx.request(method, f"{cpu_server.url}{path}", json=GOOD, timeout=30)
    record_property("status", response.status_code)
    record_property("content_type", response.headers.get("content-type", ""))
    print(f"status={response.status_code} content-type={response.headers.get('content-type')} body={response.text[:200]}")
    assert response.status_code == 404, f"{response.status_code}: {response.text[:300]}"
    ok_json(cpu_server.post(GOOD))


def test_get_on_predict_is_405(cpu_server: Server) -> None:
    assert httpx.get(f"{cpu_server.url}/predict", timeout=30).status_code == 405
    ok_json(cpu_server.post(GOOD))


def test_batch_at_exactly_the_limit_is_accepted(cpu_server: Server) -> None:
    batch = ok_json(cpu_server.post({"texts": ["hello there"] * MAX_BATCH_TEXTS, "top_k": len(TINY_LABELS)}))
    assert len(batch) == MAX_BATCH_TEXTS
    assert len({json.dumps(p, sort_keys=True) for p in batch}) == 1  # same text, same batch: same answer


# --- operational endpoints ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/livez", "/readyz"])
def test_health_endpoints(cpu_server: Server, path: str) -> None:
    assert httpx.get(f"{cpu_server.url}{path}", timeout=10).status_code == 200


def scrape(server: Server) -> dict[str, list]:
    """/metrics parsed as Prometheus text: sample name -> [(labels, value), ...]."""
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def test_metrics_is_prometheus_text_with_request_counts(cpu_server: Server) -> None:
    ok_json(cpu_server.post(GOOD))
    samples = scrape(cpu_server)
    assert "bentoml_service_request_total" in samples
    predict_ok = [
        value
        for labels, value in samples["bentoml_service_request_total"]
        if labels.get("endpoint") == "/predict" and labels.get("http_response_code") == "200"
    ]
    assert predict_ok and sum(predict_ok) >= 1


def test_openapi_documents_post_predict_with_the_request_fields(cpu_server: Server) -> None:
    response = httpx.get(f"{cpu_server.url}/docs.json", timeout=10)
    assert response.status_code == 200
    document = response.json()
    operation = document["paths"]["/predict"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in schema:  # "#/components/schemas/Name"
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    properties = schema["properties"]
    assert {"text", "texts", "top_k"} <= set(properties)
    # The documented limits are those of the running server.
    assert properties["text"]["maxLength"] == MAX_TEXT_CHARS
    assert properties["texts"]["maxItems"] == MAX_BATCH_TEXTS
    assert properties["top_k"]["minimum"] == 1
    assert "200" in operation["responses"]


# --- adaptive batching -------------------------------------------------------------------------


def batch_size_totals(server: Server) -> tuple[float, float]:
    """Sum and count of the OnnxRunner.classify adaptive batch size histogram, over all workers."""

    def total(name: str) -> float:
        return sum(
            value
            for labels, value in scrape(server).get(name, [])
            if labels.get("runner_name") == "OnnxRunner" and labels.get("method_name") == "classify"
        )

    return total("bentoml_service_adaptive_batch_size_sum"), total("bentoml_service_adaptive_batch_size_count")


def test_concurrent_requests_are_answered_correctly_and_batched(cpu_server: Server, reference) -> None:
    texts = [TEXTS[i % len(TEXTS)] for i in range(64)]
    expected = {text: reference.classify([text])[0] for text in TEXTS}
    sum_before, count_before = batch_size_totals(cpu_server)

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(texts), max_keepalive_connections=len(texts))
        async with httpx.AsyncClient(base_url=cpu_server.url, timeout=60, limits=limits) as client:
            return await asyncio.gather(*(client.post("/predict", json={"text": t}) for t in texts))

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * len(texts), {s: statuses.count(s) for s in set(statuses)}
    for text, response in zip(texts, responses):
        prediction = response.json()
        assert_prediction_shape(prediction)
        # Batched with other requests, so compared across batch compositions.
        assert_matches(prediction, expected[text].scores, expected[text].truncated, CROSS_BATCH_TOLERANCE)

    sum_after, count_after = batch_size_totals(cpu_server)
    added_batches, added_requests = count_after - count_before, sum_after - sum_before
    assert added_batches >= 1, "the runner recorded no batches for the burst"
    assert added_requests >= len(texts), (added_requests, added_batches)
    assert added_requests / added_batches > 1, f"{added_requests} requests in {added_batches} batches: no batching"
