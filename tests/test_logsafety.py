"""Masked, bounded, rate-limited logs (issue 9 point 6; issue 8 point 6's logging error)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from triage import logsafety
from triage.logsafety import MaskingFilter, RateLimitFilter, mask_record, mask_text

CPR = "0101901234"


@pytest.fixture
def stream() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A private logger writing through a plain handler with the masking filter."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger(f"test.logsafety.{id(out)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield logger, out
    logger.removeHandler(handler)


@pytest.mark.parametrize(("text", "masked"), [
    (f"GET /v1/cases?cpr={CPR} HTTP/1.1", "GET /v1/cases?cpr=010190-**** HTTP/1.1"),
    (f"X-Cpr: {CPR}", "X-Cpr: 010190-****"),
    ("010190-1234 and 010190 1234", "010190-**** and 010190-****"),
    ("id 12345678901 is eleven digits", "id 12345678901 is eleven digits"),
])
def test_mask_text(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_exception_text_and_traceback_are_masked(stream) -> None:
    logger, out = stream
    try:
        raise ValueError(f"Invalid header value: X-Cpr {CPR}")
    except ValueError:
        logger.exception("Error handling request from %s", f"peer {CPR}")
    text = out.getvalue()
    assert "Traceback" in text and "ValueError: Invalid header value: X-Cpr 010190-****" in text
    assert CPR not in text


def test_a_huge_message_and_traceback_are_cut(stream) -> None:
    logger, out = stream
    body = "x" * 10_000_000  # a 10 MB body echoed into an error message
    try:
        raise RuntimeError(body)
    except RuntimeError:
        logger.error("bad request: %s", body, exc_info=True)
    assert len(out.getvalue()) < 12_000
    assert "more characters not logged" in out.getvalue()


def test_a_record_whose_arguments_do_not_fit_its_format_is_logged_not_a_logging_error(
        stream, capsys) -> None:
    logger, out = stream
    logger.info("no placeholders here", None)
    logger.info("one %s and %d", "only")
    assert "--- Logging error ---" not in capsys.readouterr().err
    assert "no placeholders here (None,)" in out.getvalue()


def test_the_casesystem_clients_httpx_filter_works_with_modes_formatter(capsys) -> None:
    """Issue 8 point 6: every uncached lookup wrote "--- Logging error ---" (TypeError: not all
    arguments converted): the old filter set ``args = None``, which mode's formatter wraps
    into ``(None,)``. The worker's log handler uses that formatter; so does this test."""
    from mode.utils.logging import ExtensionFormatter

    import connectors.casesystem.client  # noqa: F401  (installs the httpx filter)

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(ExtensionFormatter(stream=out, fmt="%(message)s"))
    httpx_logger = logging.getLogger("httpx")
    httpx_logger.addHandler(handler)
    old_level = httpx_logger.level
    httpx_logger.setLevel(logging.INFO)
    try:
        httpx_logger.info('HTTP Request: %s %s "%s %d %s"', "GET",
                          f"http://127.0.0.1:8080/v1/cases?cpr={CPR}", "HTTP/1.1", 200, "OK")
    finally:
        httpx_logger.removeHandler(handler)
        httpx_logger.setLevel(old_level)
    assert "--- Logging error ---" not in capsys.readouterr().err
    assert out.getvalue().strip() == ('HTTP Request: GET http://127.0.0.1:8080/v1/cases?'
                                      'cpr=010190-**** "HTTP/1.1 200 OK"')


def test_the_record_factory_masks_records_for_handlers_added_later() -> None:
    previous = logging.getLogRecordFactory()
    try:
        logsafety.install_record_factory()
        logsafety.install_record_factory()  # idempotent: not wrapped twice
        out = io.StringIO()
        handler = logging.StreamHandler(out)  # no filter at all
        logger = logging.getLogger("test.logsafety.factory")
        logger.propagate = False
        logger.addHandler(handler)
        try:
            raise OSError(f"peer sent {CPR}")
        except OSError:
            logger.error("request line: GET /?cpr=%s", CPR, exc_info=True)
        logger.removeHandler(handler)
    finally:
        logging.setLogRecordFactory(previous)
    assert "010190-****" in out.getvalue() and CPR not in out.getvalue()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_bounds_a_flood_and_says_how_much_it_dropped() -> None:
    clock = FakeClock()
    limiter = RateLimitFilter(burst=5, period=60.0, total_burst=100, clock=clock)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(limiter)
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("test.logsafety.flood")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for i in range(7158):  # the broker-outage flood of issue 9, in one burst
            logger.error("Unable to connect to node %s", i)
        logger.warning("another kind of line")
        assert len(out.getvalue().splitlines()) == 6
        clock.now = 60.0  # a minute later the kind may speak again
        logger.error("Unable to connect to node %s", "again")
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines[-1] == "[7153 similar lines suppressed] Unable to connect to node again"
    assert limiter.suppressed == 7153


def test_the_total_budget_bounds_many_distinct_kinds() -> None:
    limiter = RateLimitFilter(burst=5, period=60.0, total_burst=50, clock=FakeClock())
    records = [logging.LogRecord("x", logging.ERROR, __file__, 1, f"kind {i}", (), None)
               for i in range(1000)]
    passed = sum(limiter.filter(mask_record(r)) for r in records)
    assert passed == 50
