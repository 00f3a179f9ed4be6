"""Hand-written bad input against every function that takes input, over real HTTP.

Bodies of the wrong type, huge and deeply nested bodies, invalid UTF-8, NaN and infinities,
timestamps without a zone or out of range, SQL and header injection, overly long and repeated
query parameters, wrong content types and methods. Every answer is a 4xx with a JSON
`{"error": ...}` that names the parameter or field where there is one, never a 5xx; and a
refused write stores nothing (the row counts of orders, ledger, idempotency keys, readings and
queued hours do not move).

Requests a client library refuses to send (CR/LF in header values, bare CR, NUL) go over a raw
socket. Those malformed at the HTTP layer are refused by the HTTP server (uvicorn) before any
function runs, with its own `400 Invalid HTTP request received.`: there the test asserts the 400
and that nothing injected comes back.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest

from nxt_cli.seed import OPERATOR_ID
from shared.web.limits import DEFAULT_MAX_BODY_BYTES, MAX_QUERY_BYTES
from tests.conftest import Api, Seeded

pytestmark = pytest.mark.db

F = "/functions/v1"
CUSTOMERS, ORDERS = f"{F}/customers", f"{F}/orders"
CONSUMPTION, READINGS, FRESHNESS = f"{F}/meter-consumption", f"{F}/meter-readings", f"{F}/freshness"
READINGS_MAX_BODY = 8 * 1024 * 1024  # functions/meter-readings/main.py MAX_BODY_BYTES
UNKNOWN_METER = 987_654_321
WINDOW = {"FROM": "2026-10-05T00:00:00Z", "TO": "2026-10-06T00:00:00Z"}

SQL_INJECTIONS = (
    "' OR '1'='1",
    "1; DROP TABLE orders; --",
    "\" OR 1=1 --",
    "1' UNION SELECT key_hash FROM api_keys --",
    "'; SELECT pg_sleep(5); --",
    "%' OR name LIKE '%",
)


# -- helpers ------------------------------------------------------------------------------------

def counts(functions_db: Seeded, functions_ts: str) -> dict[str, int]:
    """Rows of every table a refused write could touch."""
    found: dict[str, int] = {}
    with psycopg.connect(functions_db.url) as conn:
        for table in ("public.orders", "public.transactions", "public.wallets",
                      "app.idempotency_keys"):
            found[table] = conn.execute(f"select count(*) from {table}").fetchone()[0]  # type: ignore[index]
    with psycopg.connect(functions_ts) as conn:
        for table in ("ts.meter_readings", "ts.pending_hours"):
            found[table] = conn.execute(f"select count(*) from {table}").fetchone()[0]  # type: ignore[index]
    return found


@pytest.fixture
def nothing_stored(functions_db: Seeded, functions_ts: str) -> Iterator[None]:
    before = counts(functions_db, functions_ts)
    yield
    assert counts(functions_db, functions_ts) == before, "a refused request stored something"


@pytest.fixture(scope="module")
def meter(functions_db: Seeded) -> int:
    """A live meter on a grid with a tariff: a top-up for it is otherwise valid."""
    with psycopg.connect(functions_db.url) as conn:
        return conn.execute("""
            select m.id from meters m join connections n on n.id = m.connection_id
              join customers c on c.id = n.customer_id join grids g on g.id = c.grid_id
             where m.deleted_at is null and g.deleted_at is null and g.kwh_tariff > 0
             order by m.id limit 1""").fetchone()[0]  # type: ignore[index]


@pytest.fixture(scope="module")
def aggregator_key(functions_db: Seeded) -> str:
    return functions_db.api_keys[0][1]


def credentials(api: Api, path: str, aggregator_key: str, method: str = "GET") -> dict[str, str]:
    """The aggregator's API key for meter-consumption; the service role for ingest and order
    writes; an operator's JWT for the rest."""
    if path.startswith(CONSUMPTION):
        return {"X-API-Key": aggregator_key}
    if path.startswith(READINGS) or (path.startswith(ORDERS) and method == "POST"):
        return {"Authorization": f"Bearer {api.token(role='service_role')}"}
    return {"Authorization": f"Bearer {api.token(OPERATOR_ID)}"}


def topup(meter: Any, **extra: Any) -> dict[str, Any]:
    """A top-up that is valid but for `extra` (which may replace meter_id too)."""
    return {"meter_id": meter, "amount": "100.00", "currency": "NGN",
            "payment_method": "USSD", "payment_channel": "USSD", **extra}


def reading(**extra: Any) -> dict[str, Any]:
    """A reading that is valid but for `extra` (meter 1 is live in the demo data)."""
    an_hour_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    return {"meter_id": 1, "ts": an_hour_ago.isoformat(), "counter_kwh": "10.5", **extra}


def post_json(api: Api, path: str, content: bytes | Iterator[bytes] | dict[str, Any], *,
              content_type: str | None = "application/json",
              key: str | None = None) -> httpx.Response:
    """POST to orders or meter-readings with the service role (and a fresh Idempotency-Key).

    A dict is sent as JSON, bytes as they are, an iterator of bytes chunked."""
    headers = credentials(api, path, "", "POST")
    if content_type is not None:
        headers["Content-Type"] = content_type
    if path == ORDERS:
        headers["Idempotency-Key"] = key or str(uuid.uuid4())
    body = json.dumps(content).encode() if isinstance(content, dict) else content
    return api.http.post(path, content=body, headers=headers)


def assert_error(resp: httpx.Response, statuses: int | tuple[int, ...], *names: str) -> str:
    """A 4xx in `statuses` with a JSON {"error": text} naming each of `names`; the text."""
    allowed = (statuses,) if isinstance(statuses, int) else statuses
    assert resp.status_code in allowed, (resp.status_code, resp.text[:500])
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    text = body["error"] + "".join(" ".join(r["errors"]) for r in body.get("rows", []))
    for name in names:
        assert name in text, (name, body)
    return text


def raw_request(api: Api, data: bytes, timeout: float = 20) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; (status, headers lower-cased, body) of the answer."""
    host, port = api.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def still_serving(api: Api) -> None:
    resp = api.get(FRESHNESS, token=api.token(OPERATOR_ID))
    assert resp.status_code == 200, resp.text


# -- bodies of the wrong type --------------------------------------------------------------------

WRONG_BODIES = [b"[]", b'"a string"', b"42", b"-1.5", b"null", b"true", b"{}", b"", b"[{}]",
                b'[{"meter_id": 1}]']


@pytest.mark.parametrize("path", [ORDERS, READINGS])
@pytest.mark.parametrize("body", WRONG_BODIES, ids=lambda b: b.decode() or "empty")
def test_body_of_the_wrong_type_is_400(api: Api, nothing_stored: None, path: str,
                                       body: bytes) -> None:
    assert_error(post_json(api, path, body), 400)


@pytest.mark.parametrize(("field", "value"), [
    ("meter_id", True), ("meter_id", "one"), ("meter_id", 1.5), ("meter_id", [1]),
    ("meter_id", {"id": 1}), ("meter_id", None), ("meter_id", 2**63), ("meter_id", -1),
    ("amount", []), ("amount", {}), ("amount", True), ("amount", "ten"), ("amount", "0"),
    ("amount", "-5"), ("amount", "0.001"), ("currency", 1), ("currency", "ngn"),
    ("payment_method", ["USSD"]), ("payment_channel", ""), ("payment_channel", 7),
    ("payment_channel", "x" * 65), ("external_reference", "x" * 129), ("surprise", 1),
])
def test_order_fields_of_the_wrong_type_are_400(api: Api, nothing_stored: None, meter: int,
                                                field: str, value: Any) -> None:
    assert_error(post_json(api, ORDERS, topup(meter, **{field: value})), 400, field)


@pytest.mark.parametrize(("field", "value"), [
    ("meter_id", True), ("meter_id", "x"), ("meter_id", [1]), ("meter_id", 0),
    ("ts", 1_700_000_000), ("ts", "1700000000"), ("ts", None), ("ts", ["2026-01-01"]),
    ("counter_kwh", []), ("counter_kwh", {}), ("counter_kwh", True), ("counter_kwh", "-1"),
    ("counter_kwh", "1e20"), ("power_w", "watts"), ("voltage_v", -1), ("credit_kwh", [1]),
    ("extra", 1),
])
def test_reading_fields_of_the_wrong_type_are_422_by_row(api: Api, nothing_stored: None,
                                                         field: str, value: Any) -> None:
    resp = post_json(api, READINGS, {"readings": [reading(), reading(**{field: value})]})
    assert_error(resp, 422, field)
    assert [r["index"] for r in resp.json()["rows"]] == [1]


@pytest.mark.parametrize("readings", ["x", 1, None, {}, []],
                         ids=["string", "number", "null", "object", "empty"])
def test_a_batch_that_is_not_a_list_of_rows_is_400(api: Api, nothing_stored: None,
                                                   readings: Any) -> None:
    assert_error(post_json(api, READINGS, {"readings": readings}), 400, "readings")


@pytest.mark.parametrize("readings", [[1, "a", None], [[reading()]], [reading(), []]],
                         ids=["scalars", "nested", "one-bad"])
def test_rows_that_are_not_objects_are_422_by_row(api: Api, nothing_stored: None,
                                                  readings: Any) -> None:
    assert_error(post_json(api, READINGS, {"readings": readings}), 422, "row")


# -- huge bodies -------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "limit"), [(ORDERS, DEFAULT_MAX_BODY_BYTES),
                                             (READINGS, READINGS_MAX_BODY)])
def test_a_body_over_the_limit_is_413(api: Api, nothing_stored: None, path: str,
                                      limit: int) -> None:
    padding = b" " * (limit + 1 - 2)
    assert_error(post_json(api, path, b"{" + padding + b"}"), 413)


@pytest.mark.parametrize(("path", "limit"), [(ORDERS, DEFAULT_MAX_BODY_BYTES),
                                             (READINGS, READINGS_MAX_BODY)])
def test_a_chunked_body_over_the_limit_is_413(api: Api, nothing_stored: None, path: str,
                                              limit: int) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: httpx sends it chunked
        yield b'{"readings": "'
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536
        yield b'"}'

    assert_error(post_json(api, path, chunks()), 413)


@pytest.mark.parametrize("path", [ORDERS, READINGS])
def test_a_declared_length_over_the_limit_is_413_before_the_body(
        api: Api, nothing_stored: None, path: str, aggregator_key: str) -> None:
    auth = credentials(api, path, aggregator_key, "POST")["Authorization"]
    status, _, body = raw_request(api, (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
        f"Content-Type: application/json\r\nIdempotency-Key: {uuid.uuid4()}\r\n"
        "Content-Length: 100000000000\r\nConnection: close\r\n\r\n{").encode())
    assert status == 413 and json.loads(body)["error"], body


def test_a_batch_over_the_row_limit_is_400_naming_readings(api: Api, nothing_stored: None) -> None:
    rows = [reading()] * 10_001
    assert_error(post_json(api, READINGS, {"readings": rows}), 400, "readings")


def test_an_oversized_field_is_refused_naming_it(api: Api, nothing_stored: None,
                                                 meter: int) -> None:
    resp = post_json(api, ORDERS, topup(meter, payment_channel="x" * 500_000))
    assert_error(resp, 400, "payment_channel")


# -- deeply nested JSON --------------------------------------------------------------------------

DEEP = {
    "arrays": b"[" * 100_000 + b"]" * 100_000,
    "objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "in-field": b'{"meter_id": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "in-readings": b'{"readings": [' + b"[" * 50_000 + b"]" * 50_000 + b"]}",
    "unclosed": b"[" * 500_000,
    "just-under-recursion": b'{"meter_id": ' + b"[" * 900 + b"]" * 900 + b"}",
}


@pytest.mark.parametrize("path", [ORDERS, READINGS])
@pytest.mark.parametrize("body", list(DEEP.values()), ids=list(DEEP))
def test_deep_json_is_400_and_the_server_survives(api: Api, nothing_stored: None, path: str,
                                                  body: bytes) -> None:
    assert_error(post_json(api, path, body), 400)
    still_serving(api)


# -- invalid UTF-8 and other encodings ---------------------------------------------------------

BAD_TEXT = {
    "invalid-byte": b'{"payment_channel": "\xff"}',
    "truncated-sequence": b'{"payment_channel": "\xc3"}',
    "overlong": b'{"payment_channel": "\xc0\xaf"}',
    "encoded-surrogate": b'{"payment_channel": "\xed\xa0\x80"}',
    "utf16": '{"meter_id": 1}'.encode("utf-16"),
    "utf32": '{"meter_id": 1}'.encode("utf-32"),
    "latin1": '{"payment_channel": "café"}'.encode("latin-1"),
}


@pytest.mark.parametrize("path", [ORDERS, READINGS])
@pytest.mark.parametrize("body", list(BAD_TEXT.values()), ids=list(BAD_TEXT))
def test_invalid_utf8_is_400(api: Api, nothing_stored: None, path: str, body: bytes) -> None:
    assert_error(post_json(api, path, body), 400)


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\udfff\\ud800", "\\u0000",
                                    "a\\u0000b"])
def test_unencodable_text_in_a_field_is_400_naming_it(api: Api, nothing_stored: None,
                                                      meter: int, escape: str) -> None:
    body = json.dumps(topup(meter, external_reference="X")).replace('"X"', f'"{escape}"')
    assert_error(post_json(api, ORDERS, body.encode()), 400, "external_reference")


def test_lone_surrogate_in_a_reading_is_refused(api: Api, nothing_stored: None) -> None:
    body = json.dumps({"readings": [reading(ts="X")]}).replace('"X"', '"\\ud800"')
    assert_error(post_json(api, READINGS, body.encode()), (400, 422))


@pytest.mark.parametrize("encoded", ["%ED%A0%80", "%FF%FE", "%C0%AF", "%00", "a%00b"])
def test_invalid_utf8_in_a_query_parameter_is_not_a_5xx(api: Api, aggregator_key: str,
                                                        encoded: str) -> None:
    query = "&".join(f"{k}={v}" for k, v in WINDOW.items())
    resp = api.http.get(f"{CONSUMPTION}?{query}&site={encoded}",
                        headers={"X-API-Key": aggregator_key})
    if "%00" in encoded:
        assert_error(resp, 400, "site", "NUL")
    else:  # decoded with replacement characters: a grid of that name does not exist
        assert resp.status_code == 200 and resp.json()["readings"] == [], resp.text


# -- NaN and infinities ----------------------------------------------------------------------

NON_FINITE_TOKENS = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"]
NON_FINITE_STRINGS = ["NaN", "nan", "sNaN", "-NaN", "Infinity", "-Infinity", "inf", "-inf",
                      "1e999", "Inf"]


@pytest.mark.parametrize("token", NON_FINITE_TOKENS, ids=lambda t: t.decode())
def test_non_finite_amount_tokens_are_400(api: Api, nothing_stored: None, meter: int,
                                          token: bytes) -> None:
    body = json.dumps(topup(meter, amount="X")).encode().replace(b'"X"', token)
    text = assert_error(post_json(api, ORDERS, body), 400)
    if token.endswith(b"e999"):  # a valid JSON number, too big: pydantic names the field
        assert "amount" in text


@pytest.mark.parametrize("value", NON_FINITE_STRINGS)
def test_non_finite_amount_strings_are_400_naming_amount(api: Api, nothing_stored: None,
                                                         meter: int, value: str) -> None:
    assert_error(post_json(api, ORDERS, topup(meter, amount=value)), 400, "amount")


@pytest.mark.parametrize("field", ["counter_kwh", "power_w", "voltage_v", "credit_kwh"])
@pytest.mark.parametrize("value", [*NON_FINITE_TOKENS, *(f'"{s}"'.encode()
                                                         for s in NON_FINITE_STRINGS)],
                         ids=lambda v: v.decode())
def test_non_finite_reading_values_are_refused_naming_the_field(
        api: Api, nothing_stored: None, field: str, value: bytes) -> None:
    body = json.dumps({"readings": [reading(**{field: "X"})]}).encode().replace(b'"X"', value)
    assert_error(post_json(api, READINGS, body), 422, field)


@pytest.mark.parametrize(("path", "param"), [
    (CUSTOMERS, "size"), (CUSTOMERS, "page"), (CUSTOMERS, "grid"), (ORDERS, "size"),
    (ORDERS, "grid"), (CONSUMPTION, "offset"), (CONSUMPTION, "pageLimit"),
])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "inf", "1e999", "1e3"])
def test_non_finite_query_numbers_are_400_naming_them(api: Api, aggregator_key: str, path: str,
                                                      param: str, value: str) -> None:
    params = {**(WINDOW if path == CONSUMPTION else {}), param: value}
    resp = api.http.get(path, params=params, headers=credentials(api, path, aggregator_key))
    assert_error(resp, 400, param)


# -- timestamps: no zone, far past, far future -------------------------------------------------

@pytest.mark.parametrize("ts", ["2026-11-01T10:00:00", "2026-11-01 10:00:00", "2026-11-01",
                                "2026-11-01T10:00"])
def test_readings_without_a_zone_are_422_naming_ts(api: Api, nothing_stored: None,
                                                   ts: str) -> None:
    assert_error(post_json(api, READINGS, {"readings": [reading(ts=ts)]}), 422, "ts")


@pytest.mark.parametrize("path", [CUSTOMERS, ORDERS])
@pytest.mark.parametrize("param", ["created_from", "created_to"])
def test_list_filters_without_a_zone_are_400_naming_them(api: Api, path: str,
                                                         param: str) -> None:
    resp = api.get(path, token=api.token(OPERATOR_ID), params={param: "2026-10-01T00:00:00"})
    assert_error(resp, 400, param)


@pytest.mark.parametrize(("naive", "aware"), [
    ({"FROM": "2026-10-05T00:00:00", "TO": "2026-10-05T06:00:00"},
     {"FROM": "2026-10-05T00:00:00Z", "TO": "2026-10-05T06:00:00+00:00"}),
    ({"FROM": "2026-10-05", "TO": "2026-10-06"},
     {"FROM": "2026-10-05T00:00:00Z", "TO": "2026-10-06T00:00:00Z"}),
    ({"FROM": "2026-10-05T01:00:00+01:00", "TO": "2026-10-05 06:00:00"},
     {"FROM": "2026-10-05T00:00:00Z", "TO": "2026-10-05T06:00:00Z"}),
])
def test_consumption_reads_legacy_zoneless_times_as_utc(api: Api, aggregator_key: str,
                                                        naive: dict[str, str],
                                                        aware: dict[str, str]) -> None:
    """As documented: FROM and TO without a zone are UTC (the legacy function's reading)."""
    key = {"X-API-Key": aggregator_key}
    first = api.http.get(CONSUMPTION, params={**naive, "pageLimit": 1000}, headers=key)
    second = api.http.get(CONSUMPTION, params={**aware, "pageLimit": 1000}, headers=key)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json() == second.json()


FAR = ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00-01:00",
       "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59+14:00",
       "10000-01-01T00:00:00Z", "+10000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z",
       "0000-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "1900-01-01T00:00:00-23:59"]


@pytest.mark.parametrize("path", [CUSTOMERS, ORDERS])
@pytest.mark.parametrize("param", ["created_from", "created_to"])
@pytest.mark.parametrize("value", FAR)
def test_far_list_filters_answer_or_name_the_parameter(api: Api, path: str, param: str,
                                                       value: str) -> None:
    resp = api.get(path, token=api.token(OPERATOR_ID), params={param: value, "size": 1})
    if resp.status_code != 200:
        assert_error(resp, 400, param)


@pytest.mark.parametrize("ts", FAR)
def test_readings_at_the_ends_of_time_are_422_by_row(api: Api, nothing_stored: None,
                                                     ts: str) -> None:
    """Timestamps the fast path hands to the database (it parses ISO 8601 with an offset) and
    that the full model then judges: named by row, never a 500."""
    resp = post_json(api, READINGS, {"readings": [reading(), reading(ts=ts)]})
    assert_error(resp, 422, "ts")
    assert [r["index"] for r in resp.json()["rows"]] == [1]


NARROW = [("0001-01-01T00:00:00Z", "0001-01-01T01:00:00Z"),
          ("0001-01-01T00:00:00+01:00", "0001-01-01T05:00:00Z"),
          ("0001-01-01", "0001-01-02"), ("0001-01-01T00:00:00", "0001-01-01T00:00:01"),
          ("9999-12-31T22:00:00Z", "9999-12-31T23:59:59Z"),
          ("9999-12-31T22:00:00Z", "9999-12-31T23:59:59-01:00"),
          ("9999-12-30", "9999-12-31"), ("9999-12-31T23:00:00", "9999-12-31T23:59:59.999999")]


@pytest.mark.parametrize(("start", "end"), [*NARROW, *((v, "9999-12-31T23:59:59Z") for v in FAR),
                                            *(("0001-01-01T00:00:00Z", v) for v in FAR)])
def test_far_consumption_windows_answer_or_name_the_parameter(api: Api, aggregator_key: str,
                                                              start: str, end: str) -> None:
    resp = api.http.get(CONSUMPTION, params={"FROM": start, "TO": end},
                        headers={"X-API-Key": aggregator_key})
    if resp.status_code == 200:
        assert resp.json()["readings"] == []
    else:
        text = assert_error(resp, 400)
        assert "FROM" in text or "TO" in text, text


@pytest.mark.parametrize("ts", FAR)
def test_far_readings_are_422_naming_ts(api: Api, nothing_stored: None, ts: str) -> None:
    assert_error(post_json(api, READINGS, {"readings": [reading(ts=ts)]}), 422, "ts")


# -- SQL injection ------------------------------------------------------------------------------

QUERY_PARAMS = {
    CUSTOMERS: ["page", "size", "order", "ascending", "grid", "created_from", "created_to",
                "include_hidden"],
    ORDERS: ["page", "size", "order", "ascending", "status", "type", "grid", "created_from",
             "created_to"],
    CONSUMPTION: ["FROM", "TO", "offset", "pageLimit", "cursor"],
}


@pytest.mark.parametrize("injection", SQL_INJECTIONS)
def test_sql_injection_in_typed_query_parameters_is_400(api: Api, aggregator_key: str,
                                                        injection: str) -> None:
    for path, params in QUERY_PARAMS.items():
        for param in params:
            base = WINDOW if path == CONSUMPTION else {}
            resp = api.http.get(path, params={**base, param: injection},
                                headers=credentials(api, path, aggregator_key))
            assert_error(resp, 400, param)


@pytest.mark.parametrize("injection", SQL_INJECTIONS)
def test_sql_injection_in_text_query_parameters_matches_nothing(api: Api, aggregator_key: str,
                                                                injection: str) -> None:
    for param in ("site", "meter"):
        resp = api.http.get(CONSUMPTION, params={**WINDOW, param: injection, "pageLimit": 1000},
                            headers={"X-API-Key": aggregator_key})
        assert resp.status_code == 200, resp.text
        assert resp.json()["readings"] == [] and resp.json()["total"] == 0


@pytest.mark.parametrize("injection", SQL_INJECTIONS)
def test_sql_injection_in_path_segments_is_400_or_404(api: Api, nothing_stored: None,
                                                      aggregator_key: str,
                                                      injection: str) -> None:
    segment = quote(injection, safe="")
    cases = [("GET", f"{CUSTOMERS}/{segment}", 400, "id"),
             ("GET", f"{ORDERS}/{segment}", 400, "id"),
             ("POST", f"{ORDERS}/{segment}/complete", 400, "id"),
             ("POST", f"{ORDERS}/{segment}/cancel", 400, "id"),
             ("POST", f"{ORDERS}/1/{segment}", 404, ""),
             ("GET", f"{FRESHNESS}/{segment}", 404, ""),
             ("GET", f"{CONSUMPTION}/{segment}", 404, "")]
    for method, url, status, name in cases:
        resp = api.http.request(method, url,
                                headers=credentials(api, url, aggregator_key, method))
        assert_error(resp, status, name)


@pytest.mark.parametrize("injection", SQL_INJECTIONS)
def test_sql_injection_in_typed_body_fields_is_refused(api: Api, nothing_stored: None,
                                                       meter: int, injection: str) -> None:
    for field in ("meter_id", "amount", "currency", "payment_method", "payment_channel"):
        assert_error(post_json(api, ORDERS, topup(meter, **{field: injection})), 400, field)
    for field in ("meter_id", "ts", "counter_kwh"):
        assert_error(post_json(api, READINGS, {"readings": [reading(**{field: injection})]}),
                     422, field)
    # The text field takes anything printable; an unknown meter still stores nothing.
    resp = post_json(api, ORDERS, topup(UNKNOWN_METER, external_reference=injection),
                     key=injection)
    assert_error(resp, 422, "meter_id")


def test_sql_injection_in_text_fields_and_keys_is_stored_verbatim(
        api: Api, functions_db: Seeded, meter: int) -> None:
    """Free text is data: stored byte for byte through parameters, every table intact."""
    with psycopg.connect(functions_db.url) as conn:
        orders_before = conn.execute("select count(*) from orders").fetchone()[0]  # type: ignore[index]
    created = []
    for injection in SQL_INJECTIONS[:3]:
        key = f"{injection} {uuid.uuid4()}"
        reference = f"{injection} {uuid.uuid4()}"  # references are unique
        resp = post_json(api, ORDERS, topup(meter, external_reference=reference), key=key)
        assert resp.status_code == 201, resp.text
        assert resp.json()["external_reference"] == reference
        replay = post_json(api, ORDERS, topup(meter, external_reference=reference), key=key)
        assert replay.status_code == 201 and replay.json() == resp.json()
        created.append((resp.json()["id"], reference))
    with psycopg.connect(functions_db.url) as conn:
        assert conn.execute("select count(*) from orders").fetchone()[0] == orders_before + 3  # type: ignore[index]
        for order_id, injection in created:
            stored = conn.execute("select external_reference from orders where id = %s",
                                  (order_id,)).fetchone()
            assert stored == (injection,)
        assert conn.execute("select count(*) from api_keys").fetchone()[0] > 0  # type: ignore[index]


@pytest.mark.parametrize("injection", SQL_INJECTIONS)
def test_sql_injection_in_credentials_is_401(api: Api, injection: str) -> None:
    for headers in ({"X-API-Key": f"nxt_{injection}"}, {"X-API-Key": injection},
                    {"Authorization": f"Bearer {injection}"},
                    {"Authorization": f"Bearer nxt_{injection}"}):
        resp = api.http.get(CONSUMPTION, params=WINDOW, headers=headers)
        assert_error(resp, 401)
    resp = api.http.get(CUSTOMERS, headers={"Authorization": f"Bearer {injection}"})
    assert_error(resp, 401)


# -- header injection --------------------------------------------------------------------------

def _post_raw(api: Api, path: str, extra: bytes, body: bytes = b"{}") -> tuple[int, dict[str, str],
                                                                                bytes]:
    token = api.token(role="service_role").encode()
    return raw_request(api, b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                       b"Authorization: Bearer " + token + b"\r\n"
                       b"Content-Type: application/json\r\n" + extra +
                       b"Content-Length: " + str(len(body)).encode() + b"\r\n"
                       b"Connection: close\r\n\r\n" + body)


HEADER_INJECTIONS = {
    "crlf": b"Idempotency-Key: k\r\nX-Injected: 1\r\n",
    "bare-cr": b"Idempotency-Key: k\rX-Injected: 1\r\n",
    "bare-lf": b"Idempotency-Key: k\nX-Injected: 1\r\n",
    "nul": b"Idempotency-Key: k\x00X-Injected: 1\r\n",
    "obs-fold": b"Idempotency-Key: k\r\n X-Injected: 1\r\n",
    "request-id-crlf": b"X-Request-Id: a\rSet-Cookie: x=1\r\n",
    "request-id-encoded": b"X-Request-Id: a%0d%0aSet-Cookie:%20x=1\r\n",
    "request-id-utf8": "X-Request-Id: é\r\nX-Injected: 1\r\n".encode(),
    "header-name-space": b"Idempotency Key: k\r\n",
    "no-colon": b"Idempotency-Key k\r\n",
    "huge-header": b"X-Big: " + b"a" * 200_000 + b"\r\n",
}


@pytest.mark.parametrize("extra", list(HEADER_INJECTIONS.values()), ids=list(HEADER_INJECTIONS))
def test_header_injection_is_refused_and_never_reflected(api: Api, nothing_stored: None,
                                                         meter: int, extra: bytes) -> None:
    body = json.dumps(topup(UNKNOWN_METER)).encode()
    status, headers, answer = _post_raw(api, ORDERS, extra, body)
    assert 400 <= status < 500, (status, answer)
    assert "x-injected" not in headers and "set-cookie" not in headers, headers
    assert headers.get("x-request-id", "").isalnum() or headers.get("x-request-id") is None
    if headers.get("content-type", "").startswith("application/json"):
        assert json.loads(answer)["error"]
    else:  # malformed HTTP: uvicorn's own answer, before any function runs
        assert status == 400 and answer.startswith(b"Invalid HTTP request"), answer


@pytest.mark.parametrize("value", ["k\r\nX-Injected: 1", "k\nX-Injected: 1", "k\rX", "k\x00"])
def test_the_http_client_refuses_to_send_crlf_in_headers(api: Api, value: str) -> None:
    """What a well-behaved client does with such a header: nothing reaches the server."""
    with pytest.raises((httpx.LocalProtocolError, ValueError)):
        api.http.post(ORDERS, json={}, headers={"Idempotency-Key": value})


@pytest.mark.parametrize("key", ["clé", "k\tk", "k\x7fk", "k" * 256, " ", "\u202ekey"])
def test_non_ascii_or_long_idempotency_keys_are_400(api: Api, nothing_stored: None, meter: int,
                                                    key: str) -> None:
    body = json.dumps(topup(meter)).encode()
    status, _, answer = _post_raw(api, ORDERS, b"Idempotency-Key: " + key.encode() + b"\r\n",
                                  body)
    assert status == 400 and "Idempotency-Key" in json.loads(answer)["error"], answer


def test_a_repeated_idempotency_key_header_is_400(api: Api, nothing_stored: None,
                                                  meter: int) -> None:
    body = json.dumps(topup(meter)).encode()
    status, _, answer = _post_raw(
        api, ORDERS, f"Idempotency-Key: {uuid.uuid4()}\r\nIdempotency-Key: {uuid.uuid4()}\r\n"
        .encode(), body)
    assert status == 400 and "Idempotency-Key" in json.loads(answer)["error"], answer


@pytest.mark.parametrize("encoded", ["%0d%0aSet-Cookie:%20x=1", "%0aX-Injected:%201",
                                     "%E5%98%8A%E5%98%8DX-Injected:%201"])
def test_encoded_crlf_in_query_and_path_is_not_reflected(api: Api, aggregator_key: str,
                                                         encoded: str) -> None:
    query = "&".join(f"{k}={v}" for k, v in WINDOW.items())
    for url in (f"{CONSUMPTION}?{query}&site={encoded}", f"{CUSTOMERS}/1{encoded}",
                f"{ORDERS}/1{encoded}/complete"):
        method = "POST" if url.endswith("complete") else "GET"
        resp = api.http.request(method, url,
                                headers=credentials(api, url, aggregator_key, method))
        assert resp.status_code in (200, 400, 404), resp.text
        assert "set-cookie" not in resp.headers and "x-injected" not in resp.headers


# -- long and repeated query parameters ---------------------------------------------------------

@pytest.mark.parametrize("path", [CUSTOMERS, ORDERS, CONSUMPTION, FRESHNESS])
def test_an_overly_long_query_string_is_414(api: Api, aggregator_key: str, path: str) -> None:
    junk = "a" * (MAX_QUERY_BYTES + 1 - len("junk="))
    resp = api.http.get(f"{path}?junk={junk}", headers=credentials(api, path, aggregator_key))
    assert_error(resp, 414, "query string")
    # Longer than httpx sends (64 KiB): over a socket.
    auth = "".join(f"{k}: {v}\r\n" for k, v in credentials(api, path, aggregator_key).items())
    status, _, body = raw_request(api, (f"GET {path}?{'a=b&' * 25_000} HTTP/1.1\r\nHost: x\r\n"
                                        f"{auth}Connection: close\r\n\r\n").encode())
    assert status == 414 and "query string" in json.loads(body)["error"], body


def test_a_query_string_at_the_limit_is_read(api: Api) -> None:
    junk = "a" * (MAX_QUERY_BYTES - len("size=1&junk="))
    resp = api.get(f"{CUSTOMERS}?size=1&junk={junk}", token=api.token(OPERATOR_ID))
    assert resp.status_code == 200 and resp.json()["size"] == 1, resp.text


@pytest.mark.parametrize(("path", "param"), [(CUSTOMERS, "order"), (ORDERS, "status"),
                                             (CONSUMPTION, "site"), (CONSUMPTION, "meter"),
                                             (CONSUMPTION, "cursor")])
def test_a_long_value_under_the_query_limit_is_400_naming_it(api: Api, aggregator_key: str,
                                                             path: str, param: str) -> None:
    params = {**(WINDOW if path == CONSUMPTION else {}), param: "x" * 5000}
    resp = api.http.get(path, params=params, headers=credentials(api, path, aggregator_key))
    assert_error(resp, 400, param)


def test_a_long_path_segment_is_400(api: Api) -> None:
    for url in (f"{CUSTOMERS}/{'9' * 5000}", f"{ORDERS}/{'1' * 5000}"):
        assert_error(api.get(url, token=api.token(OPERATOR_ID)), 400, "id")


@pytest.mark.parametrize(("path", "param", "values"), [
    (CUSTOMERS, "size", ["1", "2"]), (CUSTOMERS, "page", ["1", "1"]),
    (CUSTOMERS, "created_from", ["2026-01-01T00:00:00Z"] * 2), (ORDERS, "status",
                                                                 ["COMPLETED", "PENDING"]),
    (ORDERS, "order", ["id", "amount", "id"]), (CONSUMPTION, "FROM", [WINDOW["FROM"]] * 2),
    (CONSUMPTION, "TO", [WINDOW["TO"], "2026-10-07T00:00:00Z"]), (CONSUMPTION, "site",
                                                                  ["Gbamu", "Akpabom"]),
    (CONSUMPTION, "pageLimit", ["1", "1000"]),
])
def test_a_repeated_query_parameter_is_400_naming_it(api: Api, aggregator_key: str, path: str,
                                                     param: str, values: list[str]) -> None:
    base = [(k, v) for k, v in WINDOW.items() if k != param] if path == CONSUMPTION else []
    resp = api.http.get(path, params=[*base, *((param, v) for v in values)],
                        headers=credentials(api, path, aggregator_key))
    assert_error(resp, 400, param, "times")


def test_a_repeated_unknown_parameter_is_ignored(api: Api) -> None:
    resp = api.get(CUSTOMERS, token=api.token(OPERATOR_ID),
                   params=[("utm", "a"), ("utm", "b"), ("size", "1")])
    assert resp.status_code == 200 and resp.json()["size"] == 1


# -- content types and methods -------------------------------------------------------------------

@pytest.mark.parametrize("path", [ORDERS, READINGS])
@pytest.mark.parametrize("content_type", [
    None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/xml", "application/jsonx", "json", "text/json", "application/octet-stream",
    "*/*", "",
])
def test_a_body_that_is_not_declared_json_is_415(api: Api, nothing_stored: None, meter: int,
                                                 path: str, content_type: str | None) -> None:
    valid = topup(meter) if path == ORDERS else {"readings": [reading()]}
    resp = post_json(api, path, valid, content_type=content_type)
    assert_error(resp, 415, "Content-Type")


@pytest.mark.parametrize("path", [CUSTOMERS, ORDERS, CONSUMPTION, READINGS, FRESHNESS])
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_an_unsupported_method_is_405_with_allow(api: Api, aggregator_key: str, path: str,
                                                 method: str) -> None:
    resp = api.http.request(method, path, headers=credentials(api, path, aggregator_key),
                            content=b"{}")
    assert_error(resp, 405, "Method")
    assert "GET" in resp.headers["allow"] or "POST" in resp.headers["allow"]
