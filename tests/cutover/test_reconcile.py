"""`nxt db reconcile` on the demo stack as `nxt dev` builds it (demo data, telemetry, the three
snapshot jobs): the planes agree; then a disagreement is planted of each kind the command
looks for, and each is found, counted and named.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from nxt_cli.harness import ScratchDatabases
from nxt_cli.seed import seed
from tests.support.legacy_support import nxt
from tests.support.serving import demo_planes
from timeseries.reconcile import reconcile

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def demo(scratch: ScratchDatabases) -> tuple[str, str]:
    return demo_planes(scratch, "reconcile")


def test_the_demo_planes_agree_then_each_planted_disagreement_is_found(
        demo: tuple[str, str]) -> None:
    url, ts_url = demo
    done = nxt(["db", "reconcile", "--json"], url, ts_url)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert set(checks) == {"unknown-meters", "unknown-grids", "order-snapshots", "wallet-ledger",
                           "snapshot-dimensions"}
    assert all(c["count"] == 0 for c in checks.values())

    with psycopg.connect(ts_url, autocommit=True) as ts:
        ts.execute("insert into ts.meter_readings (meter_id, ts, counter_kwh)"
                   " values (990001, now() - interval '1 hour', 1)")
        ts.execute("insert into public.grid_business_snapshot_1_d (created_at, grid_id)"
                   " values (now() - interval '1 day', 990002)")
        [(order_id, status)] = ts.execute(
            "select order_id, status from public.order_snapshots where status <> 'FAILED'"
            " order by created_at desc limit 1").fetchall()
        ts.execute("update public.order_snapshots set status = 'FAILED', amount = amount + 1"
                   " where order_id = %s", (order_id,))
    with psycopg.connect(url, autocommit=True) as tx:
        [(wallet,)] = tx.execute(
            "select w.id from public.wallets w join public.transactions t on t.wallet_id = w.id"
            " where w.meter_id is not null order by w.id limit 1").fetchall()
        tx.execute("update public.wallets set balance_exact = balance_exact + 5 where id = %s",
                   (wallet,))
        [(meter, customer)] = tx.execute(
            "select m.id, c.id from public.meters m join public.connections n"
            " on n.id = m.connection_id join public.customers c on c.id = n.customer_id"
            " where not c.is_hidden_from_reporting order by m.id limit 1").fetchall()
        tx.execute("update public.customers set is_hidden_from_reporting = true where id = %s",
                   (customer,))

    report = reconcile(url, ts_url)
    found = {c.name: c for c in report.checks}
    assert {name: c.count for name, c in found.items()} == {
        "unknown-meters": 1, "unknown-grids": 1, "order-snapshots": 2, "wallet-ledger": 1,
        "snapshot-dimensions": 1}
    assert found["unknown-meters"].examples == [
        "meter 990001: readings or snapshots, no row in public.meters"]
    assert "grid 990002 in grid_business_snapshot_1_d" in found["unknown-grids"].examples[0]
    status_line, amount_line = found["order-snapshots"].examples
    assert status_line == f"order {order_id}: status {status!r} in orders, 'FAILED' in" \
        " order_snapshots"
    assert amount_line.startswith(f"order {order_id}: amount ")
    assert found["wallet-ledger"].examples[0].startswith(f"wallet {wallet}: balance")
    [dimension] = found["snapshot-dimensions"].examples
    assert dimension.startswith(f"meter {meter}: ") and "hidden False -> True" in dimension
    assert "nxt backfill snapshots --from" in (found["snapshot-dimensions"].fix or "")
    assert report.exit_code == 1

    text = nxt(["db", "reconcile"], url, ts_url)
    assert text.returncode == 1 and "the planes disagree" in text.stdout
    assert "wallet-ledger: 1 disagree" in text.stdout

    # The scheduled job finds the same, and logs a warning per check.
    job = nxt(["invoke", "reconcile-check"], url, ts_url)
    assert job.returncode == 0, job.stderr
    result = json.loads(job.stdout.strip().splitlines()[-1])
    assert result["status"] == "disagree"
    assert result["checks"] == {name: c.count for name, c in found.items()}
    logged = [json.loads(line) for line in job.stdout.splitlines() if line.startswith("{")]
    warnings = [entry for entry in logged if entry.get("severity") == "WARNING"]
    assert {w["message"].split(": ")[1].split(" (")[0] for w in warnings} == set(found)


def test_the_reconcile_check_job_on_agreeing_planes(scratch: ScratchDatabases) -> None:
    from nxt_cli import migrate

    url, ts_url = scratch.create("reconcile_job"), scratch.create("reconcile_job_ts")
    migrate.migrate(url)
    migrate.migrate_timeseries(ts_url)
    seed(url, customers=10)
    job = nxt(["invoke", "reconcile-check"], url, ts_url)
    assert job.returncode == 0, job.stderr
    assert json.loads(job.stdout.strip().splitlines()[-1])["status"] == "agree"


def test_reconcile_without_an_answering_database_exits_2(demo: tuple[str, str]) -> None:
    done = nxt(["db", "reconcile"], demo[0], "postgresql://postgres:pw@127.0.0.1:1/none")
    assert done.returncode == 2 and "did not answer" in done.stdout
    assert "pw@" not in done.stdout + done.stderr
