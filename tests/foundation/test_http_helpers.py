"""shared.web driven through functions-framework's real ASGI app (routes + middleware)."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import json
import logging
import re
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import psycopg_pool
import pytest
from functions_framework.aio import create_asgi_app
from pydantic import BaseModel, Field, TypeAdapter
from starlette.requests import Request
from starlette.responses import Response

from shared.logs import current_request_id
from shared.web.bodies import parse_body, read_json
from shared.web.cors import CORS_ALLOW_HEADERS
from shared.web.endpoint import endpoint
from shared.web.errors import Conflict, Unauthorized
from shared.web.params import parse_query
from shared.web.responses import error_response, json_response, to_json
from shared.web.validation import validation_message
from tests.support.asgi import asgi_app

HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    # endpoint() installs the JSON stdout handler on the root logger; undo it per test.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


class Client:
    """Synchronous face over ``httpx.AsyncClient`` + ``ASGITransport``, so tests stay plain.

    (Starlette's Client is deprecated with httpx 0.28.)
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, url: str = "/", **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return await c.request(method, url, **kwargs)

        return asyncio.run(send())

    def get(self, url: str = "/", **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str = "/", **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str = "/", **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str = "/", **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str = "/", **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def options(self, url: str = "/", **kwargs: Any) -> httpx.Response:
        return self.request("OPTIONS", url, **kwargs)


def client_for(handler: Callable[..., Any]) -> Client:
    """The app functions-framework serves for an ``http`` function, in-process."""
    return Client(asgi_app(handler))


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Our JSON lines on stdout (httpx logs its own requests through the same root handler)."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    return [line for line in lines if not line["logger"].startswith(("httpx", "httpcore"))]


def assert_cors(response: Any, methods: str = "GET, POST, OPTIONS") -> None:
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-headers"] == CORS_ALLOW_HEADERS
    assert response.headers["access-control-allow-methods"] == methods


calls: list[str] = []


@pytest.fixture
def echo_client() -> Client:
    # Decorated per test, not at import: endpoint() configures root logging, and doing that at
    # collection time would leak into every other test module.
    @endpoint(["GET", "POST"])
    async def echo(request: Request) -> dict[str, Any]:
        calls.append(request.method)
        return {"method": request.method, "request_id": current_request_id()}

    calls.clear()
    return client_for(echo)


# --------------------------------------------------------------------------------------------
# CORS, methods, body size
# --------------------------------------------------------------------------------------------


def test_cors_allow_headers_extends_the_legacy_list() -> None:
    assert CORS_ALLOW_HEADERS == (
        "authorization, x-client-info, apikey, content-type, x-api-key, idempotency-key, "
        "x-request-id"
    )


def test_options_preflight_answers_ok_with_cors_without_calling_handler(
    echo_client: Client,
) -> None:
    response = echo_client.options(
        "/",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.text == "ok"
    assert_cors(response)
    assert HEX32.fullmatch(response.headers["x-request-id"])
    assert calls == []


def test_success_response_carries_cors_and_request_id(echo_client: Client) -> None:
    response = echo_client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert_cors(response)
    body = response.json()
    assert body["method"] == "GET"
    # The id the handler saw in the log context is the one echoed to the client.
    assert body["request_id"] == response.headers["x-request-id"]


def test_unsupported_method_is_405_with_allow_and_cors(echo_client: Client) -> None:
    response = echo_client.delete("/")
    assert response.status_code == 405
    assert response.json() == {"error": "Method not supported"}
    assert response.headers["allow"] == "GET, POST, OPTIONS"
    assert_cors(response)
    assert calls == []


def test_declared_content_length_over_limit_is_413_before_handler() -> None:
    seen: list[bool] = []

    @endpoint(["POST"], max_body_bytes=100)
    async def handler(request: Request) -> dict[str, Any]:
        seen.append(True)
        return {}

    client = client_for(handler)
    # Only the declared length matters: the body is never read.
    response = client.post("/", content=b"{}", headers={"Content-Length": "5000000"})
    assert response.status_code == 413
    assert response.json() == {"error": "request body too large"}
    assert_cors(response, "POST, OPTIONS")
    response = client.post("/", content=b"x" * 101)
    assert response.status_code == 413
    assert seen == []


def test_default_body_limit_is_one_mebibyte(echo_client: Client) -> None:
    ok = echo_client.post("/", headers={"Content-Length": "1048576"}, content=b"x" * 1_048_576)
    assert ok.status_code == 200
    too_big = echo_client.post("/", content=b"x" * 1_048_577)
    assert too_big.status_code == 413


# --------------------------------------------------------------------------------------------
# Error mapping
# --------------------------------------------------------------------------------------------


def test_http_error_maps_to_json_error_with_its_headers() -> None:
    @endpoint(["GET"])
    async def handler(request: Request) -> Response:
        raise Unauthorized("missing api key")

    response = client_for(handler).get("/")
    assert response.status_code == 401
    assert response.json() == {"error": "missing api key"}
    assert response.headers["www-authenticate"] == "Bearer"
    assert_cors(response, "GET, OPTIONS")
    assert HEX32.fullmatch(response.headers["x-request-id"])


def test_http_error_subclass_defaults() -> None:
    @endpoint(["POST"])
    async def handler(request: Request) -> Response:
        raise Conflict("reading already recorded")

    response = client_for(handler).post("/")
    assert (response.status_code, response.json()) == (409, {"error": "reading already recorded"})


class Reading(BaseModel):
    meter_id: int
    counter_kwh: Decimal = Field(ge=0)


class Page(BaseModel):
    size: int = Field(default=100, le=1000)
    site: str | None = None


def test_pydantic_validation_error_is_400_naming_the_field() -> None:
    @endpoint(["POST"])
    async def handler(request: Request) -> dict[str, Any]:
        reading = Reading.model_validate(await read_json(request))
        return {"meter_id": reading.meter_id}

    response = client_for(handler).post("/", json={"meter_id": 7, "counter_kwh": -1})
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid field 'counter_kwh': Input should be greater than or equal to 0"
    }
    assert_cors(response, "POST, OPTIONS")


def test_parse_query_names_the_query_parameter() -> None:
    @endpoint(["GET"])
    async def handler(request: Request) -> dict[str, Any]:
        return parse_query(request, Page).model_dump()

    client = client_for(handler)
    response = client.get("/", params={"size": "5000"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid query parameter 'size': Input should be less than or equal to 1000"
    }
    assert client.get("/", params={"size": "10"}).json() == {"size": 10, "site": None}


def test_parse_body_validates_with_a_model() -> None:
    @endpoint(["POST"])
    async def handler(request: Request) -> dict[str, Any]:
        reading = await parse_body(request, Reading)
        return {"counter_kwh": reading.counter_kwh}

    client = client_for(handler)
    ok = client.post("/", json={"meter_id": 1, "counter_kwh": "12.50"})
    assert ok.text == '{"counter_kwh":12.50}'
    bad = client.post("/", json={"counter_kwh": "x"})
    assert bad.status_code == 400
    assert bad.json()["error"] == (
        "invalid field 'meter_id': Field required; "
        "invalid field 'counter_kwh': Input should be a valid decimal"
    )


def test_validation_message_rows_paths_and_no_input_echo() -> None:
    rows = [{"meter_id": i, "counter_kwh": 1} for i in range(3)]
    rows.append({"meter_id": 3, "counter_kwh": "sb_secret_not-a-number"})
    with pytest.raises(Exception) as caught:
        TypeAdapter(list[Reading]).validate_python(rows)
    message = validation_message(caught.value)
    assert message == "invalid row 3 field 'counter_kwh': Input should be a valid decimal"
    assert "sb_secret" not in message

    class Order(BaseModel):
        items: list[Reading]

    with pytest.raises(Exception) as caught:
        Order.model_validate({"items": [{"meter_id": 1, "counter_kwh": 1}, {"meter_id": "x"}]})
    assert validation_message(caught.value, "field") == (
        "invalid field 'items[1].meter_id': Input should be a valid integer, unable to parse "
        "string as an integer; invalid field 'items[1].counter_kwh': Field required"
    )


def test_validation_message_is_kept_short() -> None:
    class Wide(BaseModel):
        a: int
        b: int
        c: int
        d: int
        e: int
        f: int
        g: int

    with pytest.raises(Exception) as caught:
        Wide.model_validate({})
    message = validation_message(caught.value)
    assert message.count("Field required") == 5
    assert message.endswith("; and 2 more")


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.OperationalError("connection failed: password authentication failed"),
        psycopg_pool.PoolTimeout("couldn't get a connection after 30.00 sec"),
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        TimeoutError("timed out"),
        OSError(errno.ENETUNREACH, "Network is unreachable"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_database_unavailable_is_503_with_retry_after(
    exc: Exception, capsys: pytest.CaptureFixture[str]
) -> None:
    @endpoint(["GET"])
    async def handler(request: Request) -> dict[str, Any]:
        raise exc

    response = client_for(handler).get("/")
    assert response.status_code == 503
    assert response.json() == {"error": "database unavailable"}
    assert response.headers["retry-after"] == "5"
    assert_cors(response, "GET, OPTIONS")
    errors = [line for line in log_lines(capsys) if line["severity"] == "ERROR"]
    assert errors and errors[0]["message"] == "database unavailable"


def test_database_error_wrapped_by_another_layer_is_still_503() -> None:
    @endpoint(["GET"])
    async def handler(request: Request) -> dict[str, Any]:
        try:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        except psycopg.OperationalError as exc:
            raise RuntimeError("could not load tariffs") from exc

    assert client_for(handler).get("/").status_code == 503


def test_unrelated_oserror_is_not_a_database_outage() -> None:
    @endpoint(["GET"])
    async def handler(request: Request) -> dict[str, Any]:
        raise FileNotFoundError(errno.ENOENT, "no such file", "/tmp/x")

    assert client_for(handler).get("/").status_code == 500


def test_unexpected_exception_is_generic_500_and_stack_is_logged_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @endpoint(["POST"])
    async def handler(request: Request) -> dict[str, Any]:
        raise ValueError("boom while using postgresql://svc:hunter2@db:5432/nxt")

    response = client_for(handler).post("/")
    assert response.status_code == 500
    assert response.json() == {"error": "internal error"}
    assert "boom" not in response.text and "hunter2" not in response.text
    assert_cors(response, "POST, OPTIONS")

    output = log_lines(capsys)
    assert "hunter2" not in json.dumps(output)
    error = next(line for line in output if line["severity"] == "ERROR")
    assert error["requestId"] == response.headers["x-request-id"]
    assert "Traceback (most recent call last)" in error["stack_trace"]
    assert "ValueError: boom while using postgresql://svc:***@db:5432/nxt" in error["stack_trace"]


def test_handler_returning_none_is_a_500() -> None:
    @endpoint(["GET"])
    async def handler(request: Request) -> Any:
        return None

    response = client_for(handler).get("/")
    assert (response.status_code, response.json()) == (500, {"error": "internal error"})


# --------------------------------------------------------------------------------------------
# Request ids
# --------------------------------------------------------------------------------------------

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_valid_request_id_is_echoed(echo_client: Client) -> None:
    response = echo_client.get("/", headers={"X-Request-Id": "mobile-app:7f3a.1_b"})
    assert response.headers["x-request-id"] == "mobile-app:7f3a.1_b"
    assert response.json()["request_id"] == "mobile-app:7f3a.1_b"


@pytest.mark.parametrize("given", ["has space", "x" * 129, "semi;colon", "<script>"])
def test_invalid_request_id_is_replaced(echo_client: Client, given: str) -> None:
    response = echo_client.get("/", headers={"X-Request-Id": given})
    assert HEX32.fullmatch(response.headers["x-request-id"])


def test_traceparent_supplies_request_id(echo_client: Client) -> None:
    response = echo_client.get(
        "/", headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01", "X-Request-Id": "bad id"}
    )
    assert response.headers["x-request-id"] == TRACE


def test_cloud_trace_context_supplies_request_id(echo_client: Client) -> None:
    response = echo_client.get("/", headers={"X-Cloud-Trace-Context": f"{TRACE.upper()}/1;o=1"})
    assert response.headers["x-request-id"] == TRACE


def test_malformed_traceparent_is_ignored(echo_client: Client) -> None:
    response = echo_client.get("/", headers={"traceparent": f"ff-{TRACE}-00f067aa0ba902b7-01"})
    assert response.headers["x-request-id"] != TRACE


def test_generated_request_ids_are_fresh(echo_client: Client) -> None:
    first = echo_client.get("/").headers["x-request-id"]
    second = echo_client.get("/").headers["x-request-id"]
    assert first != second


def test_trace_is_attached_to_log_lines(
    echo_client: Client, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "nxt-prod")
    echo_client.get(
        "/",
        headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01", "X-Request-Id": "req-1"},
    )
    (access,) = log_lines(capsys)
    assert access["requestId"] == "req-1"
    assert access["logging.googleapis.com/trace"] == f"projects/nxt-prod/traces/{TRACE}"


# --------------------------------------------------------------------------------------------
# Access log
# --------------------------------------------------------------------------------------------


def test_one_access_line_per_request_without_query_string(
    echo_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    response = echo_client.get("/meters/42", params={"api_key": "nxt_ab12cd34_topsecretvalue"})
    lines = log_lines(capsys)
    assert "topsecret" not in json.dumps(lines) and "api_key" not in json.dumps(lines)
    (line,) = lines
    assert line["severity"] == "INFO"
    assert line["logger"] == "shared.web.access"
    assert line["method"] == "GET"
    assert line["path"] == "/meters/42"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["requestId"] == response.headers["x-request-id"]
    assert line["message"].startswith("GET /meters/42 200 ")


def test_access_line_for_errors_too(
    echo_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    echo_client.patch("/")
    (line,) = log_lines(capsys)
    assert (line["method"], line["status"]) == ("PATCH", 405)


# --------------------------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------------------------


def json_echo() -> Callable[[Request], Any]:
    @endpoint(["POST"], max_body_bytes=64)
    async def handler(request: Request) -> Any:
        data = await read_json(request)
        # Starlette's own accessors keep working after read_json consumed the stream.
        assert await request.body()
        return {"data": data}

    return handler


@pytest.mark.parametrize(
    ("content", "content_type", "status", "error"),
    [
        (b"{not json", "application/json", 400, "request body is not valid JSON"),
        (b"", "application/json", 400, "request body is not valid JSON"),
        (b'{"x": NaN}', "application/json", 400, "request body is not valid JSON"),
        (b'{"x": "\xff\xfe"}', "application/json", 400, "request body is not valid JSON"),
        (b"a=1", "application/x-www-form-urlencoded", 415, "Content-Type must be application/json"),
        (b"{}", "", 415, "Content-Type must be application/json"),
    ],
    ids=["syntax", "empty", "nan", "utf8", "form", "missing"],
)
def test_read_json_rejections(content: bytes, content_type: str, status: int, error: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client_for(json_echo()).post("/", content=content, headers=headers)
    assert (response.status_code, response.json()) == (status, {"error": error})


def test_read_json_accepts_json_media_types() -> None:
    client = client_for(json_echo())
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = client.post(
            "/", content='{"é": 1}'.encode(), headers={"Content-Type": content_type}
        )
        assert response.json() == {"data": {"é": 1}}


def test_read_json_caps_chunked_bodies_without_content_length() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"pad": "'
        yield b"x" * 100
        yield b'"}'

    response = client_for(json_echo()).post(
        "/", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


# --------------------------------------------------------------------------------------------
# JSON encoding and return values
# --------------------------------------------------------------------------------------------


def test_json_encoding_of_decimal_datetime_date_uuid() -> None:
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    body = {
        "kwh": Decimal("12.3400"),
        "tiny": Decimal("0.1000000000000000055511151231257827"),
        "big": Decimal("1E+3"),
        "neg": [Decimal("-0.5")],
        "at": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
        "day": dt.date(2024, 5, 1),
        "id": ident,
        "name": "Kaolack",
    }
    text = to_json(body)
    assert text == (
        '{"kwh":12.3400,"tiny":0.1000000000000000055511151231257827,"big":1E+3,"neg":[-0.5],'
        '"at":"2024-05-01T12:30:00+00:00","day":"2024-05-01",'
        '"id":"12345678-1234-5678-1234-567812345678","name":"Kaolack"}'
    )
    assert json.loads(text, parse_float=Decimal)["tiny"] == body["tiny"]


def test_json_decimal_marker_cannot_be_forged() -> None:
    text = to_json({"s": "\x00decimal-0:1", "d": Decimal("2")})
    assert json.loads(text) == {"s": "\x00decimal-0:1", "d": 2}


def test_json_rejects_non_finite_numbers() -> None:
    with pytest.raises(ValueError):
        to_json({"x": Decimal("NaN")})
    with pytest.raises(ValueError):
        to_json({"x": float("inf")})


def test_json_and_error_response_shape() -> None:
    response = json_response({"a": [1, 2]}, 201, {"X-Extra": "1"})
    assert (response.status_code, response.body) == (201, b'{"a":[1,2]}')
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-extra"] == "1"
    assert error_response(404, "no such meter").body == b'{"error":"no such meter"}'


def test_decimal_and_datetime_through_an_endpoint() -> None:
    @endpoint(["GET"])
    async def handler(request: Request) -> Any:
        return {"kwh": Decimal("3.10"), "at": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)}, 201

    response = client_for(handler).get("/")
    assert response.status_code == 201
    assert response.text == '{"kwh":3.10,"at":"2024-01-02T03:04:05+00:00"}'


def test_tuple_with_headers_and_text_returns() -> None:
    @endpoint(["GET", "POST"])
    async def handler(request: Request) -> Any:
        if request.method == "POST":
            return {"id": 1}, 201, {"Location": "/meters/1"}
        return "pong"

    client = client_for(handler)
    created = client.post("/")
    assert (created.status_code, created.headers["location"]) == (201, "/meters/1")
    assert_cors(created)
    pong = client.get("/")
    assert (pong.text, pong.headers["content-type"]) == ("pong", "text/plain; charset=utf-8")


def test_handler_cors_headers_are_not_overridden() -> None:
    @endpoint(["GET"])
    async def handler(request: Request) -> Response:
        return json_response({}, headers={"Access-Control-Allow-Origin": "https://app.example"})

    response = client_for(handler).get("/")
    assert response.headers["access-control-allow-origin"] == "https://app.example"


def test_endpoint_rejects_misuse() -> None:
    with pytest.raises(TypeError):
        endpoint("GET")

    def sync_handler(request: Request) -> dict[str, Any]:
        return {}

    with pytest.raises(TypeError):
        endpoint(["GET"])(sync_handler)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Through functions-framework's loader, as deployed
# --------------------------------------------------------------------------------------------


def test_deployed_shape_with_functions_framework_decorator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "nxt_http_probe_main.py"
    source.write_text(
        textwrap.dedent(
            """
            import functions_framework.aio

            from shared.web.endpoint import endpoint
            from shared.web.errors import NotFound


            @functions_framework.aio.http
            @endpoint(["GET"])
            async def meter(request):
                if request.query_params.get("id") != "42":
                    raise NotFound("meter not found")
                return {"id": 42}
            """
        )
    )
    # The loader appends the source directory to sys.path and registers the module.
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "nxt_http_probe_main", raising=False)
    client = Client(create_asgi_app(target="meter", source=str(source)))

    found = client.get("/", params={"id": "42"})
    assert (found.status_code, found.json()) == (200, {"id": 42})
    assert_cors(found, "GET, OPTIONS")
    missing = client.get("/anything/else")
    assert (missing.status_code, missing.json()) == (404, {"error": "meter not found"})
    assert client.options("/").text == "ok"
    assert client.post("/").status_code == 405
    sys.modules.pop("nxt_http_probe_main", None)


def test_every_library_error_the_mapping_names_exists_in_the_pinned_versions() -> None:
    # The mapping matches these by type, resolved once their module is loaded; a rename upstream
    # must fail here, on the upgrade, rather than turn a 503 into a 500 in production.
    import importlib

    from shared.web import library_errors

    for module, attribute in library_errors.ALL:
        found = getattr(importlib.import_module(module), attribute, None)
        assert isinstance(found, type) and issubclass(found, BaseException), (module, attribute)
    assert library_errors.loaded(library_errors.ALL) == tuple(
        getattr(importlib.import_module(m), a) for m, a in library_errors.ALL)
