"""Every patch or workaround of BentoML internals, in one place, each checked against BentoML
CHECKED_AGAINST (tests/test_bentoml_compat.py fails on another version, and when a patch no longer
takes hold):

| module | what BentoML 1.4.39 does | upstream |
|---|---|---|
| batch_dispatch (patch) | its adaptive batcher keeps lone requests waiting ~200 ms after a burst | a target-latency knob was proposed in bentoml/BentoML#3630, not merged |
| client_error_logs (patch) | logs every 400 at ERROR with a 40-line traceback | none found |
| request_path (patch) | rebuilds the API method's local caller and binds `@inject` for the response headers on every request | none found |
| runner_calls | its runner client pools connections 15 s while the runner closes them after 5 s: a call can hit a closing one | bentoml/BentoML#4971, fix proposed in #5698 |
| shutdown_drain | on SIGTERM circus stops a runner together with the service calling it | none found |
| service_config | renews runner connection pools under calls in flight; builds tracing spans with no exporter; rebuilds an undeclared answer's JSON schema per call | bentoml/BentoML#4971 |
| in_worker | `bentoml serve`'s supervisor imports service.py too, only to read the config | none |

Only the GPU path has a runner service (the CPU model runs in the HTTP process,
textclf/core/local_model.py), so the runner workarounds are used by it alone. `apply()` installs
the three process-wide patches; service.py calls it once, in serving workers only (`in_worker`).
"""

from __future__ import annotations

import logging

import bentoml

from textclf.bentoml_compat.client_error_logs import BENTOML_ERROR_LOGGER, ClientErrorTracebacks, quiet_client_error_tracebacks

CHECKED_AGAINST = "1.4.39"


def in_worker() -> bool:
    """Whether this process serves: BentoML 1.4.39's worker script sets `server_context.worker_index`
    before it imports service.py. `bentoml serve`'s supervisor imports service.py only to read the
    services' config and serves nothing: without the patches (BentoML's dispatcher imports numpy)
    and without what only the model needs, it stays 16 MB smaller (91 -> 75 MB RSS)."""
    return bentoml.server_context.worker_index is not None


def apply() -> None:
    """Install the process-wide patches; idempotent."""
    from textclf.bentoml_compat import request_path
    from textclf.bentoml_compat.batch_dispatch import dispatch_without_waiting

    dispatch_without_waiting()
    quiet_client_error_tracebacks()
    request_path.build_once()


def patches_in_effect() -> dict[str, bool]:
    from textclf.bentoml_compat import request_path
    from textclf.bentoml_compat.batch_dispatch import waiting_is_off

    return {
        "batch_dispatch": waiting_is_off(),
        "client_error_logs": any(isinstance(f, ClientErrorTracebacks) for f in logging.getLogger(BENTOML_ERROR_LOGGER).filters),
        "request_path": request_path.in_effect(),
    }
