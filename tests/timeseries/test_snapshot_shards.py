"""snapshot-meters in shards (`{"shard": k, "shards": n}`): n shards run in parallel write exactly
the rows and kept counts of one unsharded run on the same readings; a pending hour stays queued
until the last shard of its n has built it; bad payloads are refused with the field named; two
invocations of one shard, an unsharded run beside a shard, and shards of different n never
overlap."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from nxt_cli.harness import ROOT, ScratchDatabases
from shared.shards import InvalidPayload, Shard, event_payload, parse_shard

pytestmark = pytest.mark.db

NAME = "snapshot-meters"
# The readings' last hour ends here; the job runs a while later, so every hour is closed.
END = datetime(2026, 11, 20, 12, tzinfo=UTC)
NOW = END + timedelta(hours=2, minutes=5)

# Every column of the rows but built_at (when each row was written).
ROWS_DIGEST = """
select count(*), md5(string_agg(row(h.*)::text, ',' order by created_at, meter_id))
  from (select created_at, meter_id, consumption_kwh, consumption_kwh_exact, counter_kwh,
               counter_kwh_exact, kwh_credit_available, kwh_credit_available_exact,
               is_estimated, reading_count, inserted_by_build, meter_type, customer_id,
               grid_id, grid_name, organization_id, power_limit_kw, is_hidden_from_reporting,
               connection_id, is_cabin_meter
          from public.meter_snapshot_1_h) h
"""
COUNTS = """
select array_agg(row(hour, readings, first_at, last_at)::text order by hour)
  from ts.meter_snapshot_counts
"""
SITE_COUNTS = """
select array_agg(row(site, hour, readings)::text order by site, hour)
  from ts.meter_snapshot_site_counts
"""


@dataclass(frozen=True)
class Result:
    rows: tuple[Any, ...]
    counts: Any
    site_counts: Any


def snapshot_module() -> Any:
    import importlib

    from nxt_cli.functions import import_main, module_name

    import_main(ROOT / "functions" / NAME / "main.py", NAME)
    return importlib.import_module(f"{module_name(NAME)}.snapshot")


async def run_job(ts_url: str, tx_url: str, shard: Shard | None) -> dict[str, Any]:
    """The job's body as its target runs it (run_locked): its locks on a direct connection of
    its own, the transactional plane through a pool."""
    from shared.db import Database
    from shared.jobs import _job_connection, already_running

    db = Database(tx_url, name="transactional", max_size=2)
    try:
        async with _job_connection(ts_url, NAME, shard) as (ts, refused):
            if ts is None:
                return already_running(NAME, refused)
            result: dict[str, Any] = await snapshot_module().build(ts, db, now=NOW, shard=shard)
            return result
    finally:
        await db.close()


def run_shards(ts_url: str, tx_url: str, n: int) -> list[dict[str, Any]]:
    async def together() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(run_job(ts_url, tx_url, Shard(k, n))
                                           for k in range(n))))
    return asyncio.run(together())


def run_one(ts_url: str, tx_url: str, shard: Shard | None = None) -> dict[str, Any]:
    return asyncio.run(run_job(ts_url, tx_url, shard))


def one(url: str, sql: str, params: Any = ()) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def result_of(ts_url: str) -> Result:
    return Result(one(ts_url, ROWS_DIGEST), one(ts_url, COUNTS), one(ts_url, SITE_COUNTS))


@pytest.fixture(scope="module")
def tx_url(scratch: ScratchDatabases) -> str:
    from nxt_cli.migrate import migrate
    from nxt_cli.seed import seed

    url = scratch.create("shard_tx")
    migrate(url)
    seed(url)
    return url


@pytest.fixture
def fresh_ts(scratch: ScratchDatabases, tx_url: str) -> Any:
    """A new time-series plane with the same day of demo readings (seeded deterministically,
    ending at END), its hours queued."""
    from nxt_cli.migrate import migrate_timeseries
    from nxt_cli.telemetry import seed_telemetry

    def make() -> str:
        url = scratch.create("shard_ts")
        migrate_timeseries(url, engine="native")
        seeded = seed_telemetry(tx_url, url, days=1, now=END)
        assert seeded.readings > 50_000 and seeded.meters > 900
        return url
    return make


@pytest.fixture(scope="module")
def single(scratch: ScratchDatabases, tx_url: str) -> Result:
    """One unsharded run: what every sharded run must equal."""
    from nxt_cli.migrate import migrate_timeseries
    from nxt_cli.telemetry import seed_telemetry

    url = scratch.create("shard_ts")
    migrate_timeseries(url, engine="native")
    seed_telemetry(tx_url, url, days=1, now=END)
    done = run_one(url, tx_url)
    assert done["status"] == "done" and done["rows"] > 20_000
    assert one(url, "select count(*) from ts.pending_hours") == 0
    return result_of(url)


@pytest.mark.parametrize("n", [2, 4])
def test_parallel_shards_write_what_one_run_writes(fresh_ts: Any, tx_url: str, single: Result,
                                                   n: int) -> None:
    url = fresh_ts()
    queued = one(url, "select count(*) from ts.pending_hours")
    results = run_shards(url, tx_url, n)
    assert [r["status"] for r in results] == ["done"] * n, results
    assert [(r["shard"], r["shards"]) for r in results] == [(k, n) for k in range(n)]
    assert all(r["queued"] == queued for r in results)  # each shard saw every entry
    assert sum(r["drained"] for r in results) == queued  # and each was deleted once
    assert sum(r["rows"] for r in results) == single.rows[0]
    assert result_of(url) == single
    assert one(url, "select count(*) from ts.pending_hours") == 0
    assert one(url, "select count(*) from ts.pending_hours_built") == 0


def test_a_pending_hour_stays_until_the_last_shard(fresh_ts: Any, tx_url: str,
                                                   single: Result) -> None:
    url = fresh_ts()
    queued = one(url, "select count(*) from ts.pending_hours")
    first = run_one(url, tx_url, Shard(0, 2))
    assert (first["drained"], first["waiting"]) == (0, queued)
    assert one(url, "select count(*) from ts.pending_hours") == queued
    assert one(url, "select count(distinct (shards, shard)) from ts.pending_hours_built") == 1
    # Shard 0 takes only what it has not built: ahead of shard 1, it rebuilds nothing.
    again = run_one(url, tx_url, Shard(0, 2))
    assert (again["queued"], again["rows"]) == (0, 0)
    # Half the meters' rows, and the counts of those: no shard's hour is half-counted for good.
    rows_after_first = one(url, "select count(*) from public.meter_snapshot_1_h")
    assert 0 < rows_after_first < single.rows[0]

    last = run_one(url, tx_url, Shard(1, 2))
    assert (last["drained"], last["waiting"]) == (queued, 0)
    assert one(url, "select count(*) from ts.pending_hours") == 0
    assert one(url, "select count(*) from ts.pending_hours_built") == 0
    assert result_of(url) == single


def test_an_unsharded_run_catches_up_a_stalled_shard(fresh_ts: Any, tx_url: str,
                                                     single: Result) -> None:
    """Shard 1 of 2 never ran: one unsharded run builds every meter of the waiting entries and
    deletes them, their ledger rows with them (on delete cascade)."""
    url = fresh_ts()
    run_one(url, tx_url, Shard(0, 2))
    assert one(url, "select count(*) from ts.pending_hours_built") > 0
    whole = run_one(url, tx_url)
    assert whole["status"] == "done"
    assert one(url, "select count(*) from ts.pending_hours") == 0
    assert one(url, "select count(*) from ts.pending_hours_built") == 0
    assert result_of(url) == single


def test_an_entry_queued_after_a_shard_built_its_hour_waits_for_it(fresh_ts: Any,
                                                                   tx_url: str) -> None:
    """The ledger is per queue entry: a late reading of shard 0's meter, queued after shard 0
    built the hour, is built by shard 0's next run even though shard 1 completes the hour."""
    from timeseries.partitions import ensure_partitions

    url = fresh_ts()
    run_one(url, tx_url, Shard(0, 2))
    meter, last_ts, counter = one(url, "select meter_id, ts, counter_kwh from ts.meter_readings"
                                       " where mod(meter_id, 2) = 0 order by ts desc, meter_id"
                                       " limit 1")
    late = last_ts + timedelta(minutes=10)
    with psycopg.connect(url) as conn:
        ensure_partitions(conn, "meter_readings", late, late)
        conn.execute("insert into ts.meter_readings (meter_id, ts, counter_kwh)"
                     " values (%s, %s, %s)", (meter, late, counter + Decimal("2.5")))
        late_id = conn.execute("insert into ts.pending_hours (hour) values"
                               " (date_trunc('hour', %s::timestamptz, 'UTC')) returning id",
                               (late,)).fetchone()[0]  # type: ignore[index]
    run_one(url, tx_url, Shard(1, 2))
    assert one(url, "select array_agg(id) from ts.pending_hours") == [late_id]
    before = one(url, "select sum(consumption_kwh_exact) from public.meter_snapshot_1_h"
                      " where meter_id = %s", (meter,))
    done = run_one(url, tx_url, Shard(0, 2))
    assert (done["queued"], done["drained"], done["waiting"]) == (1, 1, 0)  # it completes it
    assert one(url, "select sum(consumption_kwh_exact) from public.meter_snapshot_1_h"
                    " where meter_id = %s", (meter,)) == before + Decimal("2.5")
    assert one(url, "select count(*) from ts.pending_hours") == 0


# -- payloads -----------------------------------------------------------------------------


class Event:
    """A CloudEvent's data, as Pub/Sub delivers a published message."""

    def __init__(self, data: Any) -> None:
        self.data = data


@pytest.mark.parametrize(("payload", "field"), [
    ({"shard": 2, "shards": 2}, "'shard'"),
    ({"shard": -1, "shards": 2}, "'shard'"),
    ({"shard": 0, "shards": 0}, "'shards'"),
    ({"shard": 0, "shards": 1000}, "'shards'"),
    ({"shard": "0", "shards": 2}, "'shard'"),
    ({"shard": 0, "shards": 2.0}, "'shards'"),
    ({"shard": True, "shards": 2}, "'shard'"),
    ({"shard": 0}, "'shards'"),
    ({"shards": 2}, "'shard'"),
    ({"shard": 0, "shards": 2, "shrads": 3}, "'shrads'"),
])
def test_bad_payloads_are_refused_with_the_field_named(payload: dict[str, Any],
                                                       field: str) -> None:
    with pytest.raises(InvalidPayload, match=f"payload field {field}"):
        parse_shard(payload)


def test_good_payloads() -> None:
    assert parse_shard(None) is None and parse_shard({}) is None
    assert parse_shard({"shard": 3, "shards": 4}) == Shard(3, 4)

    encoded = base64.b64encode(json.dumps({"shard": 1, "shards": 2}).encode()).decode()
    assert event_payload(Event({"message": {"data": encoded}})) == {"shard": 1, "shards": 2}
    assert event_payload(Event({"message": {"data": "e30="}})) == {}  # Cloud Scheduler's {}
    assert event_payload(Event({"message": {}})) is None
    with pytest.raises(InvalidPayload, match=r"message\.data"):
        event_payload(Event({"message": {"data": "not base64!"}}))


def invoke(tx_url: str, ts_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "K_SERVICE"}
    env.update(DATABASE_URL=tx_url, TIMESERIES_DATABASE_URL=ts_url, PYTHONPATH=str(ROOT),
               NXT_SUPABASE_CONFIG=str(ROOT / "supabase" / "config.toml"))
    return subprocess.run([sys.executable, "-m", "nxt_cli.main", "invoke", NAME, *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_nxt_invoke_runs_one_shard_and_refuses_a_bad_payload(fresh_ts: Any, tx_url: str,
                                                             single: Result) -> None:
    url = fresh_ts()
    bad = invoke(tx_url, url, "--payload", '{"shard": 2, "shards": 2}')
    assert bad.returncode == 2, bad.stderr
    assert "payload field 'shard' must be from 0 to 1" in bad.stderr
    assert one(url, "select count(*) from public.meter_snapshot_1_h") == 0
    assert invoke(tx_url, url, "--payload", "[1]").returncode == 2

    for k in (1, 0):  # through the real target, as Cloud Scheduler's payload would reach it
        done = invoke(tx_url, url, "--payload", json.dumps({"shard": k, "shards": 2}))
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert (result["status"], result["shard"], result["shards"]) == ("done", k, 2)
    assert one(url, "select count(*) from ts.pending_hours") == 0
    assert result_of(url).rows == single.rows


# -- locks --------------------------------------------------------------------------------


def hold(url: str, sql: str, *params: Any) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(sql, params)
    return conn


def test_two_invocations_of_one_shard_do_not_both_build(fresh_ts: Any, tx_url: str) -> None:
    from shared.jobs import shard_lock_key

    url = fresh_ts()
    with hold(url, "select pg_advisory_lock(hashtext(%s))", shard_lock_key(NAME, 0)):
        skipped = run_one(url, tx_url, Shard(0, 2))
        other = run_one(url, tx_url, Shard(1, 2))  # another shard is not held up
    assert skipped["status"] == "skipped" and "shard 0 holds its lock" in skipped["reason"]
    assert other["status"] == "done" and other["rows"] > 0

    # Started together, one builds and the other steps back at once.
    async def twice() -> list[dict[str, Any]]:
        return list(await asyncio.gather(run_job(url, tx_url, Shard(0, 2)),
                                         run_job(url, tx_url, Shard(0, 2))))
    statuses = sorted(r["status"] for r in asyncio.run(twice()))
    assert statuses == ["done", "skipped"]


def test_an_unsharded_run_and_a_shard_do_not_overlap(fresh_ts: Any, tx_url: str) -> None:
    from shared.jobs import lock_key

    url = fresh_ts()
    # An unsharded run holds the job's lock exclusively: every shard steps back.
    with hold(url, "select pg_advisory_lock(hashtext(%s))", lock_key(NAME)):
        shard = run_one(url, tx_url, Shard(0, 2))
    assert shard["status"] == "skipped" and "unsharded run" in shard["reason"]
    # A shard holds it shared: an unsharded run steps back, as it does beside itself.
    with hold(url, "select pg_advisory_lock_shared(hashtext(%s))", lock_key(NAME)):
        whole = run_one(url, tx_url)
    assert whole["status"] == "skipped" and "holds its lock" in whole["reason"]
    assert one(url, "select count(*) from public.meter_snapshot_1_h") == 0


def test_shards_of_different_n_do_not_overlap(fresh_ts: Any, tx_url: str) -> None:
    from shared.jobs import shards_lock_key

    url = fresh_ts()
    with hold(url, "select pg_advisory_lock_shared(hashtext(%s), 4)", shards_lock_key(NAME)):
        refused = run_one(url, tx_url, Shard(0, 2))
        same_n = run_one(url, tx_url, Shard(1, 4))
    assert refused["status"] == "skipped" and "shards=4 is running" in refused["reason"]
    assert same_n["status"] == "done"


def test_the_cloud_event_target_refuses_a_bad_shard_before_any_database() -> None:
    """What Pub/Sub delivers from a mistyped Cloud Scheduler job: the target fails naming the
    field, with no database configured (it never connects)."""
    from nxt_cli.functions import import_main

    target = import_main(ROOT / "functions" / NAME / "main.py", NAME).snapshot_meters

    event = Event({"message": {"data": base64.b64encode(b'{"shard": 5, "shards": 2}').decode()}})
    with pytest.raises(InvalidPayload, match="payload field 'shard' must be from 0 to 1"):
        asyncio.run(target(event))
