"""How fast is build_hours? One day of 15-minute readings for 10,000 meters (960k readings):
the time to COPY them into ts.meter_readings against the time to build their 240k hours.

    .venv/bin/python bench/hourly_probe.py [--meters 10000] [--url postgresql://...]

Runs on a scratch database it creates and drops: on --url / DATABASE_URL's server when given,
else on an embedded PostgreSQL started for the run. The target: build <= COPY.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hourly_model import TABLES_DDL  # noqa: E402
from timeseries.hourly import build_hours, create_meter_dim  # noqa: E402

DAY = datetime(2025, 6, 1, tzinfo=UTC)


@contextmanager
def server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nxt_cli.localdb import LocalDatabase, free_port
    with TemporaryDirectory() as tmp:
        db = LocalDatabase(Path(tmp) / "data", free_port()).start()
        try:
            yield db.url
        finally:
            db.destroy()


@contextmanager
def scratch(admin_url: str) -> Iterator[str]:
    name = f"hourly_probe_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def copy_text(meters: int, per_day: int) -> list[bytes]:
    """The day's readings as COPY text, in chunks: every 15 min, a few seconds late each time
    (so most hours have a pair straddling their start), counters rising by small amounts."""
    rng = random.Random(7)
    step = timedelta(days=1) / per_day
    chunks = []
    for meter in range(1, meters + 1):
        counter = rng.randrange(0, 50_000_000)  # 0.0001 kWh units
        lines = []
        for i in range(per_day):
            ts = DAY + i * step + timedelta(microseconds=rng.randrange(0, 20_000_000))
            counter += rng.randrange(0, 5_000)
            credit = "\\N" if i % 7 == 0 else f"{rng.randrange(0, 10_000_000) / 10_000:.4f}"
            lines.append(f"{meter}\t{ts.isoformat()}\t{counter / 10_000:.4f}\t"
                         f"{rng.randrange(0, 3_000_000) / 1000:.3f}\t230.000\t{credit}\n")
        chunks.append("".join(lines).encode())
    return chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--per-day", type=int, default=96)
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()

    chunks = copy_text(args.meters, args.per_day)
    readings = args.meters * args.per_day
    with server(args.url) as admin_url, scratch(admin_url) as url, \
            psycopg.connect(url) as conn:
        print("server:", conn.execute("select version()").fetchone()[0])  # type: ignore[index]
        conn.execute(TABLES_DDL)
        conn.commit()

        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                "copy ts.meter_readings (meter_id, ts, counter_kwh, power_w, voltage_v,"
                " credit_kwh) from stdin") as copy:
            for chunk in chunks:
                copy.write(chunk)
        conn.commit()
        copy_s = time.perf_counter() - started
        conn.execute("analyze ts.meter_readings")
        conn.commit()

        create_meter_dim(conn)
        with conn.cursor() as cur, cur.copy(
                "copy pg_temp.meter_dim (meter_id, meter_type, grid_id, grid_name,"
                " is_hidden_from_reporting) from stdin") as copy:
            for meter in range(1, args.meters + 1):
                copy.write_row((meter, "HPS", meter % 40, f"grid {meter % 40}", False))
        conn.execute("analyze pg_temp.meter_dim")
        conn.commit()

        timings = []
        for label in ("first build", "rebuild (unchanged)"):
            started = time.perf_counter()
            result = build_hours(conn, DAY, DAY + timedelta(days=1))
            conn.commit()
            timings.append((label, time.perf_counter() - started, result))

    print(f"readings: {readings:,} ({args.meters:,} meters x {args.per_day})")
    print(f"COPY into ts.meter_readings: {copy_s:6.2f} s")
    for label, seconds, result in timings:
        print(f"build_hours, {label}: {seconds:6.2f} s  ({result.hours:,} hours,"
              f" {result.written:,} written, {result.removed:,} removed)"
              f"  = {seconds / copy_s:.2f} x COPY")


if __name__ == "__main__":
    main()
