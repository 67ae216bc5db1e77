"""Structured logs: JSON lines in production, readable console lines in development."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TextIO

import structlog


def configure_logging(
    level: str = "INFO",
    *,
    json: bool = True,
    extra_processors: Sequence[structlog.types.Processor] = (),
    stream: TextIO | None = None,
) -> None:
    """Route structlog and the standard library's logging through one JSON renderer.

    Services log to standard output; one-shot commands pass standard error, so what they
    print (a client's secret, a document) can be piped on its own.
    """
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        *extra_processors,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.types.Processor = (
        # Vietnamese names stay readable in the logs.
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    # The renderer writes none of what the standard library gathers for every record by
    # default (thread, process, the caller's file and line: a walk up the stack), and
    # the service logs a line per request.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The access log is the application's own event (`http.access`: route template, duration,
    # client, request id); uvicorn's preformatted line would repeat it without them. Off
    # whatever uvicorn was told, so uvicorn does not even format its arguments per request.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
