"""The functions behind a transaction-mode pooler (PgBouncer from Debian's package), as Supabase's
pooler runs in production: a server connection serves one transaction of one client, then
another client's, so nothing a request sets may outlive its transaction.

- Here: every tenant's requests funnelled through ONE server connection, concurrently; each
  answer must equal the one it gets alone, and the connection carries no request's role or
  claims afterwards.
- Under NXT_TEST_POOLER=pgbouncer (.ci/run): the function test modules run with `nxt serve`
  behind PgBouncer (conftest.py's `served`); the last test here checks that they really did.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from nxt_cli.seed import DEV_A_ID, DEV_B_ID, LENDER_ID, OPERATOR_ID
from tests.conftest import Seeded, Served
from tests.support.pooler import PgBouncer, pgbouncer_for, wanted
from tests.support.serving import ServeProcess, rows, serve

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def one_connection(functions_db: Seeded, functions_ts: str) -> Iterator[PgBouncer]:
    """PgBouncer with a single server connection per database."""
    with pgbouncer_for(functions_db.url, pool_size=1) as bouncer:
        yield bouncer


@pytest.fixture(scope="module")
def pooled_server(one_connection: PgBouncer, functions_db: Seeded, functions_ts: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    log = tmp_path_factory.mktemp("pooled") / "serve.log"
    with serve(one_connection.url_for(functions_db.url), one_connection.url_for(functions_ts),
               log, DB_POOL_MAX_SIZE="8") as served:
        yield served


def test_the_pooler_runs_in_transaction_mode(one_connection: PgBouncer) -> None:
    config = {r["key"]: r["value"] for r in one_connection.show("config")}
    assert config["pool_mode"] == "transaction"
    assert config["default_pool_size"] == "1"


def requests_of(served: ServeProcess) -> list[tuple[str, dict[str, Any]]]:
    """Customer and order pages as each kind of caller: developers A and B, the lender, the
    operator (each sees different rows, or the same rows differently)."""
    api = served.api
    out = []
    for org in (DEV_A_ID, DEV_B_ID, LENDER_ID, OPERATOR_ID):
        auth = {"Authorization": f"Bearer {api.token(org)}"}
        for page in (1, 2):
            out.append(("/functions/v1/customers",
                        {"params": {"page": page, "size": 50}, "headers": auth}))
            out.append(("/functions/v1/orders",
                        {"params": {"page": page, "size": 50}, "headers": auth}))
    return out


async def _concurrently(base_url: str, calls: list[tuple[str, dict[str, Any]]],
                        rounds: int) -> list[tuple[int, int, bytes]]:
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> tuple[int, int, bytes]:
            path, kwargs = calls[i % len(calls)]
            async with sem:
                resp = await client.get(path, **kwargs)
            return i % len(calls), resp.status_code, resp.content

        return list(await asyncio.gather(*(one(i) for i in range(len(calls) * rounds))))


def test_tenants_sharing_one_server_connection_never_see_each_others_rows(
        pooled_server: ServeProcess, one_connection: PgBouncer, functions_db: Seeded) -> None:
    api = pooled_server.api
    calls = requests_of(pooled_server)
    alone = []
    for path, kwargs in calls:
        resp = api.get(path, **kwargs)
        alone.append((resp.status_code, resp.content))
    # The answers alone are the right ones: each developer sees only its own customers.
    for org, (status, body) in zip((DEV_A_ID, DEV_B_ID), (alone[0], alone[4]), strict=True):
        assert status == 200
        own = {r[0] for r in rows(functions_db.url, "select id from customers"
                                                    " where rls_organization_id = %s", (org,))}
        entries = json.loads(body)["entries"]
        assert entries and {e["id"] for e in entries} <= own
    assert all(status in (200, 403) for status, _ in alone)

    # All of them at once, many times, through a single server connection.
    together = asyncio.run(_concurrently(api.base_url, calls, rounds=12))
    wrong = [(calls[i][0], status) for i, status, body in together if (status, body) != alone[i]]
    assert not wrong, wrong[:5]
    pools = [p for p in one_connection.show("pools") if p["database"] != "pgbouncer"]
    assert pools and all(p["sv_active"] + p["sv_idle"] + p["sv_used"] <= 1 for p in pools)

    # The server connection every request ran on keeps none of their settings.
    with psycopg.connect(one_connection.url_for(functions_db.url), prepare_threshold=None,
                         autocommit=True) as conn:
        left = conn.execute("select current_user, current_setting('role'),"
                            " coalesce(current_setting('request.jwt.claims', true), ''),"
                            " current_setting('statement_timeout')").fetchone()
    assert left is not None
    assert left[:3] == ("postgres", "none", "")


def test_writes_through_one_server_connection(pooled_server: ServeProcess,
                                              functions_db: Seeded) -> None:
    """Top-ups (an idempotency claim, then the work: two transactions) and reading batches
    (a temp table dropped at commit, COPY) from many clients at once."""
    api = pooled_server.api
    service = {"Authorization": f"Bearer {api.token(role='service_role')}"}
    meters = [r[0] for r in rows(functions_db.url, """
        select m.id from meters m join connections n on n.id = m.connection_id
          join customers c on c.id = n.customer_id join grids g on g.id = c.grid_id
         where m.deleted_at is null and g.deleted_at is null and g.kwh_tariff > 0
         order by m.id desc limit 16""")]
    run = uuid.uuid4().hex[:8]
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=20)

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=api.base_url, timeout=60) as client:
            orders = [client.post("/functions/v1/orders", json={
                "meter_id": m, "amount": "300.00", "currency": "NGN", "payment_method": "USSD",
                "payment_channel": "USSD", "external_reference": f"pooled-{run}-{m}"},
                headers={**service, "Idempotency-Key": f"pooled-{run}-{m}"}) for m in meters]
            batches = [client.post("/functions/v1/meter-readings", headers=service, json={
                "readings": [{"meter_id": m, "ts": (start + k * timedelta(minutes=15)).isoformat(),
                              "counter_kwh": f"{10 + k}.5"} for k in range(96)]})
                for m in meters]
            return list(await asyncio.gather(*orders, *batches))

    answers = asyncio.run(go())
    assert [r.status_code for r in answers] == [201] * len(meters) + [200] * len(meters), \
        [r.text for r in answers if r.status_code >= 300][:3]
    assert all(r.json()["inserted"] == 96 for r in answers[len(meters):])
    assert rows(functions_db.url, "select count(*) from orders where external_reference like %s",
                (f"pooled-{run}-%",))[0][0] == len(meters)


def test_the_function_suite_ran_through_the_pooler(served: Served) -> None:
    """Under NXT_TEST_POOLER the `api` server's transactions went through PgBouncer."""
    if wanted() is None:
        # Only meaningful in the pooled pass (.ci/run runs the function tests again with
        # NXT_TEST_POOLER=pgbouncer, where this runs and must pass).
        pytest.skip("NXT_TEST_POOLER is not set: the function tests ran without a pooler")
    bouncer = served.pooler
    assert isinstance(bouncer, PgBouncer)
    assert served.url.endswith(f":{bouncer.port}/" + served.url.rsplit("/", 1)[1])
    assert {r["key"]: r["value"] for r in bouncer.show("config")}["pool_mode"] == "transaction"
    stats = {r["database"]: r for r in bouncer.show("stats")}
    for url in (served.url, served.ts_url):
        name = url.rsplit("/", 1)[1]
        # Dozens of requests, one or two transactions each (the time-series plane sees one
        # per ingest or consumption page).
        assert stats[name]["total_xact_count"] > 20, (name, stats.get(name))
