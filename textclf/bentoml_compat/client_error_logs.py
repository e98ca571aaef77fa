"""One log line, not a traceback, for a request BentoML answers with a 4xx.

BentoML 1.4.39 logs every 400 it makes from a validation error (and every other 4xx it raises as a
BentoMLException) at ERROR level with the full traceback (`log_exception` in
`_bentoml_impl/server/app.py`): some 40 lines for a client's typo, and a cheap way for a client to
flood the log. The filter keeps the line, at WARNING, with what was wrong and without the traceback;
server errors (5xx) keep theirs.
"""

from __future__ import annotations

import logging

from bentoml.exceptions import BentoMLException
from pydantic import ValidationError

BENTOML_ERROR_LOGGER = "bentoml._internal.server.http_app"  # where `log_exception` writes
MAX_SUMMARY_CHARS = 500


def client_error(exception: BaseException | None) -> bool:
    if isinstance(exception, ValidationError):
        return True  # BentoML answers these with 400
    return isinstance(exception, BentoMLException) and int(exception.error_code) < 500


def describe(exception: BaseException) -> str:
    """What was wrong, on one line and bounded: for a validation error the field names and pydantic's
    messages (which do not quote the input); for another 4xx, BentoML's message."""
    if isinstance(exception, ValidationError):
        problems = (f"{'.'.join(map(str, e['loc']))[:80]!r}: {e['msg']}" for e in exception.errors(include_url=False, include_input=False))
        text = f"{exception.error_count()} validation error(s) for {exception.title}: " + "; ".join(problems)
    else:
        text = str(exception) or type(exception).__name__
    return " ".join(text.split())[:MAX_SUMMARY_CHARS]


class ClientErrorTracebacks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exception = record.exc_info[1] if record.exc_info else None
        if client_error(exception):
            record.msg, record.args = f"{record.getMessage()}: {describe(exception)}", ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


def quiet_client_error_tracebacks() -> None:
    """Install the filter once per process (service.py runs at import in every worker)."""
    logger = logging.getLogger(BENTOML_ERROR_LOGGER)
    if not any(isinstance(f, ClientErrorTracebacks) for f in logger.filters):
        logger.addFilter(ClientErrorTracebacks())
