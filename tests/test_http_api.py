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
import time
from typing import NamedTuple

import httpx
import numpy as np
import psutil
import pytest

from tests.conftest import SENTENCES, TINY_LABELS, Server, start_server, stop_server
from tests.figures import record
from textclf.api.body_limit import max_request_bytes
from textclf.config import ServingSettings

pytestmark = pytest.mark.integration

MAX_TEXT_CHARS = 2000  # the cpu_server fixture's limits
MAX_BATCH_TEXTS = 8
# Scores come back rounded to 6 decimals; a request served alone in its model run must give what
# the in-process classifier gives on the same texts.
SCORE_TOLERANCE = 1e-4
# The int8 model quantizes activations dynamically, over the whole padded batch tensor: a text's
# probabilities move slightly with the other texts sharing its model run (measured: up to ~5e-3 on
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
    from textclf.core.loading import onnx_classifier

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
    # The model ran exactly this batch: the in-process model on the same list gives the same numbers.
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
    """The classifier sorts texts by token count; answers must still come back in input order."""
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
#
# Every bad request gets a 4xx with a JSON error body and the service keeps serving. Content types
# other than JSON (415) and oversized bodies (413) are refused by textclf.api.body_limit.BodyLimit before
# BentoML reads them: BentoML 1.4.39 alone parses any media type as JSON, takes form and multipart
# bodies as the request's fields, answers a malformed multipart body with a 500 and reads a body of
# any size whole before validating it.

BODY_LIMIT = max_request_bytes(ServingSettings(max_text_chars=MAX_TEXT_CHARS, max_batch_texts=MAX_BATCH_TEXTS))
TOO_LARGE = f"is over the limit of {BODY_LIMIT} bytes (at most {MAX_BATCH_TEXTS} texts of at most {MAX_TEXT_CHARS} characters)"
NOT_JSON = "the body must be JSON sent as content-type application/json, not"
INVALID_JSON = "Invalid JSON"
BLANK = "text is empty or only whitespace"
ONE_OF = "give exactly one of 'text' or 'texts'"
TOO_LONG = f"String should have at most {MAX_TEXT_CHARS} characters"
OVER_LABELS = f"exceeds the model's {len(TINY_LABELS)} labels"


class Raw(NamedTuple):
    """A body sent as it is, with its content type; `chunked` sends it without Content-Length."""

    body: bytes
    content_type: str = "application/json"
    chunked: bool = False


MULTIPART_BOUNDARY = "textclf-test-boundary"
MULTIPART_TEXT = (
    f'--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name="text"\r\n\r\nhello there\r\n--{MULTIPART_BOUNDARY}--\r\n'
).encode()
ONE_MB_TEXT = {"text": "a" * 1_000_000}
TWENTY_MB_BODY = json.dumps({"text": "a" * 20_000_000}).encode()

# (id, request, status, says): a JSON payload, raw bytes sent as application/json, or a Raw body;
# the status it must get and a fragment of its JSON error ("error" and pydantic's "detail" messages).
BAD_REQUESTS = [
    # blank and over-long text, batch size
    ("empty-text", {"text": ""}, 400, BLANK),
    ("whitespace-text", {"text": " \n\t  "}, 400, BLANK),
    ("unicode-whitespace-text", {"text": "\u3000\u00a0\u2028\u2029\u0085"}, 400, BLANK),
    ("format-chars-only-text", {"text": "\u200b\u200e\u200f\u2066\ufeff"}, 400, BLANK),
    ("nul-only-text", {"text": "\x00"}, 400, BLANK),
    ("control-chars-only-text", {"text": "\x00\x01\x07\x1b\x7f\x9f"}, 400, BLANK),
    ("control-and-format-chars-text", {"text": "\x00\u200b \x1b\ufeff\t"}, 400, BLANK),
    ("text-over-char-limit", {"text": "a" * (MAX_TEXT_CHARS + 1)}, 400, TOO_LONG),
    ("emoji-text-over-char-limit", {"text": "🙂" * (MAX_TEXT_CHARS + 1)}, 400, TOO_LONG),
    ("text-1mb", ONE_MB_TEXT, 413, TOO_LARGE),
    ("body-20mb", TWENTY_MB_BODY, 413, TOO_LARGE),
    ("body-20mb-chunked", Raw(TWENTY_MB_BODY, chunked=True), 413, TOO_LARGE),
    ("batch-over-limit", {"texts": ["hello there"] * (MAX_BATCH_TEXTS + 1)}, 400, f"at most {MAX_BATCH_TEXTS} items"),
    ("empty-batch", {"texts": []}, 400, "at least 1 item"),
    ("blank-text-in-batch", {"texts": ["hello there", "  "]}, 400, BLANK),
    ("control-chars-only-text-in-batch", {"texts": ["hello there", "\x00\x1b"]}, 400, BLANK),
    ("text-over-char-limit-in-batch", {"texts": ["hello there", "a" * (MAX_TEXT_CHARS + 1)]}, 400, TOO_LONG),
    # missing, extra and conflicting fields
    ("both-text-and-texts", {"text": "hello", "texts": ["hello"]}, 400, ONE_OF),
    ("neither-text-nor-texts", {}, 400, ONE_OF),
    ("only-top_k", {"top_k": 2}, 400, ONE_OF),
    ("misspelled-field", {"txt": "hello"}, 400, "Extra inputs are not permitted"),
    ("extra-field", {"text": "hello", "lang": "en"}, 400, "Extra inputs are not permitted"),
    ("extra-fields-in-batch-request", {"texts": ["hello"], "lang": "en", "debug": True}, 400, "Extra inputs are not permitted"),
    # wrong types
    ("text-number", {"text": 42}, 400, "Input should be a valid string"),
    ("text-bool", {"text": True}, 400, "Input should be a valid string"),
    ("text-list", {"text": ["hello"]}, 400, "Input should be a valid string"),
    ("text-null", {"text": None}, 400, ONE_OF),
    ("texts-null", {"texts": None}, 400, ONE_OF),
    ("texts-list-of-numbers", {"texts": [1, 2, 3]}, 400, "Input should be a valid string"),
    ("texts-list-with-null", {"texts": ["hello", None]}, 400, "Input should be a valid string"),
    ("texts-string", {"texts": "hello"}, 400, "Input should be a valid array"),
    ("texts-object", {"texts": {"0": "hello"}}, 400, "Input should be a valid array"),
    ("text-nested-object", {"text": {"text": "hello"}}, 400, "Input should be a valid string"),
    ("texts-nested-lists", {"texts": [["hello"]]}, 400, "Input should be a valid string"),
    # top_k
    ("top_k-zero", {"text": "hello", "top_k": 0}, 400, "greater than or equal to 1"),
    ("top_k-negative", {"text": "hello", "top_k": -1}, 400, "greater than or equal to 1"),
    ("top_k-above-label-count", {"text": "hello", "top_k": len(TINY_LABELS) + 1}, 400, f"top_k=5 {OVER_LABELS}"),
    ("top_k-above-label-count-batch", {"texts": ["hello", "bonjour"], "top_k": 100}, 400, f"top_k=100 {OVER_LABELS}"),
    ("top_k-huge", {"text": "hello", "top_k": 10**30}, 400, f"top_k={10**30} {OVER_LABELS}"),
    ("top_k-string", {"text": "hello", "top_k": "2"}, 400, "Input should be a valid integer"),
    ("top_k-float", {"text": "hello", "top_k": 2.5}, 400, "Input should be a valid integer"),
    ("top_k-bool", {"text": "hello", "top_k": True}, 400, "Input should be a valid integer"),
    ("top_k-null", {"text": "hello", "top_k": None}, 400, "Input should be a valid integer"),
    # not an object, not JSON, not UTF-8
    ("body-json-list", ["hello"], 400, "Input should be an object"),
    ("body-json-string", "hello", 400, "Input should be an object"),
    ("body-json-null", b"null", 400, "Input should be an object"),
    ("not-json", b"hello, this is not JSON", 400, INVALID_JSON),
    ("truncated-json", b'{"text": "hello', 400, "Invalid JSON: EOF while parsing"),
    ("trailing-garbage-after-json", b'{"text": "hello"} {"text": "again"}', 400, "Invalid JSON: trailing characters"),
    ("empty-body", b"", 400, ONE_OF),  # BentoML reads an empty JSON body as {}
    ("lone-surrogate-escape", b'{"text": "hello \\ud800 world"}', 400, INVALID_JSON),
    ("invalid-utf8", b'{"text": "\xff\xfe"}', 400, INVALID_JSON),
    ("latin1-encoded-text", '{"text": "café crème"}'.encode("latin-1"), 400, INVALID_JSON),
    ("utf16-encoded-body", '{"text": "hello"}'.encode("utf-16"), 400, INVALID_JSON),
    ("deeply-nested-json", b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "recursion limit exceeded"),
    # not sent as JSON
    ("text/plain-json-looking", Raw(b'{"text": "hello there"}', "text/plain"), 415, NOT_JSON + " text/plain"),
    ("octet-stream-json-looking", Raw(b'{"text": "hello there"}', "application/octet-stream"), 415, NOT_JSON),
    ("form-urlencoded-json-looking", Raw(b'{"text": "hello there"}', "application/x-www-form-urlencoded"), 415, NOT_JSON),
    ("form-urlencoded-fields", Raw(b"text=hello+there", "application/x-www-form-urlencoded"), 415, NOT_JSON),
    ("multipart-fields", Raw(MULTIPART_TEXT, f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"), 415, NOT_JSON),
    ("multipart-malformed", Raw(b"garbage", f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"), 415, NOT_JSON),
    ("multipart-without-boundary", Raw(MULTIPART_TEXT, "multipart/form-data"), 415, NOT_JSON),
    ("bentoml-pickle", Raw(b"\x80\x05N.", "application/vnd.bentoml+pickle"), 415, NOT_JSON),
]


# (id, method, path, status, body): unknown routes and methods get Starlette's plain-text answers.
BAD_ROUTES = [
    ("unknown-route", "POST", "/nope", 404, "Not Found"),
    ("predict-subpath", "POST", "/predict/extra", 404, "Not Found"),
    ("predict-upper-case", "POST", "/PREDICT", 404, "Not Found"),
    ("get-predict", "GET", "/predict", 405, "Method Not Allowed"),
    ("put-predict", "PUT", "/predict", 405, "Method Not Allowed"),
    ("delete-predict", "DELETE", "/predict", 405, "Method Not Allowed"),
    ("patch-predict", "PATCH", "/predict", 405, "Method Not Allowed"),
]

# Unusual but valid texts: each gets 200 and the prediction the in-process model gives.
UNUSUAL_TEXTS = [
    ("emoji-only", "🙂🙂🙂 👍🏽 🇫🇷"),
    ("emoji-zwj-sequence", "👩\u200d👩\u200d👧 family 👨\u200d💻"),
    ("emoji-among-words", "Good morning 🌞, how are you? 😀"),
    ("mixed-scripts", "Hello, Привет, こんにちは, مرحبا, नमस्ते, 你好"),
    ("rtl-arabic", "مرحبا بالعالم، كيف حالك؟"),
    ("rtl-hebrew", "שלום עולם, מה שלומך?"),
    ("rtl-with-bidi-controls", "\u202bمرحبا\u202c and \u2067שלום\u2069 together"),
    ("nul-among-words", "hello\x00world, how are you"),
    ("control-chars-among-words", "good\x07 morning\x1b[0m to\x7f you\x0b all"),
    ("zero-width-chars-among-words", "bon\u200bjour tout\u200d le\u200c monde\ufeff"),
    ("bom-prefixed", "\ufeffGuten Morgen, wie geht es dir?"),
    ("combining-marks", "Cafe\u0301 cre\u0300me bru\u0302le\u0301e"),
    ("astral-text-at-char-limit", "🙂" * MAX_TEXT_CHARS),  # 2000 code points, 4000 UTF-16 units
    ("private-use-and-replacement-chars", "\ue000\ufffd hello \U000f0000"),
]


@pytest.fixture(scope="module", autouse=True)
def record_bad_input_kinds() -> None:
    record("bad-input kinds tried (HTTP)", len(BAD_REQUESTS) + len(BAD_ROUTES) + len(UNUSUAL_TEXTS))


def send(server: Server, request: object) -> httpx.Response:
    if isinstance(request, bytes):
        request = Raw(request)
    if not isinstance(request, Raw):
        return server.post(request)
    content = request.body
    if request.chunked:  # an iterator: no Content-Length, Transfer-Encoding: chunked
        content = iter([request.body[i : i + (1 << 20)] for i in range(0, len(request.body), 1 << 20)])
    return httpx.post(f"{server.url}/predict", content=content, headers={"content-type": request.content_type}, timeout=30)


def error_text(body: object) -> str:
    """The error message and pydantic's detail messages of a JSON error body."""
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    details = body.get("detail") or []
    return " ".join([body["error"], *(d["msg"] for d in details if isinstance(d, dict))])


@pytest.mark.parametrize(("request_", "status", "says"), [r[1:] for r in BAD_REQUESTS], ids=[r[0] for r in BAD_REQUESTS])
def test_bad_request_gets_its_4xx_json_error_and_the_service_keeps_serving(
    cpu_server: Server, reference, request_: object, status: int, says: str, record_property
) -> None:
    started = time.monotonic()
    response = send(cpu_server, request_)
    elapsed = time.monotonic() - started
    content_type = response.headers.get("content-type", "")
    record_property("status", response.status_code)
    record_property("content_type", content_type)
    print(f"status={response.status_code} content-type={content_type} {elapsed:.2f}s body={response.text[:300]}")

    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text[:500]}"
    assert says in response.text, f"{says!r} not in {response.text[:500]}"
    assert elapsed < 15, f"{elapsed:.1f} s to answer"  # the 20 MB bodies included: no hang

    good = ok_json(cpu_server.post(GOOD))
    (expected,) = reference.classify([GOOD["text"]])
    assert_matches(good, expected.scores, expected.truncated)

    assert 400 <= response.status_code < 500
    assert content_type.startswith("application/json"), f"non-JSON error body ({content_type}): {response.text[:500]}"
    try:
        body = response.json()
    except json.JSONDecodeError:
        pytest.fail(f"error body is not JSON: {response.text[:500]}")
    assert says in error_text(body), body


@pytest.mark.parametrize(("method", "path", "status", "says"), [r[1:] for r in BAD_ROUTES], ids=[r[0] for r in BAD_ROUTES])
def test_unknown_route_or_method_gets_404_or_405_and_the_service_keeps_serving(
    cpu_server: Server, method: str, path: str, status: int, says: str, record_property
) -> None:
    response = httpx.request(method, f"{cpu_server.url}{path}", json=GOOD, timeout=30)
    record_property("status", response.status_code)
    record_property("content_type", response.headers.get("content-type", ""))
    print(f"status={response.status_code} content-type={response.headers.get('content-type')} body={response.text[:200]}")
    assert response.status_code == status, f"{response.status_code}: {response.text[:300]}"
    # Starlette's own answers, before any BentoML handler: plain text, not JSON.
    assert response.headers["content-type"].startswith("text/plain") and response.text == says
    if status == 405:
        assert response.headers["allow"] == "POST"
    ok_json(cpu_server.post(GOOD))


@pytest.mark.parametrize("text", [t for _, t in UNUSUAL_TEXTS], ids=[i for i, _ in UNUSUAL_TEXTS])
def test_unusual_but_valid_text_gets_a_prediction(cpu_server: Server, reference, text: str) -> None:
    prediction = ok_json(cpu_server.post({"text": text}))
    assert_prediction_shape(prediction)
    assert prediction["top_k"] is None
    # The text reached the model intact: the same answer as the in-process model on the same string.
    (expected,) = reference.classify([text])
    assert_matches(prediction, expected.scores, expected.truncated)


def test_unusual_but_valid_texts_in_one_batch_get_predictions_in_order(cpu_server: Server, reference) -> None:
    texts = [t for _, t in UNUSUAL_TEXTS][:MAX_BATCH_TEXTS]
    batch = ok_json(cpu_server.post({"texts": texts, "top_k": 2}))
    assert isinstance(batch, list) and len(batch) == len(texts)
    for prediction, expected in zip(batch, reference.classify(texts)):
        assert_prediction_shape(prediction)
        assert len(prediction["top_k"]) == 2
        assert_matches(prediction, expected.scores, expected.truncated)


def test_escaped_astral_characters_count_as_one_character_each(cpu_server: Server) -> None:
    """JSON spells an emoji as two escaped surrogates; the limit counts it once (2000, not 4000)."""
    body = json.dumps({"text": "🙂" * MAX_TEXT_CHARS}, ensure_ascii=True).encode()
    assert body.count(b"\\ud83d\\ude42") == MAX_TEXT_CHARS
    response = httpx.post(f"{cpu_server.url}/predict", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert_prediction_shape(ok_json(response))


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


def log_once_it_shows(server: Server, needle: str, offset: int = 0, seconds: float = 10) -> str:
    """The server's log from byte `offset` on, once `needle` is in it (BentoML writes it a moment
    after the answer)."""
    deadline = time.monotonic() + seconds
    while needle not in (text := server.log.read_bytes()[offset:].decode(errors="replace")):
        assert time.monotonic() < deadline, f"{needle!r} never appeared in the log:\n{text[-3000:]}"
        time.sleep(0.2)
    return text


def test_predict_is_access_logged_without_an_opentelemetry_span(cpu_server: Server) -> None:
    """With access_log on (cpu_server), each request gets its line; trace_requests is off by default:
    BentoML appends "(trace=...,span=...)" to the access log line of a request it built a span for,
    and a /predict line must have none."""
    body = '{"text": "hello world"}' + " " * 777  # a body length no other test sends: finds its line
    response = httpx.post(f"{cpu_server.url}/predict", content=body, headers={"content-type": "application/json"}, timeout=30)
    ok_json(response)
    mark = f"path=/predict,type=application/json,length={len(body)})"
    lines = [line for line in log_once_it_shows(cpu_server, mark).splitlines() if mark in line]
    assert "(status=200" in lines[-1]
    assert "trace=" not in lines[-1], lines[-1]


def test_no_access_log_by_default(default_server: Server) -> None:
    """access_log is off by default: a request leaves no line, while the one-line log of a bad request
    (written after it, by the same process) still appears."""
    offset = default_server.log.stat().st_size
    body = '{"text": "hello world"}' + " " * 778
    ok_json(httpx.post(f"{default_server.url}/predict", content=body, headers={"content-type": "application/json"}, timeout=30))
    assert default_server.post({"txt": "hello"}).status_code == 400
    new = log_once_it_shows(default_server, "Extra inputs are not permitted", offset)
    assert f"length={len(body)})" not in new and "path=/predict" not in new, new


def test_a_bad_request_is_logged_in_one_line_without_a_traceback(cpu_server: Server) -> None:
    """BentoML logs each 400 with a full traceback; the service logs one line naming the error."""
    offset = cpu_server.log.stat().st_size
    response = cpu_server.post({"txt": "hello"})
    assert response.status_code == 400
    new = log_once_it_shows(cpu_server, "Extra inputs are not permitted", offset)
    line = next(line for line in new.splitlines() if "Exception on /predict [POST]" in line)
    assert "validation error" in line and "Extra inputs are not permitted" in new, new
    assert "Traceback" not in new and "ERROR" not in line, new


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


def batch_totals(server: Server) -> tuple[float, float]:
    """Sum and count of the in-process batcher's histogram (textclf_batch_texts), over all workers:
    the texts run and the model runs."""
    metrics = scrape(server)
    return sum(v for _, v in metrics.get("textclf_batch_texts_sum", [])), sum(v for _, v in metrics.get("textclf_batch_texts_count", []))


async def burst(server: Server, texts: list[str]) -> list[httpx.Response]:
    """One single-text /predict request per text, all at once, each on its own connection."""
    limits = httpx.Limits(max_connections=len(texts), max_keepalive_connections=len(texts))
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(client.post("/predict", json={"text": t}) for t in texts))


def test_concurrent_requests_are_answered_correctly_and_batched(cpu_server: Server, reference) -> None:
    texts = [TEXTS[i % len(TEXTS)] for i in range(64)]
    expected = {text: reference.classify([text])[0] for text in TEXTS}
    texts_before, runs_before = batch_totals(cpu_server)

    responses = asyncio.run(burst(cpu_server, texts))
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * len(texts), {s: statuses.count(s) for s in set(statuses)}
    for text, response in zip(texts, responses):
        prediction = response.json()
        assert_prediction_shape(prediction)
        # Batched with other requests, so compared across batch compositions.
        assert_matches(prediction, expected[text].scores, expected[text].truncated, CROSS_BATCH_TOLERANCE)

    texts_after, runs_after = batch_totals(cpu_server)
    assert texts_after - texts_before == len(texts), "every text is counted once, in the run that served it"
    # Requests queued while the model ran went into its next run together.
    assert 1 <= runs_after - runs_before < len(texts), f"{len(texts)} requests made {runs_after - runs_before} model runs: not batched"


def test_two_workers_share_the_load_and_answer_right(tiny_export, reference, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The layout for more cores (workers: 2, one onnxruntime thread each): two HTTP worker processes,
    each with the model, and a burst spread over them is answered like the in-process model."""
    env = {"TEXTCLF_MODEL_NAME": "tiny", "TEXTCLF_WORKERS": "2", "TEXTCLF_INTRA_OP_THREADS": "1"}
    server = start_server("service:TextClassifier", env, tmp_path_factory.mktemp("logs") / "two-workers.log")
    try:
        tree = psutil.Process(server.process.pid).children(recursive=True)
        workers = [p for p in tree if "_bentoml_impl.worker.service" in " ".join(p.cmdline())]
        assert len(workers) == 2, [" ".join(p.cmdline()) for p in tree]
        texts = [TEXTS[i % len(TEXTS)] for i in range(64)]
        expected = {text: reference.classify([text])[0] for text in TEXTS}
        texts_before, _ = batch_totals(server)
        responses = asyncio.run(burst(server, texts))
        assert [r.status_code for r in responses] == [200] * len(texts)
        assert batch_totals(server)[0] - texts_before == len(texts)
        for text, response in zip(texts, responses):
            assert_matches(response.json(), expected[text].scores, expected[text].truncated, CROSS_BATCH_TOLERANCE)
    finally:
        stop_server(server)
