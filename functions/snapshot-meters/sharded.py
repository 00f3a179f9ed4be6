"""One shard of the hourly build: `{"shard": k, "shards": n}` builds the meters with
`meter_id % n = k` for the pending hours, beside the other n - 1 shards running in parallel.

The queue: ts.pending_hours says which hours to build, for every meter. A shard must not delete
an entry when it has built its own meters (the other shards would never see it), so each shard
records the entries it built in ts.pending_hours_built (revision ts0005) and the shard that
completes the set of n deletes the entry (its ledger rows go with it, on delete cascade). A
shard takes only the entries it has not built yet, so a shard that is ahead does not rebuild
them while it waits for a slow one.

Each window's transaction builds, then records and drains its entries, then recounts its hours
(timeseries/counts.py), in that order, so every shard takes its locks in the same order: the
entries' rows (FOR UPDATE, by id), then the counts' lock. Locking the entries makes the shards
that finish the same entries take turns, and the statement that counts an entry's ledger rows
runs after the earlier shards committed (read committed: a new snapshot per statement), so the
last of them sees all n and deletes it: an entry is never left behind by two shards finishing
together. A shard killed mid-way rolls back its open window: its entries stay unrecorded for it,
and its next run builds them.

The rows are those of one unsharded run: a meter's rows depend only on its readings and its
dimension, never on which other meters were built with it, and the ranges are computed per
meter (timeseries/hourly.py, hours_to_rebuild), the shard's meters among them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.shards import Shard

from .snapshot import _chunks, _naive, build_window, load_dimension

# The entries of closed hours this shard has not built yet.
_PENDING = """
select p.id, p.hour from ts.pending_hours p
 where p.hour < %(closed)s
   and not exists (select 1 from ts.pending_hours_built b
                    where b.pending_id = p.id and b.shards = %(shards)s
                      and b.shard = %(shard)s)
"""
# In id order, so two shards locking overlapping sets cannot deadlock on them.
_LOCK = "select id from ts.pending_hours where id = any(%(ids)s) order by id for update"
_RECORD = """
insert into ts.pending_hours_built (pending_id, hour, shards, shard)
select id, hour, %(shards)s, %(shard)s from ts.pending_hours where id = any(%(ids)s)
on conflict do nothing
"""
_DRAIN = """
delete from ts.pending_hours p
 where p.id = any(%(ids)s)
   and (select count(*) from ts.pending_hours_built b
         where b.pending_id = p.id and b.shards = %(shards)s) >= %(shards)s
returning p.id
"""
# Entries this shard built that other shards of its n have not (yet).
_WAITING = """
select count(*) from ts.pending_hours_built where shards = %(shards)s and shard = %(shard)s
"""


async def finish(ts: Any, ids: list[int], shard: Shard) -> int:
    """In the caller's transaction: record that `shard` built the entries `ids`, and delete
    those every shard of its n has now built. Returns how many it deleted."""
    if not ids:
        return 0
    params = {"ids": ids, "shard": shard.shard, "shards": shard.shards}
    await ts.execute(_LOCK, params)
    await ts.execute(_RECORD, params)
    cur = await ts.execute(_DRAIN, params)
    return len(await cur.fetchall())


async def build_shard(ts: Any, transactional: Any, shard: Shard,
                      now: datetime | None = None) -> dict[str, Any]:
    """`ts`: the shard's direct connection (autocommit, holding the shard's locks)."""
    from timeseries.counts import HISTORY_BATCH, acatch_up, arecount
    from timeseries.hourly import ahours_to_rebuild

    now = now or datetime.now(UTC)
    closed = now.replace(minute=0, second=0, microsecond=0)
    params = {"closed": closed, "shard": shard.shard, "shards": shard.shards}
    # The history of uncounted hours is counted by shard 0 alone: n shards would count the
    # same hours n times, one after another (recounts take turns).
    history = HISTORY_BATCH if shard.shard == 0 else 0
    cur = await ts.execute(_PENDING, params)
    taken = await cur.fetchall()
    if not taken:
        counts = await acatch_up(ts, _naive(now), history=history)
        return {"status": "done", "shard": shard.shard, "shards": shard.shards, "queued": 0,
                "hours": 0, "rows": 0, "drained": 0, "waiting": await _waiting(ts, shard),
                "counts": counts}
    meters = await load_dimension(ts, transactional, shard)
    ranges = await ahours_to_rebuild(ts, hours=sorted({hour for _, hour in taken}),
                                     shard=shard.shard, shards=shard.shards)
    rows = drained = 0
    windows = _chunks(min(r.lo for r in ranges), max(r.hi for r in ranges)) if ranges else []
    for lo, hi in windows:
        async with ts.transaction():
            parts = [(max(r.lo, lo), min(r.hi, hi), r) for r in ranges if r.lo < hi and r.hi > lo]
            for a, b, r in parts:
                result = await build_window(ts, a, b, count=False, meters=list(r.meters))
                rows += result.written
            drained += await finish(ts, [i for i, hour in taken if lo <= hour < hi], shard)
            if parts:
                await arecount(ts, _naive(min(a for a, _, _ in parts)),
                               _naive(max(b for _, b, _ in parts)))
    # Entries whose hours hold no readings of this shard's meters: nothing to build, but built.
    leftover = [i for i, hour in taken if not any(lo <= hour < hi for lo, hi in windows)]
    if leftover:
        async with ts.transaction():
            drained += await finish(ts, leftover, shard)
    hours = sum(int((hi - lo).total_seconds() // 3600) for lo, hi in windows)
    counts = await acatch_up(ts, _naive(now), history=history)
    return {"status": "done", "shard": shard.shard, "shards": shard.shards,
            "queued": len(taken), "hours": hours, "rows": rows,
            "meters": meters, "drained": drained, "waiting": await _waiting(ts, shard),
            "counts": counts}


async def _waiting(ts: Any, shard: Shard) -> int:
    cur = await ts.execute(_WAITING, {"shard": shard.shard, "shards": shard.shards})
    row = await cur.fetchone()
    return int(row[0]) if row else 0
