"""Libraries log through the standard library; their exceptions must reach our JSON lines readable."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from runtime.logging import configure_logging


def test_a_librarys_logged_exception_keeps_its_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("tests")
        try:
            raise TimeoutError("fetch ran out of time")
        except TimeoutError:
            logging.getLogger("faststream").exception("Task-1 raised an exception, retrying...")
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
    record = json.loads(line)
    assert record["service"] == "tests" and record["logger"] == "faststream"
    assert "Traceback" in record["exception"] and "TimeoutError: fetch ran out of time" in record["exception"]
