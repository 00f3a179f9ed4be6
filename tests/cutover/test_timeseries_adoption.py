"""A legacy time-series database taken over in place: built by the legacy migrations
(../shared/legacy/timeseries/build-legacy-ts.sh) with the legacy-shaped data set and more rows
in every legacy table, then adopted by `nxt db adopt`'s own code (nxt_cli.adopt: the baseline
checked, ts0001 stamped, ts0002 onwards applied, every table counted and checksummed).

- Plain PostgreSQL (`--plain --recreate`, where the legacy tables are plain tables): on the
  machine's PostgreSQL 15 at 127.0.0.1:5432, where the builder makes `legacy_ts_*` databases;
  these tests skip where that server does not answer, and say so (CI runs them there).
- TimescaleDB (hypertables, continuous aggregates, policies): on the PGlite test server,
  marked `timescale`.

Every legacy row of every legacy table (and view) must read the same afterwards, over the
columns it had, and meter-consumption must serve the legacy history at once.
"""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import Iterator
from datetime import UTC, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from nxt_cli import migrate
from nxt_cli.adopt import adopt as adopt_plane
from nxt_cli.adopt import timeseries_plane
from nxt_cli.catalog import compare_baseline
from nxt_cli.functions import import_main, module_name
from nxt_cli.harness import ROOT
from tests.conftest import Seeded
from tests.support.legacy_reference import legacy_answer, readings_text
from tests.support.legacy_ts import PG15, T0, build, changed_since, fill, require_pg15, snapshot
from timeseries.engine import engine_info, table_storage
from timeseries.migrations.baseline import TABLE_NAMES, TABLES

TS_HEAD = migrate.timeseries_head_revision()

pytestmark = pytest.mark.db

FROM, TO = "2025-03-30T20:00:00.000Z", "2025-04-02T07:59:59.999Z"  # every filled hour
# The data set's hourly snapshot (tests/legacy/README.md): 2026-09-30 23:00 to 2026-10-10 23:04.
DATA_FROM, DATA_TO = "2026-09-30T00:00:00.000Z", "2026-10-11T00:00:00.000Z"


def adopt(url: str) -> tuple[str | None, str | None]:
    """`nxt db adopt` on the time-series plane; (revision before, after)."""
    with psycopg.connect(url) as conn:
        assert compare_baseline(conn, TABLES, {}).problems == []
    report = adopt_plane(url, timeseries_plane(), apply=True)
    assert (report.status, report.stamped) == ("adopted", "ts0001"), report
    assert report.changes == [] and report.removed == [], report  # its own census agrees
    return report.stamped, migrate.timeseries_current_revision(url)


@pytest.fixture
def legacy_plain() -> Iterator[str]:
    require_pg15()
    name = f"legacy_ts_tsb_{uuid.uuid4().hex[:10]}"
    url = PG15.rsplit("/", 1)[0] + f"/{name}"
    try:
        build(url, plain=True)
        yield url
    finally:
        with psycopg.connect(PG15, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def _consumption() -> Any:
    import_main(ROOT / "functions" / "meter-consumption" / "main.py", "meter-consumption")
    return (importlib.import_module(f"{module_name('meter-consumption')}.queries"),
            importlib.import_module(f"{module_name('meter-consumption')}.models"))


async def _page(url: str, **query: Any) -> dict[str, Any]:
    queries, models = _consumption()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return await queries.page(conn, models.ConsumptionQuery(**query))


@pytest.mark.legacy
def test_a_plain_legacy_database_is_adopted_without_changing_a_row(
        legacy_plain: str, functions_db: Seeded, tmp_path: Path) -> None:
    filled = fill(legacy_plain)
    assert len(filled) >= 15 and filled["meter_snapshot_1_h"] == 60
    before = snapshot(legacy_plain)
    assert before["public.meter_snapshot_1_h"][1] > 8000  # the data set's, and 60 more
    assert before["public.dcu_snapshot_15_min"][1] > 0  # the ex-aggregates hold rows too

    assert adopt(legacy_plain) == ("ts0001", TS_HEAD)
    assert changed_since(before, legacy_plain) == {}
    with psycopg.connect(legacy_plain) as conn:
        # Still the baseline, now with this project's columns beside the legacy ones.
        found = compare_baseline(conn, TABLES, {})
        assert found.problems == []
        assert {f.object for f in found.legacy_only} == {f"columns of {t}" for t in TABLE_NAMES}
        # The legacy tables stay plain tables; this project's own ones are native.
        assert set(table_storage(conn, "public", TABLE_NAMES).values()) == {"plain"}
        info = engine_info(conn)
        assert info is not None and info.engine == "native"
        assert table_storage(conn, "ts", ["meter_readings"]) == {"meter_readings": "partitioned"}
        # Legacy rows have NULL in the new columns: nothing was rewritten.
        assert conn.execute("select count(*) from public.meter_snapshot_1_h"
                            " where built_at is not null or consumption_kwh_exact is not null"
                            ).fetchone() == (0,)

    # meter-consumption serves the legacy history at once, as the legacy function did.
    from tests.support.serving import serve

    key = {"X-API-Key": functions_db.api_keys[0][1]}
    with serve(functions_db.url, legacy_plain, tmp_path / "serve.log") as served:
        for start, end, site, limit, offset in (
                (FROM, TO, None, 1000, 0), (DATA_FROM, DATA_TO, None, 1000, 0),
                (DATA_FROM, DATA_TO, None, 500, 4000), (DATA_FROM, DATA_TO, "oke-odo", 200, 0)):
            total, readings = legacy_answer(legacy_plain, start, end, site, limit, offset)
            assert total > 30
            for url in ("/functions/v1/meter-consumption", "/functions/v1/meter-consumption-2"):
                query = {"FROM": start, "TO": end, "pageLimit": limit, "offset": offset,
                         **({"site": site} if site else {})}
                resp = served.api.get(url, params=query, headers=key)
                assert resp.status_code == 200, resp.text
                assert (resp.json()["total"], readings_text(resp.text)) == (total, readings)

    # Going back is refused: the legacy services use these tables.
    with pytest.raises(Exception, match="built by the legacy system"):
        migrate.downgrade_timeseries(legacy_plain, "base")
    assert migrate.timeseries_current_revision(legacy_plain) == TS_HEAD
    assert migrate.migrate_timeseries(legacy_plain) == (TS_HEAD, TS_HEAD)
    assert changed_since(before, legacy_plain) == {}


@pytest.mark.legacy
def test_after_adoption_the_build_writes_beside_the_legacy_rows(legacy_plain: str) -> None:
    from timeseries.hourly import build_hours, create_meter_dim
    from timeseries.partitions import ensure_partitions

    fill(legacy_plain)
    adopt(legacy_plain)
    before = snapshot(legacy_plain)
    legacy_then = _legacy_rows(legacy_plain)
    hour = T0.replace(tzinfo=UTC)  # meter 1 has a legacy row (0.0 kWh) on this very hour
    with psycopg.connect(legacy_plain) as conn:
        ensure_partitions(conn, "meter_readings", hour - timedelta(hours=1),
                          hour + timedelta(hours=3))
        with conn.cursor() as cur:
            cur.executemany("insert into ts.meter_readings (meter_id, ts, counter_kwh)"
                            " values (%s, %s, %s)",
                            [(meter, hour + timedelta(minutes=15 * k), Decimal(10 + k))
                             for meter in (1, 1001) for k in range(9)])
        create_meter_dim(conn)
        conn.execute("insert into pg_temp.meter_dim (meter_id, meter_external_reference,"
                     " grid_name) values (1001, 'NEW-1001', 'Gbamu')")
        result = build_hours(conn, hour - timedelta(hours=1), hour + timedelta(hours=3))
        conn.commit()
        built = conn.execute("select meter_id, created_at, consumption_kwh_exact"
                             " from public.meter_snapshot_1_h where inserted_by_build"
                             " order by 1, 2").fetchall()
    assert result.removed == 0
    # Meter 1's first hour is the legacy's (it wrote 0.0 there): kept; its next hours and
    # meter 1001's are the build's.
    assert [(m, t) for m, t, _ in built] == [
        (1, T0 + timedelta(hours=1)), (1, T0 + timedelta(hours=2)),
        (1001, T0), (1001, T0 + timedelta(hours=1)), (1001, T0 + timedelta(hours=2))]
    changed = changed_since(before, legacy_plain)
    assert set(changed) == {"public.meter_snapshot_1_h"}  # rows were added there, only there
    assert _legacy_rows(legacy_plain) == legacy_then  # ...and not one legacy row changed
    # Served beside the legacy rows: the built hours of the new meter (the last one holds
    # only a reading: no consumption, so no reading served).
    page = asyncio.run(_page(legacy_plain, FROM=T0.replace(tzinfo=UTC),
                             TO=T0.replace(tzinfo=UTC) + timedelta(hours=2),
                             meter="NEW-1001", pageLimit=100))
    assert [r["energyConsumptionKwh"] for r in page["readings"]] == [4, 4]


def _legacy_rows(url: str) -> tuple[int, str]:
    """The rows no build inserted, over every column (the project's too)."""
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "select count(*), md5(string_agg(t::text, ',' order by t::text))"
            " from public.meter_snapshot_1_h t where inserted_by_build is null").fetchone()
    assert found is not None
    return found[0], found[1]


# -- TimescaleDB -------------------------------------------------------------------------------


@pytest.fixture
def legacy_timescale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.support.timescale_server import require_timescale, start_timescale

    require_timescale()
    with start_timescale(tmp_path_factory.mktemp("legacy-timescale")) as server:
        build(server.url, plain=False)
        yield server.url


def _timescale_objects(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The legacy hypertables, continuous aggregates and policies, as TimescaleDB lists them."""
    queries = {
        "hypertables": "select hypertable_schema, hypertable_name, num_dimensions,"
                       " compression_enabled from timescaledb_information.hypertables"
                       " where hypertable_schema = 'public' order by 1, 2",
        "dimensions": "select hypertable_name, column_name, time_interval"
                      " from timescaledb_information.dimensions"
                      " where hypertable_schema = 'public' order by 1, 2",
        "aggregates": "select view_name, materialized_only, view_definition"
                      " from timescaledb_information.continuous_aggregates"
                      " where view_schema = 'public' order by 1",
        "jobs": "select job_id, proc_name, schedule_interval, config::text, hypertable_name"
                " from timescaledb_information.jobs where hypertable_schema <> 'ts'"
                " or hypertable_schema is null order by 1",
    }
    with psycopg.connect(url, autocommit=True) as conn:
        return {name: conn.execute(q).fetchall() for name, q in queries.items()}


@pytest.mark.timescale
def test_a_timescaledb_legacy_database_is_adopted_without_changing_a_row(
        legacy_timescale: str) -> None:
    url = legacy_timescale
    fill(url, rows=40)
    before = snapshot(url)
    objects = _timescale_objects(url)
    assert len(objects["hypertables"]) == 14 and len(objects["aggregates"]) == 4

    assert adopt(url) == ("ts0001", TS_HEAD)
    assert changed_since(before, url) == {}
    # The hypertables, their chunks' interval, the aggregates and their policies: untouched.
    assert _timescale_objects(url) == objects
    with psycopg.connect(url, autocommit=True) as conn:
        info = engine_info(conn)
        assert info is not None and info.engine == "timescaledb"
        assert set(table_storage(conn, "public", TABLE_NAMES).values()) == {"hypertable"}
        assert compare_baseline(conn, TABLES, {}).problems == []

    page = asyncio.run(_page(url, FROM=T0.replace(tzinfo=UTC),
                             TO=T0.replace(tzinfo=UTC) + timedelta(days=3), pageLimit=1000))
    total, readings = legacy_answer(url, FROM, TO, None, 1000, 0)
    assert page["total"] == total > 20
    import json

    assert json.dumps(page["readings"], separators=(",", ":")) == readings
    with pytest.raises(Exception, match="built by the legacy system"):
        migrate.downgrade_timeseries(url, "ts0002")
    assert changed_since(before, url) == {}


@pytest.mark.legacy
def test_diff_of_an_adopted_legacy_database_names_drift_and_leaves_legacy_objects_alone(
        legacy_plain: str) -> None:
    """`nxt db diff`: the legacy tables stay plain and keep TypeORM's names (compared by
    definition, as adoption did); the legacy-only tables are listed, not drift; a column of
    ours dropped by hand and an index added by hand are."""
    from nxt_cli.drift import diff_plane

    adopt(legacy_plain)
    clean = diff_plane(legacy_plain, "timeseries", PG15)
    assert (clean.adopted, clean.drift, clean.exit_code) == (True, [], 0), clean.lines()
    legacy = {(d.category, d.name) for d in clean.differences}
    assert {("table", '"public"."migrations"'),
            ("table", '"public"."dcu_snapshot_1_min"')} <= legacy

    with psycopg.connect(legacy_plain, autocommit=True) as conn:
        conn.execute("alter table public.meter_snapshot_1_h drop column built_at")
        conn.execute("create index by_hand on ts.meter_readings (meter_id)")
    drifted = diff_plane(legacy_plain, "timeseries", PG15)
    assert drifted.exit_code == 1
    assert {(d.kind, d.category, d.name) for d in drifted.drift} == {
        ("missing", "column", '"public"."meter_snapshot_1_h".built_at'),
        ("extra", "index", '"ts"."by_hand"')}  # in ts, which only this project writes
