"""Structured JSON logs (structlog) with the correlation id bound per request or event."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# A websocket client may pass its access token in the query string, which servers log with the path.
SECRET_IN_QUERY = re.compile(r"((?:access_|refresh_)?token|key|secret)=[^&\s\"']+", re.IGNORECASE)


def redact_secrets(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    message = event_dict.get("event")
    if isinstance(message, str) and "=" in message:
        event_dict["event"] = SECRET_IN_QUERY.sub(r"\1=<redacted>", message)
    return event_dict


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries that log through the standard library end up in the same JSON stream.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def redact_url(url: str) -> str:
    """A connection URL fit for a log line or an error message: its password (or a NATS token, the
    user part alone) replaced by `***`; a comma-separated list of servers, each of them."""
    from urllib.parse import urlsplit, urlunsplit

    if "," in url:
        return ",".join(redact_url(one) for one in url.split(","))
    try:
        parts = urlsplit(url)
        if parts.password is not None:
            userinfo = f"{parts.username}:***"
        elif parts.username is not None and parts.scheme.startswith(("nats", "tls")):
            userinfo = "***"
        else:
            return url
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc.rpartition('@')[2]}"))
    except ValueError:
        return "<unparseable url>"
