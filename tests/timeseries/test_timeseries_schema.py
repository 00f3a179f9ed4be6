"""The time-series plane's schema: on plain PostgreSQL (the native engine) migrations up, down
and up again, the baseline matching its declaration, engine detection, and the partitions
ingest and the snapshot jobs rely on; on the TimescaleDB test server (marked `timescale`)
hypertables, the recorded features and their degradation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import errors

from nxt_cli import migrate
from nxt_cli.harness import ScratchDatabases
from timeseries import tables
from timeseries.engine import EngineUnavailable, disabled_features, engine_info, engine_override
from timeseries.partitions import (
    aensure_partitions,
    drop_expired,
    ensure_partitions,
    list_partitions,
    maintain,
    planned,
)

pytestmark = pytest.mark.db


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def _timescaledb_listed(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("select exists (select 1 from pg_available_extensions"
                            " where name = 'timescaledb')").fetchone() == (True,)


@pytest.fixture
def ts_db(scratch: ScratchDatabases) -> str:
    """A fresh database with the time-series plane migrated on the native engine."""
    url = scratch.create("nxt_ts")
    migrate.migrate_timeseries(url, engine="native")
    return url


@pytest.fixture
def conn(ts_db: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(ts_db, autocommit=True) as c:
        yield c


def _relations(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url) as c:
        rows = c.execute("select n.nspname || '.' || c.relname, c.relkind, c.relispartition"
                         " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                         " where n.nspname in ('ts', 'public')"
                         " and c.relkind in ('r', 'p', 'v', 'm')").fetchall()
    return {"parents": {n for n, _, part in rows if not part},
            "partitions": {n for n, _, part in rows if part}}


HEAD = migrate.timeseries_head_revision()
LEGACY_TABLES = {"public.meter_snapshot_1_h", "public.order_snapshots",
                 "public.grid_business_snapshot_1_d"}


# -- migrations --------------------------------------------------------------------------


def test_up_down_up_on_an_empty_database(scratch: ScratchDatabases) -> None:
    url = scratch.create("nxt_ts")
    assert migrate.timeseries_current_revision(url) is None
    before, after = migrate.migrate_timeseries(url, engine="native")
    assert (before, after) == (None, HEAD)
    first = _relations(url)
    assert {f"ts.{n}" for n in ("engine_info", "meter_readings", "pending_hours", "adoption",
                                "job_watermarks", "job_runs", "readings_hourly",
                                "meter_snapshot_counts", "meter_snapshot_site_counts",
                                "pending_hours_built", "alembic_version")
            } | LEGACY_TABLES == first["parents"]
    with psycopg.connect(url) as c:
        # The plane's own version table: the transactional plane's stays untouched (absent).
        assert c.execute("select to_regclass('public.alembic_version')").fetchone() == (None,)

    migrate.downgrade_timeseries(url, "base")
    assert migrate.timeseries_current_revision(url) is None
    assert _relations(url) == {"parents": {"ts.alembic_version"}, "partitions": set()}

    migrate.migrate_timeseries(url, engine="native")
    assert _relations(url) == first


def test_migrate_twice_changes_nothing(ts_db: str) -> None:
    snapshot = _relations(ts_db)
    before, after = migrate.migrate_timeseries(ts_db)
    assert before == after == HEAD
    assert _relations(ts_db) == snapshot


def test_the_engine_is_detected_and_recorded_as_native(scratch: ScratchDatabases) -> None:
    url = scratch.create("nxt_ts")
    if _timescaledb_listed(url):
        pytest.skip("this server has TimescaleDB: auto would rightly choose it")
    migrate.migrate_timeseries(url)  # auto
    with psycopg.connect(url) as c:
        info = engine_info(c)
    assert info is not None
    assert (info.engine, info.features, info.timescaledb_version) == ("native", (), None)
    assert info.chunk_interval == timedelta(days=1)
    assert info.raw_retention == timedelta(days=400)
    assert info.compress_after == timedelta(days=7)
    assert info.is_native and not info.has("compression")


def test_engine_info_is_a_singleton(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    with pytest.raises(errors.UniqueViolation):
        conn.execute("insert into ts.engine_info (engine, chunk_interval)"
                     " values ('native', interval '1 day')")


def test_engine_info_is_none_before_migrating(scratch: ScratchDatabases) -> None:
    with psycopg.connect(scratch.create("nxt_ts")) as c:
        assert engine_info(c) is None


def test_forcing_timescaledb_where_it_is_missing_fails_clearly(
        scratch: ScratchDatabases, monkeypatch: pytest.MonkeyPatch) -> None:
    url = scratch.create("nxt_ts")
    if _timescaledb_listed(url):
        pytest.skip("this server has TimescaleDB")
    monkeypatch.setenv("TIMESERIES_ENGINE", "timescaledb")
    with pytest.raises(EngineUnavailable, match=r"TIMESERIES_ENGINE=timescaledb.*not have the"
                       r" timescaledb extension"):
        migrate.migrate_timeseries(url)
    # Nothing half-built: the revision's transaction was rolled back.
    assert migrate.timeseries_current_revision(url) is None
    with psycopg.connect(url) as c:
        assert c.execute("select to_regclass('ts.engine_info')").fetchone() == (None,)


def test_engine_settings_are_validated() -> None:
    assert engine_override({}) == "auto"
    assert engine_override({"TIMESERIES_ENGINE": " Native "}) == "native"
    with pytest.raises(ValueError, match="TIMESERIES_ENGINE must be one of"):
        engine_override({"TIMESERIES_ENGINE": "influx"})
    assert disabled_features({"TIMESERIES_DISABLE_FEATURES": "compression, policies"}) == (
        "compression", "policies")
    with pytest.raises(ValueError, match="TIMESERIES_DISABLE_FEATURES"):
        disabled_features({"TIMESERIES_DISABLE_FEATURES": "hypertable"})


def test_retention_settings_are_recorded(scratch: ScratchDatabases,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    url = scratch.create("nxt_ts")
    monkeypatch.setenv("TIMESERIES_RAW_RETENTION", "90 days")
    monkeypatch.setenv("TIMESERIES_COMPRESS_AFTER", "2 days")
    migrate.migrate_timeseries(url, engine="native")
    with psycopg.connect(url) as c:
        info = engine_info(c)
    assert info is not None
    assert (info.raw_retention, info.compress_after) == (timedelta(days=90), timedelta(days=2))


# -- column types ------------------------------------------------------------------------

EXACT = {
    ("meter_readings", "counter_kwh"): (14, 4), ("meter_readings", "power_w"): (12, 3),
    ("meter_readings", "voltage_v"): (8, 3), ("meter_readings", "credit_kwh"): (14, 4),
    ("meter_snapshot_1_h", "consumption_kwh_exact"): (14, 4),
    ("meter_snapshot_1_h", "counter_kwh_exact"): (14, 4),
    ("meter_snapshot_1_h", "kwh_credit_available_exact"): (14, 4),
    ("order_snapshots", "amount_exact"): (None, None),
    ("order_snapshots", "tariff_exact"): (None, None),
    ("grid_business_snapshot_1_d", "total_consumption_kwh_exact"): (None, None),
    ("grid_business_snapshot_1_d", "energy_topup_revenue_exact"): (None, None),
}
# The legacy float columns, each written from the exact column beside it.
FLOAT_TWINS = {("meter_snapshot_1_h", "consumption_kwh"), ("meter_snapshot_1_h", "counter_kwh"),
               ("meter_snapshot_1_h", "kwh_credit_available"), ("order_snapshots", "amount"),
               ("order_snapshots", "tariff"), ("grid_business_snapshot_1_d",
                                               "total_consumption_kwh"),
               ("grid_business_snapshot_1_d", "energy_topup_revenue")}


def test_energy_and_money_are_numeric(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = conn.execute(
        "select c.table_name, c.column_name, c.data_type, c.numeric_precision,"
        " c.numeric_scale from information_schema.columns c"
        " join pg_class k on k.relname = c.table_name and not k.relispartition"
        " and k.relnamespace = c.table_schema::regnamespace"
        " where c.table_schema = 'ts' or c.table_name in"
        " ('meter_snapshot_1_h', 'order_snapshots', 'grid_business_snapshot_1_d')").fetchall()
    types = {(t, c): (dt, p, s) for t, c, dt, p, s in rows}
    for key, (precision, scale) in EXACT.items():
        assert types[key] == ("numeric", precision, scale), key
    # This project's columns are exact; the legacy keeps its floats, each with an exact twin.
    floats = {k for k, (dt, _, _) in types.items() if dt in ("real", "double precision")}
    assert {k for k in floats if k[0] in ("meter_readings", "pending_hours")} == set()
    for table, column in FLOAT_TWINS:
        assert (table, column) in floats and (table, f"{column}_exact") in types
    # The roll-up view keeps exact sums too.
    assert types[("readings_hourly", "last_counter_kwh")][0] == "numeric"


def test_table_definitions_match_the_migrated_schema(ts_db: str) -> None:
    """timeseries/tables.py is the single source of column names: it must say what the
    revisions built, in `ts` and in the legacy tables of `public`."""
    from sqlalchemy import inspect
    from sqlalchemy.dialects import postgresql

    from timeseries.engine import make_engine

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    engine = make_engine(ts_db)
    try:
        inspector = inspect(engine)
        for table in tables.metadata.sorted_tables:
            found = inspector.get_columns(table.name, schema=table.schema)
            assert [c["name"] for c in found] == [c.name for c in table.columns], table.name
            for col, db in zip(table.columns, found, strict=True):
                assert (col.type.compile(dialect) == db["type"].compile(dialect)), (
                    table.name, col.name)
                if not table.info.get("is_view"):
                    assert col.nullable == db["nullable"], (table.name, col.name)
            if not table.info.get("is_view"):
                pk = inspector.get_pk_constraint(table.name,
                                                 schema=table.schema)["constrained_columns"]
                assert pk == [c.name for c in table.primary_key.columns], table.name
    finally:
        engine.dispose()


# -- partitions ----------------------------------------------------------------------------


def test_the_migration_creates_partitions_around_today_and_no_default(
        conn: psycopg.Connection[tuple[object, ...]]) -> None:
    today = datetime.now(UTC).date()
    readings = {p.name for p in list_partitions(conn, "meter_readings")}
    expected = {f"meter_readings_p{today + timedelta(days=d):%Y%m%d}" for d in range(-14, 8)}
    # A run that straddles midnight UTC may have made one more at either end.
    assert expected - readings == set() and len(readings) in (22, 23)
    hourly = {p.name for p in list_partitions(conn, "meter_snapshot_1_h")}
    assert f"meter_snapshot_1_h_p{today:%Y%m}" in hourly and len(hourly) in (4, 5)
    for table in ("order_snapshots", "grid_business_snapshot_1_d"):
        yearly = {p.name for p in list_partitions(conn, table)}
        assert f"{table}_p{today:%Y}" in yearly and len(yearly) in (1, 2)
    partitioned = conn.execute("select partrelid::regclass::text, partdefid <> 0"
                               " from pg_partitioned_table").fetchall()
    assert dict(partitioned) == {
        "ts.meter_readings": False, "meter_snapshot_1_h": False, "order_snapshots": False,
        "grid_business_snapshot_1_d": False}  # no default partition anywhere


def test_ensure_partitions_creates_exactly_the_needed_ones(
        conn: psycopg.Connection[tuple[object, ...]]) -> None:
    created = ensure_partitions(conn, "meter_readings", _utc(2020, 3, 1, 10), _utc(2020, 3, 3))
    assert created == ["meter_readings_p20200301", "meter_readings_p20200302",
                       "meter_readings_p20200303"]
    assert ensure_partitions(conn, "ts.meter_readings", _utc(2020, 3, 1), _utc(2020, 3, 3)) == []
    made = {p.name: (p.lower, p.upper) for p in list_partitions(conn, "meter_readings")}
    assert made["meter_readings_p20200302"] == (_utc(2020, 3, 2), _utc(2020, 3, 3))

    created = ensure_partitions(conn, "meter_snapshot_1_h", date(2020, 1, 15), _utc(2020, 3, 1))
    assert created == ["meter_snapshot_1_h_p202001", "meter_snapshot_1_h_p202002",
                       "meter_snapshot_1_h_p202003"]
    made = {p.name: (p.lower, p.upper) for p in list_partitions(conn, "meter_snapshot_1_h")}
    assert made["meter_snapshot_1_h_p202002"] == (_utc(2020, 2, 1), _utc(2020, 3, 1))
    assert ensure_partitions(conn, "public.order_snapshots", _utc(2019, 12, 31),
                             _utc(2020, 1, 1)) == ["order_snapshots_p2019", "order_snapshots_p2020"]
    made = {p.name: (p.lower, p.upper) for p in list_partitions(conn, "order_snapshots")}
    assert made["order_snapshots_p2019"] == (_utc(2019, 1, 1), _utc(2020, 1, 1))


def test_legacy_partitions_hold_utc_whatever_the_session_time_zone(
        conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """The legacy tables' created_at is UTC without a zone: a partition's bounds are UTC
    wall-clock times, written and read back the same in any session TimeZone."""
    conn.execute("set timezone = 'Asia/Kolkata'")
    assert ensure_partitions(conn, "meter_snapshot_1_h", _utc(2021, 3, 31, 23),
                             _utc(2021, 3, 31, 23)) == ["meter_snapshot_1_h_p202103"]
    made = {p.name: (p.lower, p.upper) for p in list_partitions(conn, "meter_snapshot_1_h")}
    assert made["meter_snapshot_1_h_p202103"] == (_utc(2021, 3, 1), _utc(2021, 4, 1))
    # 2021-03-31 23:00 UTC lands in March (it is April 1st in Kolkata).
    where = conn.execute("insert into public.meter_snapshot_1_h (created_at, meter_id)"
                         " values ('2021-03-31 23:00', 1) returning tableoid::regclass::text"
                         ).fetchone()
    assert where == ("meter_snapshot_1_h_p202103",)
    with pytest.raises(errors.CheckViolation, match="no partition"):
        conn.execute("insert into public.meter_snapshot_1_h (created_at, meter_id)"
                     " values ('2021-04-01 00:00', 1)")


def test_partition_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="not a time-partitioned table"):
        planned("orders; drop table x", _utc(2020, 1, 1), _utc(2020, 1, 2))
    with pytest.raises(ValueError, match="naive datetime"):
        planned("meter_readings", datetime(2020, 1, 1), _utc(2020, 1, 2))
    with pytest.raises(ValueError, match="more than"):
        planned("meter_readings", _utc(1970, 1, 1), _utc(2030, 1, 1))
    # Other time zones are converted: 2020-01-01 23:30 at UTC-2 is 2020-01-02 UTC.
    minus2 = datetime(2020, 1, 1, 23, 30, tzinfo=ZoneInfo("America/Noronha"))
    assert [p.name for p in planned("meter_readings", minus2, minus2)] == [
        "meter_readings_p20200102"]


def test_ensure_partitions_is_safe_from_concurrent_sessions(ts_db: str) -> None:
    # One session creates and has not committed; the other asks for the same days: it waits
    # on the lock, then finds them made and creates nothing (no duplicate-table error).
    first = psycopg.connect(ts_db)
    second = psycopg.connect(ts_db)
    result: list[object] = []
    try:
        assert len(ensure_partitions(first, "meter_readings", _utc(2021, 1, 1),
                                     _utc(2021, 1, 2))) == 2

        def other() -> None:
            try:
                result.append(ensure_partitions(second, "meter_readings", _utc(2021, 1, 2),
                                                _utc(2021, 1, 3)))
                second.commit()
            except Exception as exc:
                result.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive(), "the second session must wait for the first one's commit"
        first.commit()
        thread.join(10)
        assert result == [["meter_readings_p20210103"]]
    finally:
        first.close()
        second.close()


def test_ensure_partitions_from_many_sessions_at_once(ts_db: str) -> None:
    barrier = threading.Barrier(6)
    outcomes: list[object] = []
    lock = threading.Lock()

    def worker() -> None:
        with psycopg.connect(ts_db, autocommit=True) as c:
            barrier.wait()
            try:
                made = ensure_partitions(c, "meter_readings", _utc(2022, 5, 1), _utc(2022, 5, 4))
            except Exception as exc:
                made = exc  # type: ignore[assignment]
            with lock:
                outcomes.append(made)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(isinstance(o, list) for o in outcomes), outcomes
    made = sorted(n for o in outcomes for n in o)  # type: ignore[union-attr]
    assert made == [f"meter_readings_p202205{d:02d}" for d in range(1, 5)]


def test_aensure_partitions_for_the_async_ingest(ts_db: str) -> None:
    async def run() -> tuple[list[str], list[str]]:
        async with await psycopg.AsyncConnection.connect(ts_db) as c:
            first = await aensure_partitions(c, "meter_readings", _utc(2023, 7, 1, 5),
                                             _utc(2023, 7, 1, 23))
            again = await aensure_partitions(c, "meter_readings", _utc(2023, 7, 1),
                                             _utc(2023, 7, 1))
            await c.commit()
            return first, again

    assert asyncio.run(run()) == (["meter_readings_p20230701"], [])


def test_a_reading_without_its_partition_fails_and_then_lands_in_it(
        conn: psycopg.Connection[tuple[object, ...]]) -> None:
    insert = ("insert into ts.meter_readings (meter_id, ts, counter_kwh, credit_kwh)"
              " values (7, %s, 12.3456, 1.5) returning tableoid::regclass::text")
    when = _utc(2020, 5, 5, 13, 45)
    with pytest.raises(errors.CheckViolation, match="no partition"):
        conn.execute(insert, (when,))
    assert ensure_partitions(conn, "meter_readings", when, when) == ["meter_readings_p20200505"]
    assert conn.execute(insert, (when,)).fetchone() == ("ts.meter_readings_p20200505",)
    assert conn.execute("select counter_kwh from ts.meter_readings where meter_id = 7"
                        ).fetchone() == (Decimal("12.3456"),)
    with pytest.raises(errors.CheckViolation):
        conn.execute(insert.replace("12.3456", "-1"), (when + timedelta(minutes=1),))


def test_drop_expired_drops_only_old_partitions(
        conn: psycopg.Connection[tuple[object, ...]]) -> None:
    ensure_partitions(conn, "meter_readings", _utc(2020, 6, 1), _utc(2020, 6, 5))
    recent = {p.name for p in list_partitions(conn, "meter_readings")} - {
        f"meter_readings_p202006{d:02d}" for d in range(1, 6)}
    # 2020-06-03 12:00: the 3rd still holds younger rows, so only the 1st and 2nd go.
    dropped = drop_expired(conn, "meter_readings", _utc(2020, 6, 3, 12))
    assert dropped == ["meter_readings_p20200601", "meter_readings_p20200602"]
    left = {p.name for p in list_partitions(conn, "meter_readings")}
    assert left == recent | {"meter_readings_p20200603", "meter_readings_p20200604",
                             "meter_readings_p20200605"}
    assert drop_expired(conn, "meter_readings", _utc(2020, 6, 3, 12)) == []


def test_maintenance_creates_ahead_and_drops_past_retention(
        conn: psycopg.Connection[tuple[object, ...]]) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=420)
    ensure_partitions(conn, "meter_readings", old, old)
    report = maintain(conn, now + timedelta(days=3))
    assert f"meter_readings_p{old:%Y%m%d}" in report["dropped"]
    ahead = now + timedelta(days=10)
    assert f"meter_readings_p{ahead:%Y%m%d}" in report["created"]
    assert report["compressed"] == report["refreshed"] == []
    assert maintain(conn, now + timedelta(days=3))["created"] == []
    # Recorded under the job's name, visible through both names of the table.
    rows = conn.execute("select w.job, r.details from ts.job_watermarks w"
                        " join ts.job_runs r using (job)").fetchall()
    assert rows == [("timeseries.maintenance", {"created": [], "dropped": [], "compressed": [],
                                                "refreshed": []})]


def test_readings_hourly_rolls_up_raw_readings(
        conn: psycopg.Connection[tuple[object, ...]]) -> None:
    ensure_partitions(conn, "meter_readings", _utc(2020, 8, 1), _utc(2020, 8, 1))
    conn.execute("insert into ts.meter_readings (meter_id, ts, counter_kwh, power_w, credit_kwh)"
                 " values (1, '2020-08-01 10:10Z', 100.5, 200, 9),"
                 " (1, '2020-08-01 10:50Z', 101.25, 350.5, 8),"
                 " (1, '2020-08-01 11:05Z', 102, 10, 7)")
    rows = conn.execute("select hour, reading_count, first_counter_kwh, last_counter_kwh,"
                        " max_power_w, last_credit_kwh from ts.readings_hourly"
                        " where meter_id = 1 order by hour").fetchall()
    assert rows == [
        (_utc(2020, 8, 1, 10), 2, Decimal("100.5000"), Decimal("101.2500"), Decimal("350.500"),
         Decimal("8.0000")),
        (_utc(2020, 8, 1, 11), 1, Decimal("102.0000"), Decimal("102.0000"), Decimal("10.000"),
         Decimal("7.0000")),
    ]


def test_hours_must_be_whole(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    with pytest.raises(errors.CheckViolation, match="pending_hours_whole_hour"):
        conn.execute("insert into ts.pending_hours (hour) values ('2020-01-01 10:30Z')")
    conn.execute("insert into ts.pending_hours (hour) values ('2020-01-01 10:00Z')")


# -- the local database beside the transactional one ---------------------------------------


def test_timeseries_database_url_derives_a_second_local_database(
        scratch: ScratchDatabases) -> None:
    from nxt_cli.stack import timeseries_database_url

    url = scratch.create("nxt_tsurl")
    name = url.rsplit("/", 1)[1]
    derived = timeseries_database_url(url, env={})
    assert derived is not None and derived.endswith(f"/{name}_timeseries")
    scratch.names.append(f"{name}_timeseries")  # dropped with the scratch databases
    with psycopg.connect(derived) as c:
        assert c.execute("select current_database()").fetchone() == (f"{name}_timeseries",)
    assert timeseries_database_url(url, env={}) == derived  # exists now: reused
    explicit = "postgresql://u@ts.example.com:5432/ts"
    assert timeseries_database_url(url, env={"TIMESERIES_DATABASE_URL": explicit}) == explicit
    assert timeseries_database_url("postgresql://u@db.example.com/x", env={}) is None



# -- the TimescaleDB lane (tests/support/timescale_server.py) --------------------------------


@pytest.fixture(scope="module")
def timescale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The TimescaleDB test server (PGlite: one database, one connection at a time, no
    background workers), for this module's lane."""
    from tests.support.timescale_server import require_timescale, start_timescale

    require_timescale()
    with start_timescale(tmp_path_factory.mktemp("timescale")) as server:
        yield server.url


@pytest.fixture
def ts_url(timescale: str) -> Iterator[str]:
    """The server's one database, left without the time-series schema after each test.
    Every connection is closed before a migration runs: the server serves one at a time."""
    yield timescale
    if migrate.timeseries_current_revision(timescale) is not None:
        migrate.downgrade_timeseries(timescale, "base")


def _fetch(url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as c:
        return c.execute(query, params or None).fetchall()


@pytest.mark.timescale
def test_the_revisions_build_hypertables_and_record_the_features(ts_url: str) -> None:
    assert migrate.migrate_timeseries(ts_url) == (None, HEAD)
    with psycopg.connect(ts_url, autocommit=True) as c:
        info = engine_info(c)
    assert info is not None and info.engine == "timescaledb"
    assert {"hypertable", "time_bucket"} <= set(info.features)
    assert info.timescaledb_version
    dims = dict(_fetch(ts_url, "select hypertable_schema || '.' || hypertable_name,"
                       " time_interval from timescaledb_information.dimensions"
                       " where hypertable_schema in ('ts', 'public')"))
    # The legacy tables as the legacy created them: 7-day chunks on created_at.
    assert dims == {"ts.meter_readings": timedelta(days=1),
                    **{t: timedelta(days=7) for t in LEGACY_TABLES}}
    # Hypertables, not partitioned tables: no native partitions anywhere.
    assert _fetch(ts_url, "select count(*) from pg_partitioned_table") == [(0,)]
    # ...with TimescaleDB's own created_at index, as on a legacy database
    assert _fetch(ts_url, "select indexdef from pg_indexes where indexname ="
                  " 'meter_snapshot_1_h_created_at_idx'") == [(
                      "CREATE INDEX meter_snapshot_1_h_created_at_idx ON"
                      " public.meter_snapshot_1_h USING btree (created_at DESC)",)]
    compressed = _fetch(ts_url, "select compression_enabled from timescaledb_information"
                        ".hypertables where hypertable_name = 'meter_readings'")
    assert compressed == [("compression" in info.features,)]
    caggs = _fetch(ts_url, "select view_name, materialized_only from"
                   " timescaledb_information.continuous_aggregates where view_schema = 'ts'")
    assert caggs == ([("readings_hourly", False)] if info.has("continuous_aggregates") else [])
    jobs = _fetch(ts_url, "select proc_name from timescaledb_information.jobs"
                  " where hypertable_schema = 'ts'")
    assert bool(jobs) == info.has("policies")


@pytest.mark.timescale
def test_without_the_licensed_features_it_degrades(ts_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """As on the Apache-2 edition: hypertables only, a plain view, no compression."""
    monkeypatch.setenv("TIMESERIES_DISABLE_FEATURES", "compression,continuous_aggregates,policies")
    migrate.migrate_timeseries(ts_url)
    assert _fetch(ts_url, "select engine, features from ts.engine_info") == [
        ("timescaledb", ["hypertable", "time_bucket"])]
    assert _fetch(ts_url, "select compression_enabled from timescaledb_information.hypertables"
                  " where hypertable_name = 'meter_readings'") == [(False,)]
    assert _fetch(ts_url, "select relkind::text from pg_class"
                  " where oid = 'ts.readings_hourly'::regclass") == [("v",)]


@pytest.mark.timescale
def test_partition_functions_defer_to_timescaledb(ts_url: str) -> None:
    migrate.migrate_timeseries(ts_url)
    old = _utc(2020, 1, 5, 10)
    with psycopg.connect(ts_url, autocommit=True) as c:
        assert ensure_partitions(c, "meter_readings", old, old) == []  # chunks are automatic
        c.execute("insert into ts.meter_readings (meter_id, ts, counter_kwh) values (1, %s, 1)",
                  (old,))
        chunks = list_partitions(c, "meter_readings")
        assert [(p.lower, p.upper) for p in chunks] == [(_utc(2020, 1, 5), _utc(2020, 1, 6))]
        assert drop_expired(c, "meter_readings", _utc(2020, 1, 6)) == [chunks[0].name]
        assert list_partitions(c, "meter_readings") == []
        assert maintain(c)["created"] == []
        # A legacy table's chunks (created_at without a zone, holding UTC) in UTC, whatever
        # the session's zone.
        assert ensure_partitions(c, "meter_snapshot_1_h", old, old) == []
        c.execute("insert into public.meter_snapshot_1_h (created_at, meter_id)"
                  " values ('2020-01-05 23:30', 1)")
        c.execute("set timezone = 'America/Noronha'")
        legacy = list_partitions(c, "meter_snapshot_1_h")
        assert len(legacy) == 1 and legacy[0].upper - legacy[0].lower == timedelta(days=7)
        assert legacy[0].lower <= _utc(2020, 1, 5, 23, 30) < legacy[0].upper
        assert legacy[0].lower.astimezone(UTC).time() == datetime.min.time()


@pytest.mark.timescale
def test_maintenance_compresses_when_no_policy_does(ts_url: str) -> None:
    migrate.migrate_timeseries(ts_url)
    with psycopg.connect(ts_url, autocommit=True) as c:
        info = engine_info(c)
        assert info is not None
        if not info.has("compression") or info.has("policies"):
            pytest.skip("needs compression without policies (the PGlite server's case)")
        ten_days_ago = datetime.now(UTC) - timedelta(days=10)
        c.execute("insert into ts.meter_readings (meter_id, ts, counter_kwh) values (1, %s, 1)",
                  (ten_days_ago,))
        assert len(maintain(c)["compressed"]) == 1
        # Resent readings that fall in a compressed chunk are still idempotent.
        resent = c.execute("insert into ts.meter_readings (meter_id, ts, counter_kwh)"
                           " values (1, %s, 1) on conflict do nothing", (ten_days_ago,))
        assert resent.rowcount == 0


@pytest.mark.timescale
def test_up_down_up_on_timescaledb(ts_url: str) -> None:
    migrate.migrate_timeseries(ts_url)
    migrate.downgrade_timeseries(ts_url, "base")
    assert _fetch(ts_url, "select count(*) from timescaledb_information.hypertables") == [(0,)]
    assert migrate.migrate_timeseries(ts_url) == (None, HEAD)


@pytest.mark.timescale
def test_table_definitions_match_on_timescaledb(ts_url: str) -> None:
    """One schema on both engines: tables.py holds for the hypertables and the aggregate."""
    from sqlalchemy import inspect
    from sqlalchemy.dialects import postgresql

    from timeseries.engine import make_engine

    migrate.migrate_timeseries(ts_url)
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    engine = make_engine(ts_url)
    try:
        inspector = inspect(engine)
        for table in tables.metadata.sorted_tables:
            found = inspector.get_columns(table.name, schema=table.schema)
            assert [(c["name"], c["type"].compile(dialect)) for c in found] == [
                (c.name, c.type.compile(dialect)) for c in table.columns], table.name
    finally:
        engine.dispose()


def test_the_additions_never_hold_a_legacy_writer_for_long(scratch: ScratchDatabases) -> None:
    """ts0003 alters the legacy tables under a short lock timeout, one table a transaction,
    retrying: behind a long legacy transaction it waits, but a legacy writer that comes after
    it waits at most one lock timeout, never until the long transaction ends."""
    import time

    from alembic import command

    url = scratch.create("nxt_ts")
    command.upgrade(migrate.timeseries_alembic_config(url, engine="native"), "ts0002")
    done: list[object] = []
    with psycopg.connect(url) as holder, psycopg.connect(url, autocommit=True) as writer:
        holder.execute("select count(*) from public.meter_snapshot_1_h")  # a long reader
        # A writer stuck behind the ALTER until the reader ends fails here instead of hanging.
        writer.execute("set statement_timeout = '10s'")
        migration = threading.Thread(target=lambda: done.append(
            migrate.migrate_timeseries(url)))
        migration.start()
        time.sleep(0.5)  # the ALTER is queued behind the reader now
        waits = []
        for minute in range(3):
            started = time.monotonic()
            writer.execute("insert into public.meter_snapshot_1_h (created_at, meter_id)"
                           " values (%s, 1)", (datetime(2026, 12, 1, 0, minute),))
            waits.append(time.monotonic() - started)
            time.sleep(1)
        assert migration.is_alive() and done == []  # still waiting for the reader
        holder.rollback()  # the long transaction ends
        migration.join(60)
    assert done == [("ts0002", HEAD)]
    assert max(waits) < 2.5, waits  # at most the 2 s lock timeout of one attempt
    with psycopg.connect(url) as c:
        assert c.execute("select count(*), count(built_at) from public.meter_snapshot_1_h"
                         ).fetchone() == (3, 0)


def test_the_builds_dimension_columns_are_the_snapshot_tables() -> None:
    # timeseries.hourly keeps its own list (importing tables.py would load SQLAlchemy into the
    # snapshot job's cold start): it must name and type the columns as tables.py declares them.
    from sqlalchemy.dialects import postgresql

    from timeseries.hourly import DIM_COLUMNS
    from timeseries.tables import meter_snapshot_1_h

    spelled = {"VARCHAR": "character varying", "INTEGER": "integer", "BOOLEAN": "boolean",
               "DOUBLE PRECISION": "double precision"}
    declared = [(name, spelled.get(meter_snapshot_1_h.c[name].type.compile(
        dialect=postgresql.dialect()), "?")) for name, _ in DIM_COLUMNS
        if name in meter_snapshot_1_h.c]
    assert declared == list(DIM_COLUMNS)
