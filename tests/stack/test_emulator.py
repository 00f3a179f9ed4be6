"""The local Supabase stand-in of `nxt dev`: the job scheduler (driven by a fake clock), the
code watcher, the printed keys, disabled functions (404, as Supabase answers), the `apikey`
header Supabase clients send, a real `supabase` client against the served functions, and a whole
`nxt dev` run that reloads on a change, runs the jobs and stops leaving nothing behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from supabase_functions.errors import FunctionsHttpError

from nxt_cli.emulator import SourceWatcher, dev_keys, served_functions
from nxt_cli.harness import (
    ROOT,
    PortTaken,
    ScratchDatabases,
    free_port,
    nxt_serve,
    serve,
    stack_env,
    stop_process,
)
from nxt_cli.scheduler import Scheduler, next_fire, outcome, read_schedules
from nxt_cli.seed import AGGREGATOR_ID, DEV_A_ID, LENDER_ID
from shared.auth.errors import AuthError
from shared.auth.verifier import JWTVerifier
from shared.jobs import Schedule
from supabase import ClientOptions, create_client
from tests.conftest import TEST_JWT_SECRET, Api, Seeded
from tests.support.snapshots import delete_meters, write_hourly

# supabase-py passes its own default timeout to a parameter it deprecated: not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The 'timeout' parameter is deprecated:DeprecationWarning")

# -- the scheduler, on a fake clock -------------------------------------------------------------


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def fake_job(code: str) -> Callable[[str], list[str]]:
    """A command that stands in for `nxt invoke <job>`: a short Python program."""
    return lambda _job: [sys.executable, "-c", code]


PRINTS_DONE = "import json; print('a log line'); print(json.dumps({'status': 'done', 'rows': 3}))"
RUN_LINE = re.compile(r"^job (?P<job>[\w-]+): (?P<status>.+) in (?P<seconds>\d+\.\d\d)s$")


def test_cron_is_read_in_the_schedule_time_zone() -> None:
    after = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
    assert next_fire(Schedule("0 6 * * *", "Africa/Lagos"), after) == datetime(
        2026, 3, 1, 5, 0, tzinfo=UTC)
    # New York moves to summer time on 2026-03-08: 06:00 local is 11:00 UTC, then 10:00.
    ny = Schedule("0 6 * * *", "America/New_York")
    assert next_fire(ny, datetime(2026, 3, 7, 12, tzinfo=UTC)) == datetime(
        2026, 3, 8, 10, tzinfo=UTC)
    assert next_fire(ny, datetime(2026, 3, 6, 12, tzinfo=UTC)) == datetime(
        2026, 3, 7, 11, tzinfo=UTC)
    # Strictly after: a time on the slot itself gets the next one.
    assert next_fire(Schedule("*/5 * * * *"), datetime(2026, 1, 1, 0, 5, tzinfo=UTC)) == (
        datetime(2026, 1, 1, 0, 10, tzinfo=UTC))


def test_a_job_runs_when_its_slot_comes_and_prints_one_line() -> None:
    clock = FakeClock(datetime(2026, 5, 4, 12, 0, 30, tzinfo=UTC))
    lines: list[str] = []
    scheduler = Scheduler({"every-minute": Schedule("* * * * *")}, clock=clock,
                          emit=lines.append, command=fake_job(PRINTS_DONE))
    try:
        assert scheduler.next_runs() == {"every-minute": datetime(2026, 5, 4, 12, 1,
                                                                  tzinfo=UTC)}
        assert scheduler.tick() == []
        clock.advance(seconds=29)
        assert scheduler.tick() == []
        clock.advance(seconds=1)
        assert scheduler.tick() == ["every-minute"]
        assert scheduler.wait_idle(30)
        assert len(lines) == 1, lines
        match = RUN_LINE.match(lines[0])
        assert match and match["job"] == "every-minute" and match["status"] == "done", lines
        assert scheduler.next_runs()["every-minute"] == datetime(2026, 5, 4, 12, 2, tzinfo=UTC)
        clock.advance(minutes=1)
        assert scheduler.tick() == ["every-minute"]
        assert scheduler.wait_idle(30)
        assert len(lines) == 2 and RUN_LINE.match(lines[1])
    finally:
        scheduler.stop()


def test_at_most_one_run_of_a_job_at_a_time() -> None:
    clock = FakeClock(datetime(2026, 5, 4, 12, 0, 59, tzinfo=UTC))
    lines: list[str] = []
    scheduler = Scheduler({"slow": Schedule("* * * * *")}, clock=clock, emit=lines.append,
                          command=fake_job("import time; time.sleep(60)"))
    try:
        clock.advance(seconds=1)
        assert scheduler.tick() == ["slow"]
        clock.advance(minutes=1)
        assert scheduler.tick() == []  # the first run is still going
        assert scheduler.running() == {"slow"}
        assert lines == ["job slow: skipped (the previous run is still going)"]
    finally:
        started = time.monotonic()
        scheduler.stop(timeout=10)
    # Stopping ends the run at once (SIGTERM), and it still gets its one line.
    assert time.monotonic() - started < 5
    assert scheduler.running() == set()
    assert len(lines) == 2 and re.match(r"^job slow: interrupted in \d+\.\d\ds$", lines[1])


def test_missed_slots_run_once_not_once_each() -> None:
    clock = FakeClock(datetime(2026, 5, 4, 12, 0, 30, tzinfo=UTC))
    lines: list[str] = []
    scheduler = Scheduler({"j": Schedule("* * * * *")}, clock=clock, emit=lines.append,
                          command=fake_job(PRINTS_DONE))
    try:
        clock.advance(minutes=90)  # a laptop asleep
        assert scheduler.tick() == ["j"]
        assert scheduler.tick() == []
        assert scheduler.next_runs()["j"] == datetime(2026, 5, 4, 13, 31, tzinfo=UTC)
        assert scheduler.wait_idle(30) and len(lines) == 1
    finally:
        scheduler.stop()


def test_a_failed_run_is_one_line_with_its_reason() -> None:
    clock = FakeClock(datetime(2026, 5, 4, 12, 0, tzinfo=UTC))
    lines: list[str] = []
    code = "import sys; print('ok so far'); sys.exit('boom: the database is gone')"
    scheduler = Scheduler({"broken": Schedule("0 * * * *")}, clock=clock, emit=lines.append,
                          command=fake_job(code), run_now=True)
    try:
        assert scheduler.tick() == ["broken"]
        assert scheduler.wait_idle(30)
    finally:
        scheduler.stop()
    assert len(lines) == 1
    assert lines[0].startswith("job broken: failed (exit 1): boom: the database is gone in ")


def test_run_now_starts_every_job_at_once_then_follows_the_schedule() -> None:
    clock = FakeClock(datetime(2026, 5, 4, 12, 7, tzinfo=UTC))
    lines: list[str] = []
    scheduler = Scheduler({"a": Schedule("5 * * * *"), "b": Schedule("30 0 * * *")},
                          clock=clock, emit=lines.append, command=fake_job(PRINTS_DONE),
                          run_now=True)
    try:
        assert scheduler.tick() == ["a", "b"]
        assert scheduler.wait_idle(30)
        assert sorted(line.split(":")[0] for line in lines) == ["job a", "job b"]
        assert scheduler.next_runs() == {"a": datetime(2026, 5, 4, 13, 5, tzinfo=UTC),
                                         "b": datetime(2026, 5, 5, 0, 30, tzinfo=UTC)}
    finally:
        scheduler.stop()


def test_a_bad_schedule_is_reported_and_the_others_still_run() -> None:
    clock = FakeClock(datetime(2026, 5, 4, 12, 0, tzinfo=UTC))
    lines: list[str] = []
    scheduler = Scheduler({"bad-zone": Schedule("* * * * *", "Mars/Olympus_Mons"),
                           "bad-cron": Schedule("61 * * * *"), "good": Schedule("* * * * *")},
                          clock=clock, emit=lines.append, command=fake_job(PRINTS_DONE))
    scheduler.stop()
    assert set(scheduler.next_runs()) == {"good"}
    assert [line.split(" (")[0] for line in lines] == ["job bad-cron: not scheduled",
                                                        "job bad-zone: not scheduled"]


def test_a_new_schedule_takes_effect_and_an_unchanged_one_keeps_its_slot() -> None:
    clock = FakeClock(datetime(2026, 5, 4, 12, 0, 30, tzinfo=UTC))
    scheduler = Scheduler({"a": Schedule("*/5 * * * *"), "b": Schedule("0 * * * *")},
                          clock=clock, emit=lambda _: None, command=fake_job(PRINTS_DONE))
    clock.advance(minutes=2)
    scheduler.update({"a": Schedule("*/5 * * * *"), "b": Schedule("30 * * * *"),
                      "c": Schedule("0 0 * * *")})
    assert scheduler.next_runs() == {"a": datetime(2026, 5, 4, 12, 5, tzinfo=UTC),
                                     "b": datetime(2026, 5, 4, 12, 30, tzinfo=UTC),
                                     "c": datetime(2026, 5, 5, 0, 0, tzinfo=UTC)}
    scheduler.update({"a": Schedule("*/5 * * * *")})
    assert set(scheduler.next_runs()) == {"a"}
    scheduler.stop()


@pytest.mark.parametrize(("returncode", "stdout", "stderr", "expected"), [
    (0, '{"log": 1}\n{"job": "x", "status": "done", "rows": 2}\n', "", "done"),
    (0, '{"status": "skipped", "reason": "another run holds its lock"}', "",
     "skipped (another run holds its lock)"),
    (0, "not json", "", "done"),
    (2, "", "Traceback...\nLookupError: no job\n", "failed (exit 2): LookupError: no job"),
    (-9, "", "", "failed (exit -9): no output"),
])
def test_the_status_of_a_run(returncode: int, stdout: str, stderr: str, expected: str) -> None:
    assert outcome(returncode, stdout, stderr) == expected


def test_schedules_are_read_from_the_job_declarations() -> None:
    from nxt_cli.invoke import jobs

    env = {k: v for k, v in os.environ.items() if k != "K_SERVICE"}
    env.update(PYTHONPATH=str(ROOT), NXT_SUPABASE_CONFIG=str(ROOT / "supabase" / "config.toml"))
    schedules = read_schedules(ROOT, env)
    declared = {name: target.__nxt_schedule__ for name, target in jobs(ROOT).items()}
    assert schedules == declared
    assert schedules["snapshot-meters"] == Schedule("5 * * * *", "UTC")


# -- the watcher and the keys -------------------------------------------------------------------


def test_the_watcher_sees_edits_new_and_removed_files(tmp_path: Path) -> None:
    src = tmp_path / "functions" / "hello"
    src.mkdir(parents=True)
    main = src / "main.py"
    main.write_text("x = 1\n")
    (src / "__pycache__").mkdir()
    link = tmp_path / "linked"
    link.symlink_to(tmp_path / "functions")  # functions/ may be a symlink in a checkout copy
    watcher = SourceWatcher([link], interval=0)
    assert watcher.changes() == []
    main.write_text("x = 2  # edited\n")
    assert watcher.changes() == [main.resolve()]
    assert watcher.changes() == []
    (src / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    (src / "notes.txt").write_text("not source")
    assert watcher.changes() == []
    helper = src / "helper.py"
    helper.write_text("y = 1\n")
    assert watcher.changes() == [helper.resolve()]
    helper.unlink()
    assert watcher.changes() == [helper.resolve()]


def test_the_watcher_polls_at_most_once_an_interval(tmp_path: Path) -> None:
    now = [100.0]
    (tmp_path / "a.py").write_text("1")
    watcher = SourceWatcher([tmp_path], interval=1.0, monotonic=lambda: now[0])
    (tmp_path / "a.py").write_text("22")
    assert watcher.changes() == []  # not yet due
    now[0] += 1.0
    assert watcher.changes() == [(tmp_path / "a.py").resolve()]


def test_dev_keys_are_supabase_shaped_and_verify_with_the_secret() -> None:
    keys = dev_keys(TEST_JWT_SECRET)
    verifier = JWTVerifier(hs256_secret=TEST_JWT_SECRET)
    for token, role in ((keys.anon, "anon"), (keys.service_role, "service_role")):
        claims = verifier.verify(token)
        assert claims["role"] == role and claims["iss"] == "supabase-demo"
        assert "aud" not in claims
        assert claims["exp"] - time.time() > 5 * 365 * 24 * 3600
    with pytest.raises(AuthError):
        JWTVerifier(hs256_secret="another-secret-of-at-least-32-bytes!!").verify(keys.anon)


def test_a_taken_port_is_a_clear_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        server = nxt_serve(_env(), port=sock.getsockname()[1], cwd=None)
        with pytest.raises(PortTaken, match="is taken by another program"):
            server.start()
        assert server.proc is None  # nothing was started


def test_served_and_disabled_functions_are_read_from_config_toml(tmp_path: Path) -> None:
    project = _project(tmp_path, disabled=("customers",))
    served, disabled = served_functions(project)
    assert disabled == ["customers"]
    assert "orders" in served and "customers" not in served


# -- over real HTTP, with the Supabase client ---------------------------------------------------


def _client(api: Api, key: str, user_token: str | None = None) -> Any:
    # As an app holds it: the project key, and the signed-in user's access token if any.
    options = ClientOptions(headers={"Authorization": f"Bearer {user_token}"}) if user_token \
        else None
    return create_client(api.base_url, key, options)


@pytest.fixture(scope="module")
def keys() -> Any:
    return dev_keys(TEST_JWT_SECRET)


@pytest.mark.db
def test_supabase_client_reads_customers_as_a_lender(api: Api, keys: Any) -> None:
    lender = api.token(LENDER_ID)
    client = _client(api, keys.anon, lender)
    body = client.functions.invoke("customers?size=3&page=2",
                                   {"method": "GET", "responseType": "json"})
    direct = api.get("/functions/v1/customers", token=lender, params={"size": 3, "page": 2})
    assert direct.status_code == 200
    assert body == direct.json()
    assert body["size"] == 3 and body["page"] == 2 and len(body["entries"]) == 3


@pytest.mark.db
def test_supabase_client_creates_an_order_with_an_idempotency_key(
        api: Api, functions_db: Seeded, keys: Any) -> None:
    with psycopg.connect(functions_db.url) as conn:
        meter = conn.execute(
            "select m.id from meters m join connections n on n.id = m.connection_id"
            " join customers c on c.id = n.customer_id join grids g on g.id = c.grid_id"
            " where m.rls_organization_id = %s and m.deleted_at is null"
            " and g.deleted_at is null and g.kwh_tariff > 0 order by m.id limit 1",
            (DEV_A_ID,)).fetchone()[0]  # type: ignore[index]
    client = _client(api, keys.service_role)
    key = str(uuid.uuid4())
    body = {"meter_id": meter, "amount": "250.00", "currency": "NGN",
            "payment_method": "USSD", "payment_channel": "USSD"}
    options = {"body": body, "headers": {"Idempotency-Key": key}, "responseType": "json"}
    order = client.functions.invoke("orders", options)
    assert order["meter_id"] == meter and order["order_status"] == "INITIALISED"
    assert Decimal(str(order["amount"])) == Decimal("250.00")
    again = client.functions.invoke("orders", options)
    assert again == order  # the replay, not a second order
    with psycopg.connect(functions_db.url) as conn:
        assert conn.execute("select count(*) from orders where id = %s",
                            (order["id"],)).fetchone() == (1,)
    # Without the key the function says why, and the client raises with that message.
    with pytest.raises(FunctionsHttpError) as err:
        client.functions.invoke("orders", {"body": body})
    assert err.value.status == 400 and "Idempotency-Key" in err.value.message


@pytest.fixture
def hourly_rows(functions_ts: str) -> Iterator[tuple[datetime, int]]:
    """Four visible hours of two meters of our own, in a window no other test reads."""
    t0, hours, meters = datetime(2027, 2, 1, tzinfo=UTC), 4, (9301, 9302)
    with psycopg.connect(functions_ts) as conn:
        write_hourly(conn, [(t0 + timedelta(hours=h), m, 1.5, f"MTR-{m}", "Gbamu", False, m)
                            for m in meters for h in range(hours)])
    try:
        yield t0, hours * len(meters)
    finally:
        with psycopg.connect(functions_ts) as conn:
            delete_meters(conn, meters)


@pytest.mark.db
def test_supabase_client_reads_meter_consumption_with_an_api_key(
        api: Api, functions_db: Seeded, keys: Any, hourly_rows: tuple[datetime, int]) -> None:
    t0, count = hourly_rows
    api_key = functions_db.api_keys[0][1]  # the data aggregator's demo key
    client = _client(api, keys.anon)  # the anon key rides along as apikey and bearer
    window = f"FROM={t0.isoformat()}&TO={(t0 + timedelta(hours=4)).isoformat()}"
    window = window.replace("+", "%2B")
    body = client.functions.invoke(f"meter-consumption?{window}&pageLimit=100", {
        "method": "GET", "headers": {"X-API-Key": api_key}, "responseType": "json"})
    assert body["total"] == count
    assert {row["meterId"] for row in body["readings"]} == {"MTR-9301", "MTR-9302"}
    direct = api.get("/functions/v1/meter-consumption", headers={"X-API-Key": api_key},
                     params={"FROM": t0.isoformat(), "TO": (t0 + timedelta(hours=4)).isoformat(),
                             "pageLimit": 100})
    assert body == direct.json()
    # The legacy URL, as the data aggregator's client calls it: the same answer.
    legacy = client.functions.invoke(f"meter-consumption-2?{window}&pageLimit=100", {
        "method": "GET", "headers": {"X-API-Key": api_key}, "responseType": "json"})
    assert legacy == body


@pytest.mark.db
def test_supabase_client_sees_the_gate_and_unknown_functions(api: Api, keys: Any) -> None:
    client = _client(api, keys.anon)
    with pytest.raises(FunctionsHttpError) as err:
        client.functions.invoke("orders", {"method": "GET"})
    # A valid JWT (anon) passes the gate; the function itself wants someone signed in, and the
    # client surfaces its message.
    assert err.value.status == 401 and "sign in" in err.value.message
    with pytest.raises(FunctionsHttpError) as err:
        client.functions.invoke("no-such-function", {"method": "GET"})
    assert err.value.status == 404
    aggregator = _client(api, keys.anon, api.token(AGGREGATOR_ID))
    with pytest.raises(FunctionsHttpError) as err:
        aggregator.functions.invoke("orders", {"method": "GET"})
    assert err.value.status == 403


# -- the apikey header --------------------------------------------------------------------------


@pytest.mark.db
@pytest.mark.parametrize("apikey", ["anon", "service_role", "garbage", "sb_publishable_abc"])
def test_an_apikey_header_beside_a_bearer_changes_nothing(api: Api, keys: Any,
                                                          apikey: str) -> None:
    value = {"anon": keys.anon, "service_role": keys.service_role}.get(apikey, apikey)
    lender = api.token(LENDER_ID)
    expected = api.get("/functions/v1/customers", token=lender, params={"size": 1})
    resp = api.get("/functions/v1/customers", token=lender, params={"size": 1},
                   headers={"apikey": value})
    assert resp.status_code == expected.status_code == 200
    assert resp.json() == expected.json()


@pytest.mark.db
def test_a_service_role_apikey_grants_nothing(api: Api, keys: Any) -> None:
    # meter-readings takes the service role only: the bearer decides, never the apikey header.
    resp = api.get("/functions/v1/meter-readings", token=keys.anon,
                   headers={"apikey": keys.service_role})
    assert resp.status_code == 403
    resp = api.get("/functions/v1/meter-readings", headers={"apikey": keys.service_role})
    assert resp.status_code == 401


@pytest.mark.db
def test_preflight_allows_the_apikey_header(api: Api) -> None:
    resp = api.request("OPTIONS", "/functions/v1/customers", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "apikey, authorization, x-client-info"})
    assert resp.status_code in (200, 204)
    allowed = resp.headers["access-control-allow-headers"].lower()
    assert {"apikey", "authorization", "x-client-info"} <= {
        h.strip() for h in allowed.split(",")}


# -- disabled functions -------------------------------------------------------------------------


def _project(tmp_path: Path, *, disabled: tuple[str, ...] = (), api_port: int = 54321,
             copy_functions: bool = False) -> Path:
    """A checkout-shaped directory: config.toml (some functions disabled) and functions/."""
    project = tmp_path / "project"
    (project / "supabase").mkdir(parents=True)
    text = (ROOT / "supabase" / "config.toml").read_text()
    text = text.replace("port = 54321", f"port = {api_port}")
    for name in disabled:
        text = _set_enabled(text, name, enabled=False)
    (project / "supabase" / "config.toml").write_text(text)
    if copy_functions:
        shutil.copytree(ROOT / "functions", project / "functions",
                        ignore=shutil.ignore_patterns("__pycache__"))
    else:
        (project / "functions").symlink_to(ROOT / "functions")
    return project


def _set_enabled(text: str, name: str, *, enabled: bool) -> str:
    table = f"[functions.{name}]\nenabled = {'false' if enabled else 'true'}"
    assert table in text, f"config.toml has no [functions.{name}] starting with `enabled`"
    return text.replace(table, f"[functions.{name}]\nenabled = {str(enabled).lower()}")


def _env(**extra: str) -> dict[str, str]:
    # No NXT_SUPABASE_CONFIG: the project's own config.toml is found from its directory.
    return stack_env(jwt_secret=TEST_JWT_SECRET, config=False, **extra)


@pytest.mark.db
def test_a_disabled_function_answers_404_like_an_unknown_one(
        tmp_path: Path, functions_db: Seeded, functions_ts: str) -> None:
    project = _project(tmp_path, disabled=("customers",))
    env = _env(DATABASE_URL=functions_db.url, TIMESERIES_DATABASE_URL=functions_ts)
    with serve(env, tmp_path / "serve.log", cwd=project) as url:
        base = f"{url}/functions/v1"
        token = mint_lender()
        disabled = httpx.get(f"{base}/customers", headers={"Authorization": f"Bearer {token}"})
        unknown = httpx.get(f"{base}/no-such-function",
                            headers={"Authorization": f"Bearer {token}"})
        # Supabase does not serve a disabled function at all: the same 404 as a name nobody
        # wrote, whatever the credentials, the method or the sub-path.
        assert disabled.status_code == unknown.status_code == 404
        assert disabled.content == unknown.content
        assert httpx.post(f"{base}/customers/openapi.json").status_code == 404
        assert httpx.options(f"{base}/customers").status_code == 404
        # The others are served as usual.
        assert httpx.get(f"{base}/orders").status_code == 401
        assert httpx.get(f"{base}/orders", params={"size": 1},
                         headers={"Authorization": f"Bearer {token}"}).status_code == 200
        client = create_client(url, dev_keys(TEST_JWT_SECRET).anon,
                               ClientOptions(headers={"Authorization": f"Bearer {token}"}))
        with pytest.raises(FunctionsHttpError) as err:
            client.functions.invoke("customers", {"method": "GET"})
        assert err.value.status == 404


def mint_lender() -> str:
    from nxt_cli.tokens import mint_token

    return mint_token(TEST_JWT_SECRET, role="authenticated", organization_id=LENDER_ID,
                      organization_type="LENDER")


# -- a whole `nxt dev` ---------------------------------------------------------------------------


class Output:
    """The lines a process prints, collected on a thread so a test can wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 60,
                 after: int = 0) -> str:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    if predicate(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    raise AssertionError("not printed; got:\n" + "\n".join(self.lines))
                self._changed.wait(min(left, 0.5))

    def text(self) -> str:
        with self._changed:
            return "\n".join(self.lines)


def _descendants(pid: int) -> set[int]:
    """The processes under `pid` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def small_planes(scratch: ScratchDatabases) -> tuple[str, str]:
    """Both planes migrated, with a little demo data and telemetry: `nxt dev` loads nothing."""
    from nxt_cli.migrate import migrate, migrate_timeseries
    from nxt_cli.seed import seed
    from nxt_cli.telemetry import seed_telemetry

    url, ts_url = scratch.create("nxt_dev"), scratch.create("nxt_dev_ts")
    migrate(url)
    seed(url, customers=60)
    migrate_timeseries(ts_url, engine="native")
    seed_telemetry(url, ts_url, days=1)
    return url, ts_url


@pytest.mark.db
def test_nxt_dev_reloads_on_change_runs_the_jobs_and_stops_cleanly(
        tmp_path: Path, small_planes: tuple[str, str]) -> None:
    url, ts_url = small_planes
    api_port = free_port()
    project = _project(tmp_path, api_port=api_port, copy_functions=True)
    env = _env(DATABASE_URL=url, TIMESERIES_DATABASE_URL=ts_url)
    proc = subprocess.Popen([sys.executable, "-m", "nxt_cli.main", "dev", "--run-jobs-now"],
                            cwd=project, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = Output(proc)
    base = f"http://127.0.0.1:{api_port}"
    try:
        out.wait_for(lambda line: line.startswith("ready."), timeout=90)
        text = out.text()
        assert f"API URL: {base}" in text
        anon = re.search(r"^anon key: (\S+)$", text, re.M)
        service = re.search(r"^service_role key: (\S+)$", text, re.M)
        assert anon and service, text
        verifier = JWTVerifier(hs256_secret=TEST_JWT_SECRET)
        assert verifier.verify(anon[1])["role"] == "anon"
        assert verifier.verify(service[1])["role"] == "service_role"
        assert "scheduled snapshot-meters: `5 * * * *` UTC, first run now" in text

        # The printed keys work with a Supabase client as printed.
        client = create_client(base, service[1])
        assert client.functions.invoke("customers?size=1", {
            "method": "GET", "responseType": "json"})["size"] == 1

        # Every job runs once (--run-jobs-now), each summed up in one line.
        names = set(json.loads(subprocess.run(
            [sys.executable, "-m", "nxt_cli.scheduler", str(project)], cwd=project, env=env,
            capture_output=True, text=True, check=True, timeout=120).stdout.splitlines()[-1]))
        for name in names:
            line = out.wait_for(lambda ln, n=name: ln.startswith(f"job {n}: "), timeout=90)
            match = RUN_LINE.match(line)
            assert match and not match["status"].startswith("failed"), line

        # An edit restarts the functions, with one line.
        seen = len(out.lines)
        with (project / "functions" / "customers" / "main.py").open("a") as f:
            f.write("\n# edited while nxt dev runs\n")
        line = out.wait_for(lambda ln: ln.startswith("reload"), timeout=30, after=seen)
        assert line.startswith("reloaded functions in ") and "customers/main.py" in line, line
        resp = httpx.get(f"{base}/functions/v1/customers", params={"size": 1},
                         headers={"Authorization": f"Bearer {service[1]}"})
        assert resp.status_code == 200

        # Disabling a function in config.toml is a change too: it is gone, as on Supabase.
        seen = len(out.lines)
        config = project / "supabase" / "config.toml"
        config.write_text(_set_enabled(config.read_text(), "customers", enabled=False))
        line = out.wait_for(lambda ln: ln.startswith("reload"), timeout=30, after=seen)
        assert line.startswith("reloaded functions in ") and "config.toml" in line, line
        resp = httpx.get(f"{base}/functions/v1/customers",
                         headers={"Authorization": f"Bearer {service[1]}"})
        assert resp.status_code == 404
        assert httpx.get(f"{base}/functions/v1/orders").status_code == 401
        assert sum(ln.startswith("reload") for ln in out.lines[seen:]) == 1

        # A broken edit keeps the stack up and says so once; the fix brings the functions back.
        orders = project / "functions" / "orders" / "main.py"
        good = orders.read_text()
        seen = len(out.lines)
        orders.write_text(good + "\ndef broken(:\n")
        line = out.wait_for(lambda ln: ln.startswith("reload"), timeout=30, after=seen)
        assert line.startswith("reload failed: functions/orders/main.py changed"), line
        seen = len(out.lines)
        orders.write_text(good)
        line = out.wait_for(lambda ln: ln.startswith("reload"), timeout=30, after=seen)
        assert line.startswith("reloaded functions in "), line
        assert httpx.get(f"{base}/functions/v1/orders").status_code == 401
        assert not [ln for ln in out.lines if ln.startswith("the functions server exited")]

        children = _descendants(proc.pid)
        assert children, "the functions server runs as a child"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        out.wait_for(lambda ln: ln == "stopped.", timeout=10)
    finally:
        stop_process(proc)
    # Nothing is left running: no functions server, no job.
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)]
    with psycopg.connect(url) as conn:
        # No connection of the functions or the jobs is left open either.
        left = conn.execute("select count(*) from pg_stat_activity where datname = any(%s)"
                            " and pid <> pg_backend_pid()",
                            ([url.rsplit("/", 1)[1], ts_url.rsplit("/", 1)[1]],)).fetchone()
        assert left == (0,)
