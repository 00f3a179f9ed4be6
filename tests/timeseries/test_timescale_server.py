"""The TimescaleDB test server (tests/timescale) answers psycopg with a working TimescaleDB.

One session-wide server; it serves one connection at a time, so every test closes its
connection before the next one opens.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest

from tests.support.timescale_server import TimescaleServer, require_timescale, start_timescale

pytestmark = pytest.mark.timescale

UTC = dt.UTC
START = dt.datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def timescale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TimescaleServer]:
    require_timescale()
    with start_timescale(tmp_path_factory.mktemp("timescale")) as server:
        yield server


@pytest.fixture
def conn(timescale: TimescaleServer) -> Iterator[psycopg.Connection]:
    with psycopg.connect(timescale.url, autocommit=True) as conn:
        yield conn


def test_extension_is_installed_with_its_version(conn: psycopg.Connection) -> None:
    row = conn.execute(
        "select extversion from pg_extension where extname = 'timescaledb'"
    ).fetchone()
    assert row is not None
    assert row[0].startswith("2.23")
    assert conn.info.server_version >= 170000


def test_hypertable_filled_by_copy_and_bucketed(conn: psycopg.Connection) -> None:
    conn.execute("create table readings (ts timestamptz not null, device int, value float8)")
    conn.execute("select create_hypertable('readings', by_range('ts', interval '1 day'))")
    rows = [(START + dt.timedelta(minutes=10 * i), i % 3, float(i)) for i in range(3 * 144)]
    with conn.cursor().copy("copy readings (ts, device, value) from stdin") as copy:
        for row in rows[:144]:
            copy.write_row(row)
    with conn.cursor().copy("copy readings (ts, device, value) from stdin (format binary)") as copy:
        copy.set_types(["timestamptz", "int4", "float8"])
        for row in rows[144:]:
            copy.write_row(row)

    assert conn.execute("select count(*) from readings").fetchone() == (len(rows),)
    chunks = conn.execute(
        "select count(*) from timescaledb_information.chunks where hypertable_name = 'readings'"
    ).fetchone()
    assert chunks == (3,)
    buckets = conn.execute(
        "select time_bucket('1 day', ts) as day, count(*), sum(value)"
        " from readings group by day order by day"
    ).fetchall()
    assert [(day, n) for day, n, _ in buckets] == [
        (START + dt.timedelta(days=d), 144) for d in range(3)
    ]
    assert buckets[0][2] == sum(range(144))


def test_copy_larger_than_one_network_read(conn: psycopg.Connection) -> None:
    conn.execute("create table big (ts timestamptz not null, payload text)")
    conn.execute("select create_hypertable('big', by_range('ts'))")
    with conn.cursor().copy("copy big from stdin") as copy:
        for i in range(2000):
            copy.write_row((START + dt.timedelta(seconds=i), "x" * 500))
    assert conn.execute("select count(*), sum(length(payload)) from big").fetchone() == (
        2000,
        1_000_000,
    )


def test_each_connection_starts_with_a_clean_session(timescale: TimescaleServer) -> None:
    first = psycopg.connect(timescale.url)  # PGlite has one backend session for all clients
    first.execute("create temp table scratch (x int)")
    first.execute("select %s::int", (1,), prepare=True)
    first.execute("create table left_open (x int)")
    first.close()  # hangs up inside the transaction (a `with` block would commit it)
    with psycopg.connect(timescale.url) as second:
        assert second.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert second.execute("select to_regclass('left_open')").fetchone() == (None,)
        assert second.execute("select to_regclass('pg_temp.scratch')").fetchone() == (None,)
        assert second.execute("select %s::int", (2,), prepare=True).fetchone() == (2,)
        assert second.execute("select count(*) from pg_prepared_statements").fetchone() == (1,)
