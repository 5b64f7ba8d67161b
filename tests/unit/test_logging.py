"""Libraries log through the standard library; their exceptions must reach our JSON lines readable."""

from __future__ import annotations

import json
import logging
import sys

import structlog

from runtime.logging import configure_logging


def test_a_librarys_logged_exception_keeps_its_traceback() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("tests")
        formatter = root.handlers[0].formatter
        assert formatter is not None
        try:
            raise TimeoutError("fetch ran out of time")
        except TimeoutError:
            record = logging.LogRecord(
                "faststream", logging.ERROR, __file__, 1, "Task-1 raised an exception", None, sys.exc_info()
            )
        line = json.loads(formatter.format(record))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
    assert line["service"] == "tests" and line["logger"] == "faststream"
    assert "Traceback" in line["exception"] and "TimeoutError: fetch ran out of time" in line["exception"]
