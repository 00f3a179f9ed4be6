"""`nxt backfill snapshots --from ... --to ...`: rebuild the hourly snapshot of a range, one day
per transaction, with a progress bar. Interrupted (Ctrl-C, a lost connection), it keeps every
finished day; the same command again resumes after the last one.

It holds snapshot-meters' lock, so the hourly job and a backfill never build at once.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

JOB = "backfill-snapshots"
DAY = timedelta(days=1)

_PROGRESS = "select details from ts.job_watermarks where job = %s"
_SAVE = """
insert into ts.job_watermarks (job, watermark, details, updated_at)
values (%s, %s, %s, now())
on conflict (job) do update set watermark = excluded.watermark, details = excluded.details,
  updated_at = now()
"""


def _bar(done: int, total: int, started: float, width: int = 30) -> str:
    filled = int(width * done / total) if total else width
    elapsed = time.monotonic() - started
    eta = elapsed / done * (total - done) if done else 0.0
    return (f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} days"
            f"  {elapsed:5.0f}s elapsed, ~{eta:.0f}s left")


async def backfill(root: Path, ts_url: str, lo: datetime, hi: datetime,
                   out: Any = sys.stderr) -> dict[str, Any]:
    import importlib

    from psycopg.types.json import Jsonb

    from nxt_cli.functions import import_main
    from shared.db import close_all, transactional
    from shared.jobs import job_connection

    package = import_main(root / "functions" / "snapshot-meters" / "main.py", "snapshot-meters")
    snapshot = importlib.import_module(f"{package.__name__}.snapshot")
    span = {"from": lo.isoformat(), "to": hi.isoformat()}
    try:
        async with job_connection(ts_url, "snapshot-meters") as ts:
            if ts is None:
                raise RuntimeError("snapshot-meters is running; try again when it is done")
            cur = await ts.execute(_PROGRESS, (JOB,))
            row = await cur.fetchone()
            start = lo
            if row and row[0] and {k: row[0].get(k) for k in span} == span:
                start = datetime.fromisoformat(row[0]["done_until"])
                if start > lo:
                    print(f"resuming after {start.isoformat()}", file=out)
            await snapshot.load_dimension(ts, transactional())
            days = snapshot._chunks(lo, hi)
            todo = [(a, b) for a, b in days if b > start]
            started = time.monotonic()
            rows = 0
            for n, (a, b) in enumerate(todo, start=1):
                async with ts.transaction():
                    result = await snapshot.build_window(ts, max(a, start), b)
                    await ts.execute(_SAVE, (JOB, b, Jsonb({**span,
                                                            "done_until": b.isoformat()})))
                rows += result.written
                print(_bar(len(days) - len(todo) + n, len(days), started), end="", file=out,
                      flush=True)
            print(file=out)
            return {"status": "done", "days": len(todo), "rows": rows}
    finally:
        await close_all()


def parse_hour(text: str, name: str) -> datetime:
    from datetime import UTC

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"--{name}: not an ISO 8601 date or time: {text!r}") from None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(minute=0, second=0, microsecond=0)
