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
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nxt_cli.harness import ScratchDatabases, server_url  # noqa: E402
from tests.support.hourly_model import TABLES_DDL  # noqa: E402
from timeseries.hourly import BuildResult, build_hours, create_meter_dim  # noqa: E402

DAY = datetime(2025, 6, 1, tzinfo=UTC)


@contextmanager
def server(url: str | None) -> Iterator[str]:
    """`url`, else an embedded PostgreSQL of this run's own (removed afterwards)."""
    with TemporaryDirectory() as tmp, server_url(Path(tmp) / "data", url) as admin:
        yield admin


@contextmanager
def scratch(admin_url: str) -> Iterator[str]:
    """A database of the probe's own on that server, dropped afterwards."""
    databases = ScratchDatabases(admin_url)
    try:
        yield databases.create("hourly_probe")
    finally:
        databases.drop_all()


def fixed(units: int, scale: int) -> str:
    """An integer count of 10^-scale as decimal text: no float on the way into numeric."""
    whole, frac = divmod(units, 10**scale)
    return f"{whole}.{frac:0{scale}d}"


def copy_text(meters: int, per_day: int) -> list[bytes]:
    """The day's readings as COPY text, in the order they arrive (by time, all meters every
    15 min), in ~1 MB chunks. Each reading is a few seconds late, so most hours have a pair
    straddling their start; counters rise by small amounts, and 1 in 7 has no credit."""
    rng = random.Random(7)
    step = timedelta(days=1) / per_day
    counters = [rng.randrange(0, 50_000_000) for _ in range(meters)]  # 0.0001 kWh units
    chunks, lines, size = [], [], 0
    for i in range(per_day):
        slot = DAY + i * step
        for meter in range(1, meters + 1):
            ts = slot + timedelta(microseconds=rng.randrange(0, 20_000_000))
            counters[meter - 1] += rng.randrange(0, 5_000)
            credit = "\\N" if (i + meter) % 7 == 0 else fixed(rng.randrange(0, 10_000_000), 4)
            line = (f"{meter}\t{ts.isoformat()}\t{fixed(counters[meter - 1], 4)}\t"
                    f"{fixed(rng.randrange(0, 3_000_000), 3)}\t230.000\t{credit}\n")
            lines.append(line)
            size += len(line)
            if size > 1 << 20:
                chunks.append("".join(lines).encode())
                lines, size = [], 0
    chunks.append("".join(lines).encode())
    return chunks


class Clock:
    """Wall time, and the CPU time of the server process serving the connection (read from
    /proc when the server runs on this machine): the CPU figure does not move when other work
    shares the machine, the wall one does."""

    def __init__(self, conn: psycopg.Connection) -> None:
        pid = conn.execute("select pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        self.stat = Path(f"/proc/{pid}/stat")
        self.tick = os.sysconf("SC_CLK_TCK")

    def cpu(self) -> float | None:
        try:
            fields = self.stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime

    @contextmanager
    def measure(self, into: list[tuple[float, float | None]]) -> Iterator[None]:
        cpu, started = self.cpu(), time.perf_counter()
        yield
        wall, after = time.perf_counter() - started, self.cpu()
        into.append((wall, None if cpu is None or after is None else after - cpu))


def load(conn: psycopg.Connection, chunks: list[bytes]) -> None:
    """COPY the day into ts.meter_readings and commit."""
    with conn.cursor() as cur, cur.copy(
            "copy ts.meter_readings (meter_id, ts, counter_kwh, power_w, voltage_v, credit_kwh)"
            " from stdin") as copy:
        for chunk in chunks:
            copy.write(chunk)
    conn.commit()


def build(conn: psycopg.Connection) -> BuildResult:
    result = build_hours(conn, DAY, DAY + timedelta(days=1))
    conn.commit()
    return result


def median(runs: list[tuple[float, float | None]], index: int) -> float | None:
    values = [r[index] for r in runs]
    return None if None in values else statistics.median(v for v in values if v is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--per-day", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3,
                        help="COPY + build + rebuild this many times; medians are reported")
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()

    chunks = copy_text(args.meters, args.per_day)
    runs: dict[str, list[tuple[float, float | None]]] = {"copy": [], "build": [], "rebuild": []}
    with server(args.url) as admin_url, scratch(admin_url) as url, \
            psycopg.connect(url) as conn:
        print("server:", conn.execute("select version()").fetchone()[0])  # type: ignore[index]
        conn.execute(TABLES_DDL)
        create_meter_dim(conn)
        with conn.cursor() as cur, cur.copy(
                "copy pg_temp.meter_dim (meter_id, meter_type, grid_id, grid_name,"
                " organization_id, organization_name, is_hidden_from_reporting)"
                " from stdin") as copy:
            for meter in range(1, args.meters + 1):
                copy.write_row((meter, "HPS", meter % 40, f"grid {meter % 40}", 3, "Solar One",
                                False))
        conn.execute("analyze pg_temp.meter_dim")
        conn.commit()
        clock = Clock(conn)
        for _ in range(args.rounds):
            conn.execute("truncate ts.meter_readings, public.meter_snapshot_1_h")
            conn.commit()
            with clock.measure(runs["copy"]):
                load(conn, chunks)
            # what autovacuum does after a load this size, before the job runs
            conn.execute("analyze ts.meter_readings")
            conn.commit()
            with clock.measure(runs["build"]):
                result = build(conn)
            with clock.measure(runs["rebuild"]):  # unchanged hours: computed, compared, kept
                again = build(conn)

    print(f"readings: {args.meters * args.per_day:,} ({args.meters:,} meters x {args.per_day},"
          f" in arrival order); medians of {args.rounds} rounds")
    copy_wall, copy_cpu = median(runs["copy"], 0), median(runs["copy"], 1)
    assert copy_wall is not None
    for label, key, res in (("COPY into ts.meter_readings", "copy", None),
                            ("build_hours, first build  ", "build", result),
                            ("build_hours, rebuild      ", "rebuild", again)):
        wall, cpu = median(runs[key], 0), median(runs[key], 1)
        assert wall is not None
        line = f"{label}  wall {wall:5.2f} s = {wall / copy_wall:.2f} x COPY"
        if cpu is not None and copy_cpu:
            line += f"   server CPU {cpu:5.2f} s = {cpu / copy_cpu:.2f} x COPY"
        if res is not None:
            line += f"   ({res.hours:,} hours, {res.written:,} written, {res.removed:,} removed)"
        print(line)
    print("all wall times:", {k: [round(w, 2) for w, _ in v] for k, v in runs.items()})


if __name__ == "__main__":
    main()
