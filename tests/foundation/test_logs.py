"""shared.logs: JSON lines on stdout, request context, and redaction of every secret shape."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from shared.logs import (
    JsonFormatter,
    bind_request,
    configure_logging,
    current_request_id,
    current_trace_id,
    redact,
    reset_request,
)
from shared.web.endpoint import endpoint
from tests.support.asgi import asgi_app

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJyb2xlIjoic2VydmljZV9yb2xlIiwiaXNzIjoic3VwYWJhc2UifQ"
    ".dc_X5iR_VSFeZSiCt4qK1nIU5rUfJp3Kxk0dQ5A1bGk"
)
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")

log = logging.getLogger("tests.logs")


@pytest.fixture(autouse=True)
def _json_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("LOG_LEVEL", "GOOGLE_CLOUD_PROJECT", "K_SERVICE", "FUNCTION_TARGET"):
        monkeypatch.delenv(name, raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging()
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = capsys.readouterr().out
    parsed = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [p for p in parsed if not p["logger"].startswith(("httpx", "httpcore"))]


def one(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    (line,) = lines(capsys)
    return line


def our_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)]


# --------------------------------------------------------------------------------------------
# configure_logging
# --------------------------------------------------------------------------------------------


def test_configure_logging_is_idempotent() -> None:
    configure_logging()
    configure_logging()
    assert len(our_handlers()) == 1
    assert logging.getLogger().level == logging.INFO


def test_level_from_env_and_explicit_level_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    for handler in our_handlers():
        root.removeHandler(handler)
    monkeypatch.setenv("LOG_LEVEL", "debug")
    configure_logging()
    assert root.level == logging.DEBUG
    configure_logging("WARNING")
    assert root.level == logging.WARNING
    # An implicit call (endpoint() makes one) must not undo an explicit level.
    configure_logging()
    assert root.level == logging.WARNING
    assert len(our_handlers()) == 1


def test_one_json_object_per_line_with_cloud_logging_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log.info("meter %s read", 42)
    line = one(capsys)
    assert line["severity"] == "INFO"
    assert line["message"] == "meter 42 read"
    assert line["logger"] == "tests.logs"
    assert RFC3339_UTC.fullmatch(line["time"])
    stamp = dt.datetime.fromisoformat(line["time"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.UTC) - stamp).total_seconds()) < 60
    assert "requestId" not in line and "logging.googleapis.com/trace" not in line
    assert "function" not in line


def test_multiline_message_stays_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    log.warning("first\nsecond")
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out)["message"] == "first\nsecond"


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        (logging.DEBUG, "DEBUG"),
        (logging.INFO, "INFO"),
        (logging.WARNING, "WARNING"),
        (logging.ERROR, "ERROR"),
        (logging.CRITICAL, "CRITICAL"),
        (25, "INFO"),
    ],
)
def test_severity(level: int, severity: str, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG")
    log.log(level, "x")
    assert one(capsys)["severity"] == severity


def test_debug_is_dropped_at_default_level(capsys: pytest.CaptureFixture[str]) -> None:
    log.debug("noise")
    assert lines(capsys) == []


@pytest.mark.parametrize("var", ["K_SERVICE", "FUNCTION_TARGET"])
def test_function_name_from_env(
    var: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(var, "meter-readings")
    log.info("x")
    assert one(capsys)["function"] == "meter-readings"


def test_fields_are_merged_but_cannot_override_standard_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    when = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    log.info(
        "saved",
        extra={
            "fields": {
                "site": "Kaolack",
                "kwh": Decimal("1.50"),
                "at": when,
                "ratio": float("nan"),
                "tags": ("a", "b"),
                "severity": "DEBUG",
            }
        },
    )
    line = one(capsys)
    assert line["severity"] == "INFO"
    assert line["site"] == "Kaolack"
    assert line["kwh"] == "1.50"
    assert line["at"] == "2024-05-01T00:00:00+00:00"
    assert line["ratio"] == "nan"
    assert line["tags"] == ["a", "b"]


def test_exception_is_rendered_as_stack_trace(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        raise RuntimeError("sync failed")
    except RuntimeError:
        log.exception("tariff sync failed")
    line = one(capsys)
    assert line["severity"] == "ERROR"
    assert line["message"] == "tariff sync failed"
    assert line["stack_trace"].startswith("Traceback (most recent call last)")
    assert line["stack_trace"].rstrip().endswith("RuntimeError: sync failed")


def test_broken_format_args_do_not_lose_the_line() -> None:
    # Called on the formatter directly: pytest's own capture handler would raise first.
    record = log.makeRecord(log.name, logging.INFO, __file__, 1, "%d readings", ("x",), None)
    assert "readings" in json.loads(JsonFormatter().format(record))["message"]


# --------------------------------------------------------------------------------------------
# Request context
# --------------------------------------------------------------------------------------------


def test_bind_and_reset_request(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = bind_request("req-1", "abc123")
    assert (current_request_id(), current_trace_id()) == ("req-1", "abc123")
    log.info("inside")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "nxt-prod")
    log.info("inside with project")
    reset_request(token)
    assert current_request_id() is None
    log.info("outside")
    inside, with_project, outside = lines(capsys)
    assert inside["requestId"] == "req-1"
    assert inside["logging.googleapis.com/trace"] == "abc123"
    assert with_project["logging.googleapis.com/trace"] == "projects/nxt-prod/traces/abc123"
    assert "requestId" not in outside


def test_request_context_is_per_task(capsys: pytest.CaptureFixture[str]) -> None:
    async def work(request_id: str) -> None:
        token = bind_request(request_id, None)
        try:
            await asyncio.sleep(0)
            log.info("work")
            await asyncio.sleep(0)
            log.info("work")
        finally:
            reset_request(token)

    async def main() -> None:
        await asyncio.gather(work("a"), work("b"))

    asyncio.run(main())
    output = lines(capsys)
    assert sorted(line["requestId"] for line in output) == ["a", "a", "b", "b"]
    assert all("logging.googleapis.com/trace" not in line for line in output)


def test_request_id_is_bound_inside_an_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    @endpoint(["GET"])
    async def handler(request: Request) -> dict[str, Any]:
        logging.getLogger("meters").info("looking up meter")
        return {}

    app = asgi_app(handler)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/", headers={"X-Request-Id": "abc-123"})

    response = asyncio.run(call())
    handler_line, access_line = lines(capsys)
    assert handler_line["message"] == "looking up meter"
    assert handler_line["requestId"] == "abc-123" == response.headers["x-request-id"]
    assert access_line["requestId"] == "abc-123"
    assert current_request_id() is None


# --------------------------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"token {JWT} expired", "token [redacted] expired"),
        (f"apikey={JWT}&x=1", "apikey=[redacted]&x=1"),
        ("Authorization: Bearer abc.def-123", "Authorization: Bearer [redacted]"),
        ("header 'bearer s3cr3t' rejected", "header 'bearer [redacted]' rejected"),
        ("key nxt_ab12CD34_Zx9-secret_part used", "key nxt_ab12CD34_[redacted] used"),
        ("?key=nxt_ab12CD34_Zx9secret&page=2", "?key=nxt_ab12CD34_[redacted]&page=2"),
        ("sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz", "sb_secret_[redacted]"),
        ("anon sb_publishable_ZGVtbw_abc.", "anon sb_publishable_[redacted]"),
        (
            "postgresql://postgres.ref:s3cr3t@aws-0.pooler.supabase.com:6543/postgres",
            "postgresql://postgres.ref:***@aws-0.pooler.supabase.com:6543/postgres",
        ),
        ("postgres://u:p@ss@db/x", "postgres://u:***@db/x"),
        (
            "host=db port=5432 user=app password=hunter2 sslmode=require",
            "host=db port=5432 user=app password=*** sslmode=require",
        ),
        ("password = 'with space' dbname=x", "password = *** dbname=x"),
        ("PGPASSWORD=hunter2 psql", "PGPASSWORD=*** psql"),
        ('{"password": "hunter2", "user": "app"}', '{"password": "[redacted]", "user": "app"}'),
        ("{'api_key': 'k1', 'site': 'x'}", "{'api_key': '[redacted]', 'site': 'x'}"),
    ],
)
def test_redact_rules(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "meter 42 read 12.5 kWh at 2024-05-01T00:00:00Z",
        "https://api.example.com:8443/v1/readings?page=2",
        "postgresql://app@db:5432/nxt",
        "contact ops@example.com",
        "nxt_cli migrate --to head",
        "the passwords table",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_redaction_applies_to_message_stack_trace_and_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        raise ConnectionError("could not connect to postgresql://app:hunter2@db/nxt")
    except ConnectionError:
        log.exception(
            "login with Bearer %s failed",
            JWT,
            extra={
                "fields": {
                    "note": "used nxt_ab12cd34_livesecret",
                    "nested": {"url": "postgresql://app:hunter2@db/nxt", "list": [f"x {JWT}"]},
                }
            },
        )
    raw = capsys.readouterr().out
    for secret in ("hunter2", "livesecret", JWT, JWT.split(".")[2]):
        assert secret not in raw
    line = json.loads(raw)
    assert line["message"] == "login with Bearer [redacted] failed"
    assert "postgresql://app:***@db/nxt" in line["stack_trace"]
    assert line["note"] == "used nxt_ab12cd34_[redacted]"
    assert line["nested"] == {"url": "postgresql://app:***@db/nxt", "list": ["x [redacted]"]}


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_password",
        "client_secret",
        "refresh_token",
        "apikey",
        "api_key",
        "x-api-key",
        "Authorization",
        "cookie",
        "set-cookie",
        "dsn",
        "DATABASE_URL",
    ],
)
def test_secret_looking_field_keys_are_redacted(
    key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    log.info("config", extra={"fields": {key: "plain-looking-value", "site": "ok"}})
    line = one(capsys)
    assert line[key] == "[redacted]"
    assert line["site"] == "ok"


def test_secret_keys_are_redacted_at_any_depth_whatever_the_value_type(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log.info("h", extra={"fields": {"headers": {"Cookie": {"sid": 1}, "accept": "json"}}})
    assert one(capsys)["headers"] == {"Cookie": "[redacted]", "accept": "json"}


def test_logs_module_imports_no_pydantic_or_psycopg() -> None:
    code = (
        "import sys, shared.logs, shared.web.endpoint; "
        "heavy = [m for m in ('pydantic', 'psycopg', 'psycopg_pool', 'uuid', 'decimal') "
        "if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
