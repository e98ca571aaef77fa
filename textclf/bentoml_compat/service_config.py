"""BentoML service configuration that works around what BentoML 1.4.39 does by default."""

from __future__ import annotations

import re
from typing import Annotated, Any

from bentoml.validators import ContentType

from textclf.config import ServingSettings

# BentoML's client of a runner service renews its connection pool every 100 requests or 300 s and
# closes the old pool with calls still in flight on it (they hang until the timeout or fail:
# bentoml/BentoML#4971). Between two local processes nothing is gained by renewing it.
RUNNER_CONNECTION = {"runner_connection": {"max_requests": 2**31 - 1, "max_age": 1e9}}


def untraced(settings: ServingSettings, *routes: str) -> dict[str, Any]:
    """Service config that keeps OpenTelemetry off `routes` unless `trace_requests` is set.

    BentoML builds spans for every request (one per request, one per ASGI message sent) even when no
    exporter is configured, which is its default: 1.4 ms CPU per answer across two processes at
    concurrency 32, about a tenth of the serving CPU. Whoever configures an exporter turns them on."""
    if settings.trace_requests:
        return {}
    return {"tracing": {"excluded_urls": [re.escape(route) + r"(\?|$)" for route in routes]}}


def json_list(item: type) -> Any:
    """A list answer with its media type declared: for an undeclared one BentoML rebuilds the
    answer's JSON schema on every call to find it (a fifth of a runner's event-loop time at c=32)."""
    return Annotated[list[item], ContentType("application/json")]
