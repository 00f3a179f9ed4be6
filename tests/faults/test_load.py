"""Load (issue 7): each HTTP function through `nxt serve` at a sustained concurrency of 64, with
no errors (no 5xx, no connection error) and no connection leak (the functions' connections,
`application_name` nxt-*, never exceed the pool's size and are all idle afterwards); and top-ups
created and completed concurrently, with the credit ledger balanced to the unit.

Short form (`make test`, CI): NXT_LOAD_SECONDS seconds per function, 10 by default. Full form:
`make load` (60 seconds per function). Loopback only; the generator is tests/support/loadgen.py.
Not marked `db`, so CI's second run (PostgreSQL 15) does not spend another minute on it.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from nxt_cli.harness import ScratchDatabases
from nxt_cli.seed import LENDER_ID, OPERATOR_ID
from tests.support import loadgen
from tests.support.loadgen import Call, Outcome
from tests.support.serving import Planes, ServeProcess, last_json, nxt, prepare_planes, rows, serve

SECONDS = float(os.environ.get("NXT_LOAD_SECONDS") or 10)
CONCURRENCY = int(os.environ.get("NXT_LOAD_CONCURRENCY") or 64)
POOL_MAX = 8  # DB_POOL_MAX_SIZE of the server under load, per plane

FN = "/functions/v1"


@dataclass
class LoadStack:
    planes: Planes
    served: ServeProcess
    meters: list[int]  # live meters on grids with a tariff
    customers: list[int]
    api_key: str  # the data aggregator's (meter-consumption)


@pytest.fixture(scope="module")
def stack(scratch: ScratchDatabases, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[LoadStack]:
    from nxt_cli.telemetry import seed_telemetry

    planes = prepare_planes(scratch.create("nxt_load"), scratch.create("nxt_load_ts"))
    seed_telemetry(planes.url, planes.ts_url, days=1)
    built = nxt(["invoke", "snapshot-meters"], planes.url, planes.ts_url)
    assert built.returncode == 0 and last_json(built.stdout)["rows"] > 0, built.stderr[-2000:]
    meters = [r[0] for r in rows(planes.url, """
        select m.id from meters m join connections n on n.id = m.connection_id
          join customers c on c.id = n.customer_id join grids g on g.id = c.grid_id
         where m.deleted_at is null and g.deleted_at is null and g.kwh_tariff > 0
         order by m.id""")]
    customers = [r[0] for r in rows(planes.url, "select id from customers order by id")]
    log = tmp_path_factory.mktemp("load") / "serve.log"
    with serve(planes.url, planes.ts_url, log, DB_POOL_MAX_SIZE=str(POOL_MAX)) as served:
        yield LoadStack(planes, served, meters, customers, planes.api_keys[0][1])


# -- connections -----------------------------------------------------------------------------------

_CONNECTIONS = """
select application_name, count(*), count(*) filter (where state <> 'idle')
  from pg_stat_activity
 where application_name like 'nxt-%%' and datname = any(%s)
 group by application_name
"""


@dataclass
class ConnectionWatch:
    """Samples the functions' connections to the two planes while the load runs."""

    stack: LoadStack
    peak: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def databases(self) -> list[str]:
        return [u.rsplit("/", 1)[1] for u in (self.stack.planes.url, self.stack.planes.ts_url)]

    def now(self) -> dict[str, tuple[int, int]]:
        """application_name -> (connections, connections not idle)."""
        return {name: (n, busy) for name, n, busy in
                rows(self.stack.planes.url, _CONNECTIONS, (self.databases(),))}

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            for name, (n, _) in self.now().items():
                self.peak[name] = max(self.peak.get(name, 0), n)
            self.samples += 1

    def __enter__(self) -> ConnectionWatch:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)

    def check_no_leak(self) -> dict[str, tuple[int, int]]:
        """Peak within the pool; afterwards every connection back in it, idle."""
        assert self.samples > 0
        assert all(n <= POOL_MAX for n in self.peak.values()), self.peak
        deadline = time.monotonic() + 10
        while True:
            after = self.now()
            settled = all(n <= POOL_MAX and busy == 0 for n, busy in after.values())
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert settled, after
        return after


# -- each function under load ----------------------------------------------------------------------

Tokens = dict[str, dict[str, str]]  # caller kind -> its Authorization header
CallMaker = Callable[[LoadStack, int, Tokens], Call]


def customers_call(stack: LoadStack, n: int, tokens: Tokens) -> Call:
    match n % 4:
        case 0:
            return Call("customers", "GET", f"{FN}/customers/{stack.customers[n % 900]}",
                        {"headers": tokens["operator"]})
        case 1:
            return Call("customers", "GET", f"{FN}/customers",
                        {"params": {"page": 1 + n % 40, "size": 25}, "headers": tokens["lender"]})
    return Call("customers", "GET", f"{FN}/customers",
                {"params": {"page": 1 + n % 40, "size": 25, "include_hidden": "true"},
                 "headers": tokens["operator"]})


def orders_call(stack: LoadStack, n: int, tokens: Tokens) -> Call:
    match n % 4:
        case 0:
            key = f"load-{uuid.uuid4()}"
            body = {"meter_id": stack.meters[n % len(stack.meters)], "amount": "250.00",
                    "currency": "NGN", "payment_method": "USSD", "payment_channel": "USSD",
                    "external_reference": key}
            return Call("orders", "POST", f"{FN}/orders",
                        {"json": body, "headers": {**tokens["service"], "Idempotency-Key": key}})
        case 1:
            return Call("orders", "GET", f"{FN}/orders",
                        {"params": {"page": 1 + n % 30, "size": 20}, "headers": tokens["lender"]})
    return Call("orders", "GET", f"{FN}/orders",
                {"params": {"page": 1 + n % 30, "size": 20, "status": "PENDING"},
                 "headers": tokens["operator"]})


def consumption_call(stack: LoadStack, n: int, tokens: Tokens) -> Call:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    params = {"FROM": (end - timedelta(hours=24)).isoformat(), "TO": end.isoformat(),
              "pageLimit": 50, "offset": 50 * (n % 40)}
    if n % 3 == 0:
        return Call("meter-consumption", "GET", f"{FN}/meter-consumption",
                    {"params": params, "headers": tokens["operator"]})
    return Call("meter-consumption", "GET", f"{FN}/meter-consumption",
                {"params": params, "headers": {"X-API-Key": stack.api_key}})


def readings_call(stack: LoadStack, n: int, tokens: Tokens) -> Call:
    # 24 readings of one meter over six hours no other request of the session uses.
    meter = stack.meters[n % len(stack.meters)]
    start = (datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
             - timedelta(days=2, hours=6 * (1 + n // len(stack.meters))))
    batch = [{"meter_id": meter, "ts": (start + j * timedelta(minutes=15)).isoformat(),
              "counter_kwh": f"{500 + n % 1000}.{j:02d}", "power_w": "75.000"}
             for j in range(24)]
    return Call("meter-readings", "POST", f"{FN}/meter-readings",
                {"json": {"readings": batch}, "headers": tokens["service"]})


def freshness_call(stack: LoadStack, n: int, tokens: Tokens) -> Call:
    return Call("freshness", "GET", f"{FN}/freshness", {"headers": tokens["operator"]})


FUNCTIONS: dict[str, tuple[CallMaker, set[int]]] = {
    "customers": (customers_call, {200}),
    "orders": (orders_call, {200, 201}),
    "meter-consumption": (consumption_call, {200}),
    "meter-readings": (readings_call, {200}),
    "freshness": (freshness_call, {200}),
}

# Request numbers are unique over the module, so no two requests write the same rows.
_numbers = itertools.count()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tokens_for(stack: LoadStack) -> Tokens:
    api = stack.served.api
    return {"operator": bearer(api.token(OPERATOR_ID)),
            "lender": bearer(api.token(LENDER_ID)),
            "service": bearer(api.token(role="service_role"))}


def report(name: str, outcomes: list[Outcome], seconds: float) -> dict[str, Any]:
    summary = loadgen.summary(outcomes)
    summary["rps"] = round(len(outcomes) / seconds, 1)
    print(f"\nload {name}: {CONCURRENCY} clients, {seconds:.0f}s: {summary}")
    return summary


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_each_function_under_sustained_load(stack: LoadStack, name: str) -> None:
    make, ok = FUNCTIONS[name]
    tokens = tokens_for(stack)
    with ConnectionWatch(stack) as watch:
        started = time.monotonic()
        outcomes = asyncio.run(loadgen.run(
            stack.served.api.base_url, lambda _worker: make(stack, next(_numbers), tokens),
            workers=CONCURRENCY, seconds=SECONDS))
        elapsed = time.monotonic() - started
    summary = report(name, outcomes, elapsed)
    failed = [o for o in outcomes if o.status not in ok]
    assert not failed, (summary, [(o.status, o.error, o.body) for o in failed[:5]])
    assert len(outcomes) >= 2 * CONCURRENCY, summary  # every client kept sending
    assert stack.served.proc.poll() is None
    after = watch.check_no_leak()
    print(f"connections: peak {watch.peak}, after {after} (pool max {POOL_MAX} per plane)")


# -- top-ups created and completed concurrently: the ledger balances -------------------------------

@dataclass
class TopUps:
    run: str
    meters: list[int]
    service: dict[str, str]
    counter: itertools.count[int] = field(default_factory=itertools.count)
    created: dict[int, Decimal] = field(default_factory=dict)  # order id -> amount
    completed: set[int] = field(default_factory=set)  # answered 200 to a complete
    races: list[tuple[int, int]] = field(default_factory=list)  # statuses of twin completes
    replays_checked: int = 0

    async def flow(self, client: httpx.AsyncClient, worker: int) -> list[Outcome]:
        n = next(self.counter)
        key = f"{self.run}-{n}"
        amount = Decimal(100 + (n * 37) % 4900) + Decimal(n % 100) / 100
        body = {"meter_id": self.meters[n % len(self.meters)], "amount": str(amount),
                "currency": "NGN", "payment_method": "USSD", "payment_channel": "USSD",
                "external_reference": key}
        create = Call("create", "POST", f"{FN}/orders",
                      {"json": body, "headers": {**self.service, "Idempotency-Key": key}})
        made = await loadgen.send(client, create)
        out = [made]
        if made.status != 201:
            return out
        order_id = made.body["id"]
        self.created[order_id] = amount
        if n % 7 == 0:  # the client retried the creation: the same order comes back
            again = await loadgen.send(client, create)
            out.append(again)
            if again.status == 201:
                assert again.body == made.body and again.headers["idempotent-replayed"] == "true"
                self.replays_checked += 1
        action = ("complete", "complete", "complete", "complete", "complete", "twin",
                  "fail", "cancel", "leave", "complete")[n % 10]
        if action == "leave":
            return out
        verb = "complete" if action == "twin" else action
        call = Call(verb, "POST", f"{FN}/orders/{order_id}/{verb}", {"headers": self.service})
        if action == "twin":  # two completions of one order at once: one credit
            pair = await asyncio.gather(loadgen.send(client, call), loadgen.send(client, call))
            out.extend(pair)
            self.races.append((pair[0].status or 0, pair[1].status or 0))
        else:
            out.append(await loadgen.send(client, call))
        if any(o.op == "complete" and o.status == 200 for o in out):
            self.completed.add(order_id)
        return out


CREDIT_SQL = ("select id, coalesce(kwh_credit_available_exact, app.exact(kwh_credit_available), 0)"
              " from meters where id = any(%s)")


def test_concurrent_topups_keep_the_ledger_balanced(stack: LoadStack) -> None:
    api = stack.served.api
    # Few meters, so completions of different orders contend on the same meter rows.
    meters = stack.meters[:24]
    credit_before = dict(rows(stack.planes.url, CREDIT_SQL, (meters,)))
    topups = TopUps(f"ledger-{uuid.uuid4().hex[:8]}", meters,
                    bearer(api.token(role="service_role")))
    with ConnectionWatch(stack) as watch:
        started = time.monotonic()
        outcomes = asyncio.run(loadgen.run_flows(api.base_url, topups.flow, workers=CONCURRENCY,
                                                 seconds=SECONDS))
        elapsed = time.monotonic() - started
    summary = report("orders create+complete", outcomes, elapsed)
    allowed = {"create": {201}, "complete": {200, 409}, "fail": {200}, "cancel": {200}}
    failed = [o for o in outcomes if o.status not in allowed[o.op]]
    assert not failed, (summary, [(o.op, o.status, o.error, o.body) for o in failed[:5]])
    # 409 only for the losing twin of a race.
    assert sum(o.status == 409 for o in outcomes) == len(topups.races)
    assert all(sorted(pair) == [200, 409] for pair in topups.races), topups.races
    assert topups.races and topups.replays_checked and len(topups.completed) > 50

    found = rows(stack.planes.url, """
        select o.id, o.amount_exact, o.tariff_exact, o.order_status::text, w.meter_id,
               (select sum(t.amount_exact) from transactions t
                 where t.order_id = o.id and t.amount_exact > 0),
               (select count(*) from transactions t where t.order_id = o.id)
          from orders o join wallets w on w.id = o.receiver_wallet_id
         where o.external_reference like %s""", (f"{topups.run}-%",))
    ids = [r[0] for r in found]
    assert len(ids) == len(set(ids)) == len(topups.created)
    completed = {r[0] for r in found if r[3] == "COMPLETED"}
    assert completed == topups.completed
    credits = [r for r in found if r[5] is not None]
    assert {r[0] for r in credits} == completed
    # Each completed order moved its amount once (two transactions: in and out), the sum of
    # what meters' wallets received equals the completed top-ups to the unit, and each meter
    # gained ceil(amount / tariff, 0.1 kWh) per completed top-up, whatever the interleaving.
    assert all(r[6] == 2 for r in credits) and all(r[6] == 0 for r in found if r[5] is None)
    ledger_sum = sum((r[5] for r in credits), Decimal(0))
    assert ledger_sum == sum((topups.created[i] for i in completed), Decimal(0))
    for oid, amount, _, _, _, received, _ in credits:
        assert received == amount, oid
    credit_after = dict(rows(stack.planes.url, CREDIT_SQL, (meters,)))
    for meter in meters:
        gained = sum((Decimal(math.ceil(r[1] / r[2] * 10)) / 10 for r in credits
                      if r[4] == meter), Decimal(0))
        assert credit_after[meter] - credit_before[meter] == gained, meter
    after = watch.check_no_leak()
    print(f"ledger: {len(topups.created)} orders, {len(completed)} completed, {ledger_sum} NGN"
          f" credited, {len(topups.races)} twin completions, {topups.replays_checked} replays;"
          f" connections peak {watch.peak}, after {after}")
