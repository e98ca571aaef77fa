"""textclf/bentoml_compat/request_path.py: the local caller BentoML rebuilds per request is built
once per instance and still fills in the defaults. The response headers it writes through the
other patched method are checked on the service itself (tests/test_asgi.py): a second BentoML app
in one process would register BentoML's metrics twice."""

from __future__ import annotations

import bentoml

from textclf.bentoml_compat import request_path


@bentoml.service
class Echo:
    @bentoml.api
    def shout(self, text: str, times: int = 2) -> str:
        return text.upper() * times


def test_the_local_caller_is_built_once_per_instance() -> None:
    request_path.build_once()
    request_path.build_once()  # idempotent
    assert request_path.in_effect()
    instance, other = Echo.inner(), Echo.inner()
    assert getattr(instance, "shout").local is getattr(instance, "shout").local  # BentoML builds a new one per access
    assert getattr(other, "shout").local is not getattr(instance, "shout").local
    assert instance.shout("hi") == "HIHI" and instance.shout("hi", times=1) == "HI" and other.shout("a", 3) == "AAA"
