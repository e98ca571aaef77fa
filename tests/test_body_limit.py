"""textclf.api.body_limit.BodyLimit, driven as a plain ASGI app: which requests reach the service, which
get a 413 or 415 JSON answer, and that nothing is read beyond what the limit needs."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest

from textclf.api.body_limit import BodyLimit, max_request_bytes
from textclf.config import ServingSettings

SMALL = ServingSettings(max_text_chars=10, max_batch_texts=2)
LIMIT = max_request_bytes(SMALL)


@dataclass
class Exchange:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    app_called: bool = False
    app_body: bytes | None = None
    reads: int = 0  # receive() calls the middleware and the app made

    def json(self) -> object:
        return json.loads(self.body)


def run(
    chunks: list[bytes],
    headers: dict[str, str] | None = None,
    *,
    path: str = "/predict",
    method: str = "POST",
    content_length: bool = True,
    disconnect: bool = False,
) -> Exchange:
    """One request through BodyLimit(app) where `app` reads the whole body and answers 200."""
    exchange = Exchange()
    headers = {"content-type": "application/json"} if headers is None else headers
    if content_length:
        headers = headers | {"content-length": str(sum(map(len, chunks)))}
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
    }
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    if disconnect:
        messages = messages[:-1] + [{"type": "http.disconnect"}]

    async def receive() -> dict:
        exchange.reads += 1
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            exchange.status = message["status"]
            exchange.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        else:
            exchange.body += message.get("body", b"")

    async def app(scope: dict, receive, send) -> None:
        exchange.app_called = True
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        exchange.app_body = body
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})

    asyncio.run(BodyLimit(app, SMALL)(scope, receive, send))
    return exchange


def assert_refused(exchange: Exchange, status: int, says: str) -> None:
    assert exchange.status == status
    assert exchange.headers["content-type"] == "application/json"
    body = exchange.json()
    assert isinstance(body, dict) and says in body["error"], body
    assert not exchange.app_called


@pytest.mark.parametrize("size", [0, 1, LIMIT // 2, LIMIT])
def test_json_bodies_up_to_the_limit_reach_the_service_whole(size: int) -> None:
    body = b"x" * size
    exchange = run([body])
    assert exchange.status == 200 and exchange.app_body == body


def test_a_content_length_over_the_limit_is_413_before_reading_the_body() -> None:
    exchange = run([b"x" * (LIMIT + 1)])
    assert_refused(exchange, 413, f"request body of {LIMIT + 1} bytes is over the limit of {LIMIT} bytes")
    assert "(at most 2 texts of at most 10 characters)" in exchange.json()["error"]
    assert exchange.reads == 0


def test_a_chunked_body_under_the_limit_is_handed_on_whole() -> None:
    chunks = [b"a" * (LIMIT // 3), b"b" * (LIMIT // 3), b"c" * (LIMIT - 2 * (LIMIT // 3))]
    exchange = run(chunks, content_length=False)
    assert exchange.status == 200 and exchange.app_body == b"".join(chunks)


def test_a_chunked_body_over_the_limit_is_413_and_read_no_further() -> None:
    chunks = [b"a" * (LIMIT // 2 + 1)] * 4
    exchange = run(chunks, content_length=False)
    assert_refused(exchange, 413, f"over the limit of {LIMIT} bytes")
    assert exchange.reads == 2  # the chunk that crossed the limit was the last one read


def test_a_client_gone_while_sending_a_chunked_body_is_not_passed_on() -> None:
    exchange = run([b"a" * 10, b"b" * 10], content_length=False, disconnect=True)
    assert not exchange.app_called and exchange.status == 0


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=XYZ",
        "multipart/form-data",
        "application/octet-stream",
        "application/vnd.bentoml+pickle",
        "application/jsonx",
    ],
)
def test_a_body_that_is_not_json_is_415_naming_its_type(content_type: str) -> None:
    exchange = run([b'{"text": "hello"}'], {"content-type": content_type})
    assert_refused(exchange, 415, f"not {content_type.split(';')[0]}")
    assert "application/json" in exchange.json()["error"]


@pytest.mark.parametrize(
    "headers",
    [{"content-type": "application/json; charset=utf-8"}, {"content-type": "Application/JSON"}, {"content-type": ""}, {}],
    ids=["charset", "upper-case", "empty", "none"],
)
def test_json_or_no_content_type_is_let_through(headers: dict[str, str]) -> None:
    exchange = run([b'{"text": "hello"}'], headers)
    assert exchange.status == 200 and exchange.app_body == b'{"text": "hello"}'


@pytest.mark.parametrize(("method", "path"), [("POST", "/other"), ("GET", "/predict"), ("PUT", "/predict")])
def test_other_routes_and_methods_are_not_its_business(method: str, path: str) -> None:
    exchange = run([b"x" * (LIMIT + 1)], {"content-type": "text/plain"}, method=method, path=path)
    assert exchange.status == 200 and exchange.app_called


def test_lifespan_and_websocket_scopes_pass_through() -> None:
    seen = []

    async def app(scope, receive, send) -> None:
        seen.append(scope["type"])

    middleware = BodyLimit(app, SMALL)
    for scope in ({"type": "lifespan"}, {"type": "websocket", "path": "/predict", "headers": []}):
        asyncio.run(middleware(scope, None, None))
    assert seen == ["lifespan", "websocket"]


@pytest.mark.parametrize("indent", [None, 2])
def test_the_computed_limit_admits_the_longest_valid_request(indent: int | None) -> None:
    """A full batch of the longest texts, each character an emoji escaped as two surrogates."""
    settings = ServingSettings(max_text_chars=2000, max_batch_texts=8)  # the cpu_server fixture's
    request = {"texts": ["🙂" * settings.max_text_chars] * settings.max_batch_texts, "top_k": 10**9}
    body = json.dumps(request, ensure_ascii=True, indent=indent).encode()
    assert body.count(b"\\ud83d\\ude42") == settings.max_text_chars * settings.max_batch_texts
    assert len(body) <= max_request_bytes(settings)
    # And it is not absurdly generous: well under twice that body.
    assert max_request_bytes(settings) < 2 * len(body)


def test_the_served_limits_give_a_limit_of_megabytes_not_gigabytes() -> None:
    served = max_request_bytes(ServingSettings())  # the defaults, also configs/serving.yaml's: 20,000 chars x 64 texts
    assert 15_000_000 < served < 16_000_000
    tests = max_request_bytes(ServingSettings(max_text_chars=2000, max_batch_texts=8))  # the cpu_server fixture
    assert tests < 1_000_000
