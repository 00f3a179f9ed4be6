"""Schemathesis against each HTTP function's checked-in OpenAPI document, over real HTTP.

Every generated request (valid data, and data the document says is invalid) must get an answer
that is not a 5xx and that the document describes: a documented status code, the documented
content type, a body matching the documented schema, and a rejection (4xx) of invalid data.

The functions run in a `nxt serve` of their own, on a database of their own: the fuzzer creates
and completes orders and ingests readings, which must not disturb the other function tests.
Generation is derandomized (the same cases on every run) and bounded per operation.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from nxt_cli.harness import ROOT, ScratchDatabases, serve, stack_env
from nxt_cli.seed import OPERATOR_ID
from tests.conftest import TEST_JWT_SECRET, Api
from tests.support.snapshots import write_hourly

pytestmark = pytest.mark.db

DOCS = ROOT / "docs" / "openapi"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, negative_data_rejection]
# Examples per operation and generation mode. Enough for a few hundred cases per function, small
# enough to keep each function's run around 20-40 s on a shared two-core machine.
EXAMPLES = {"customers": 150, "orders": 60, "meter-consumption": 300, "meter-readings": 200,
            "freshness": 250}
# freshness takes no input: its cases send undocumented query parameters (which it ignores).
MIN_CASES = {"customers": 500, "orders": 600, "meter-consumption": 500, "meter-readings": 350,
             "freshness": 200}
T0 = datetime(2026, 10, 5, tzinfo=UTC)  # start of the hourly rows served by meter-consumption
HOURS = 48


@dataclass
class Env:
    api: Api
    db_url: str
    ts_url: str
    aggregator_key: str
    meters: list[int]


@dataclass
class Tally:
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # distinct failure -> first report

    def record(self, status: int) -> None:
        self.cases += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1


def _load_hourly(ts_url: str, meters: list[int]) -> None:
    """Hourly rows for meter-consumption to page through (the fuzzer's 200 answers)."""
    with psycopg.connect(ts_url) as conn:
        write_hourly(conn, [(T0 + timedelta(hours=h), m, h / 7, f"MTR-{m}", "Gbamu", False,
                             None if m % 2 else m * 10)
                            for m in meters[:5] for h in range(HOURS)])


@pytest.fixture(scope="module")
def env(scratch: ScratchDatabases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from nxt_cli.migrate import migrate, migrate_timeseries
    from nxt_cli.seed import seed

    db_url = scratch.create("nxt_fuzz")
    migrate(db_url)
    keys = seed(db_url).api_keys
    ts_url = scratch.create("nxt_fuzz_ts")
    migrate_timeseries(ts_url, engine="native")
    with psycopg.connect(db_url) as conn:
        meters = [r[0] for r in conn.execute(
            "select id from meters where deleted_at is null order by id limit 20").fetchall()]
    _load_hourly(ts_url, meters)
    log_path = tmp_path_factory.mktemp("fuzz") / "functions.log"
    env = stack_env(db_url, ts_url, jwt_secret=TEST_JWT_SECRET, DB_POOL_MAX_SIZE="4")
    with serve(env, log_path) as url:
        api = Api(url, TEST_JWT_SECRET, log_path)
        yield Env(api, db_url, ts_url, keys[0][1], meters)
        api.http.close()


def _credentials(env: Env, name: str, method: str) -> dict[str, str]:
    if name == "meter-consumption":
        return {"X-API-Key": env.aggregator_key}
    if name == "meter-readings" or (name == "orders" and method == "POST"):
        return {"Authorization": f"Bearer {env.api.token(role='service_role')}"}
    return {"Authorization": f"Bearer {env.api.token(OPERATOR_ID)}"}


# -- steering: some cases into the data the functions hold, so 200 answers get checked too ---

def _steer_consumption(case: schemathesis.Case, data: st.DataObject) -> None:
    if not data.draw(st.booleans(), label="steer"):
        return
    start = T0 + timedelta(hours=data.draw(st.integers(-6, HOURS), label="start"))
    end = start + timedelta(hours=data.draw(st.integers(1, HOURS), label="hours"))
    naive = data.draw(st.booleans(), label="naive")
    query = dict(case.query or {})
    query["FROM"] = start.replace(tzinfo=None).isoformat() if naive else start.isoformat()
    query["TO"] = end.isoformat()
    query.pop("cursor", None)
    case.query = query


def _steer_readings(env: Env) -> Callable[[schemathesis.Case, st.DataObject], None]:
    def steer(case: schemathesis.Case, data: st.DataObject) -> None:
        body = case.body
        if not isinstance(body, dict) or not isinstance(body.get("readings"), list):
            return
        if not data.draw(st.booleans(), label="steer"):
            return
        now = datetime.now(UTC)
        for row in body["readings"][:50]:
            if isinstance(row, dict):
                row["meter_id"] = data.draw(st.sampled_from(env.meters), label="meter")
                minutes = data.draw(st.integers(1, 60 * 24 * 30), label="age")
                row["ts"] = (now - timedelta(minutes=minutes)).isoformat()
                row["counter_kwh"] = str(data.draw(st.decimals(0, 10**6, places=4)))
                for name, bound in (("power_w", 10**5), ("voltage_v", 400),
                                    ("credit_kwh", 10**4)):
                    if name in row:
                        row[name] = data.draw(st.none() | st.decimals(0, bound, places=3).map(str))
        case.body = {"readings": body["readings"][:50]}
    return steer


def _steer_orders(env: Env) -> Callable[[schemathesis.Case, st.DataObject], None]:
    def steer(case: schemathesis.Case, data: st.DataObject) -> None:
        if case.method.upper() == "POST" and case.path == "/":
            case.headers = {**(case.headers or {}), "Idempotency-Key": str(uuid.uuid4())}
            if isinstance(case.body, dict) and data.draw(st.booleans(), label="steer"):
                case.body["meter_id"] = data.draw(st.sampled_from(env.meters), label="meter")
                amount = data.draw(st.decimals(Decimal("0.01"), 10**6, places=2), label="amount")
                case.body["amount"] = str(amount)
        elif case.path_parameters and data.draw(st.booleans(), label="steer"):
            case.path_parameters = {"id": data.draw(st.integers(1, 400), label="id")}
    return steer


def _steer_freshness(case: schemathesis.Case, data: st.DataObject) -> None:
    # No parameters to generate: undocumented ones instead, which must change nothing.
    names = st.text(min_size=1, max_size=20)
    case.query = data.draw(st.dictionaries(names, st.text(max_size=40), max_size=4), label="q")


def _run_operation(env: Env, name: str, operation: Any, mode: GenerationMode, tally: Tally,
                   session: requests.Session) -> None:
    steer: Callable[[schemathesis.Case, st.DataObject], None] | None = {
        "meter-consumption": _steer_consumption,
        "meter-readings": _steer_readings(env),
        "orders": _steer_orders(env),
        "freshness": _steer_freshness,
    }.get(name)

    # Fixed, so that no case goes without them: the credentials are not what is fuzzed here.
    credentials = _credentials(env, name, operation.method.upper())
    strategy = operation.as_strategy(generation_mode=mode, headers=credentials)

    @settings(max_examples=EXAMPLES[name], derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
              print_blob=False)
    @given(case=strategy, data=st.data())
    def fuzz(case: schemathesis.Case, data: st.DataObject) -> None:
        if steer is not None and mode is GenerationMode.POSITIVE:
            steer(case, data)
        try:
            response = case.call(session=session, timeout=30)
        except requests.RequestException as exc:
            tally.failures.setdefault(f"{operation.label}: {type(exc).__name__}",
                                      f"{exc}\n{case.as_curl_command()}")
            return
        tally.record(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                _note(tally, operation.label, failure, group)
        except Failure as failure:
            _note(tally, operation.label, failure, failure)

    fuzz()


def _note(tally: Tally, label: str, failure: Failure, report: BaseException) -> None:
    key = f"{label}: {failure.title}: {failure.message.splitlines()[0] if failure.message else ''}"
    tally.failures.setdefault(key, str(report)[:3000])


def _has_inputs(operation: Any) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


@pytest.mark.parametrize("name", ["customers", "orders", "meter-consumption", "meter-readings",
                                  "freshness"])
def test_responses_conform_to_the_document(env: Env, name: str) -> None:
    document = json.loads((DOCS / f"{name}.json").read_text())
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=f"{env.api.base_url}/functions/v1/{name}")
    # An oversized query string is refused before it is parsed (414, documented): a rejection of
    # invalid data too, which schemathesis's default list of rejection statuses leaves out.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "414"]
    tally = Tally()
    started = time.monotonic()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            modes = [GenerationMode.POSITIVE]
            if _has_inputs(operation):
                modes.append(GenerationMode.NEGATIVE)
            for mode in modes:
                _run_operation(env, name, operation, mode, tally, session)
    elapsed = time.monotonic() - started
    print(f"{name}: {tally.cases} cases in {elapsed:.1f}s,"
          f" statuses {sorted(tally.statuses.items())}")
    assert not tally.failures, "\n\n".join(f"{k}\n{v}" for k, v in tally.failures.items())
    assert tally.cases >= MIN_CASES[name]
