"""Every log line goes through the gateway's handler: one format, one set of levels, and
phone numbers masked whoever wrote the line (a library's logger included)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from aiosmpplib.log import StructuredLogger

from gateway import logs

NUMBER = "13812345678"


@pytest.fixture
def configured() -> Iterator[None]:
    """logs.configure for one test; the logging set-up before it comes back after."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.setLevel(saved[0])
        for handler in saved[1]:
            root.addHandler(handler)


def test_numbers_are_masked_in_the_message_its_arguments_and_the_traceback(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("INFO", "text")
    log = logging.getLogger("minyi.test")
    log.warning("to %s in text 86%s", NUMBER, NUMBER)
    try:
        raise ValueError(f"bad number {NUMBER}")
    except ValueError:
        log.exception("failed for %s", NUMBER)
    err = capsys.readouterr().err
    assert NUMBER not in err and "138****5678" in err
    assert "ValueError: bad number 138****5678" in err


def test_json_lines_are_masked_too(configured: None, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", "json")
    try:
        raise RuntimeError(NUMBER)
    except RuntimeError:
        logging.getLogger("minyi.test").exception("x %s", NUMBER)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["message"] == "x 138****5678"
    assert NUMBER not in lines[0]["exc"] and "138****5678" in lines[0]["exc"]


def test_a_library_logger_with_its_own_handler_goes_through_the_gateways(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    library = logging.getLogger("some.library")
    own = logging.StreamHandler()
    library.addHandler(own)
    library.propagate = False
    try:
        logs.configure("INFO", "json")
        library.warning("sending to %s", NUMBER)
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1  # once, by the gateway's handler, not by its own
        line = json.loads(lines[0])
        assert line["logger"] == "some.library" and line["message"] == "sending to 138****5678"
        assert own not in library.handlers
    finally:
        library.removeHandler(own)
        library.propagate = True


def test_aiosmpplibs_structured_logger_is_adopted_level_format_and_masking(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("INFO", "json")
    # what aiosmpplib's ESME builds: a Logger outside getLogger, with a stderr handler
    esme = StructuredLogger("esmeb1", logging.ERROR, {"client_id": "b1"})
    logs.adopt(esme, "aiosmpplib")
    esme.info("a PDU at info", pdu=NUMBER)  # under the "aiosmpplib" level: dropped
    try:
        raise ConnectionResetError(f"lost while sending to {NUMBER}")
    except ConnectionResetError:
        esme.exception("SMPP message could not be sent", message={"number": NUMBER, "text": "您好"})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["logger"] == "esmeb1" and line["level"] == "error"
    assert line["message"] == "SMPP message could not be sent"  # the dump is cut
    assert NUMBER not in lines[0] and "您好" not in lines[0]
    assert "138****5678" in line["exc"]
