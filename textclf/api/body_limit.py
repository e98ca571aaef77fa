"""What request bodies /predict admits, checked before BentoML reads them: JSON, and at most a size
computed from the request limits.

BentoML 1.4.39 reads any body whole before validating it (a 100 MB body cost its HTTP worker ~5 s
and ~400 MB of memory before the 400; a few GB would get it killed), parses any media type it does
not know as JSON, takes form and multipart bodies as an alternative encoding, and answers a
malformed multipart body with a 500. This ASGI middleware answers those requests itself, with a
JSON error in the style of the service's other 4xx answers:

- 415 when the content type is not application/json (a request without one, or with an empty one,
  is taken as JSON, as BentoML does);
- 413 when the body is longer than `max_request_bytes(settings)`: by its Content-Length, before
  reading any of it, or while reading a chunked body.

Installed on a BentoML service with `Service.add_asgi_middleware(BodyLimit, settings=SETTINGS)`.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from textclf.api.errors import PayloadTooLarge, UnsupportedMediaType, error_response
from textclf.config import ServingSettings

# The longest JSON spelling of one character is 12 bytes: an astral character (an emoji) written as
# two escaped surrogates, "\ud83d\ude42"; it counts as one character against max_text_chars.
MAX_BYTES_PER_CHAR = 12
PER_TEXT_OVERHEAD = 8  # quotes, comma, a space
SLACK = 64 * 1024  # the keys, top_k, whitespace and anything a JSON encoder adds


def max_request_bytes(settings: ServingSettings) -> int:
    """The longest body a valid request can need: a full batch of the longest texts, all escaped."""
    return settings.max_batch_texts * (settings.max_text_chars * MAX_BYTES_PER_CHAR + PER_TEXT_OVERHEAD) + SLACK


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _media_type(scope: Scope) -> str | None:
    value = _header(scope, b"content-type")
    return None if value is None else value.split(";", 1)[0].strip().lower()


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


class BodyLimit:
    def __init__(self, app: ASGIApp, settings: ServingSettings, paths: Iterable[str] = ("/predict",)) -> None:
        self.app = app
        self.max_bytes = max_request_bytes(settings)
        self.limits = f"at most {settings.max_batch_texts} texts of at most {settings.max_text_chars} characters"
        self.paths = frozenset(paths)

    def _too_large(self, size: int | None) -> JSONResponse:
        got = f" of {size} bytes" if size is not None else ""
        return error_response(PayloadTooLarge(f"request body{got} is over the limit of {self.max_bytes} bytes ({self.limits})"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        media_type = _media_type(scope)
        if media_type not in (None, "", "application/json"):
            response = error_response(UnsupportedMediaType(f"the body must be JSON sent as content-type application/json, not {media_type}"))
            await response(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            await self._too_large(length)(scope, receive, send)
            return
        if length is not None:
            # The server stops the body at Content-Length: nothing more to count.
            await self.app(scope, receive, send)
            return
        # A body without Content-Length (chunked): read it, up to the limit, then hand it on.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(None)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)
