"""snapshot-meters (hourly): the hourly per-meter snapshot for every closed hour that new
readings touched, joined with the meters' dimension from the transactional plane. A payload
`{"shard": k, "shards": n}` builds only the meters with meter_id % n = k, beside the other
shards (sharded.py); without one, every meter in one run."""

from __future__ import annotations

from typing import Any

import functions_framework.aio

from shared.jobs import run_locked, scheduled

NAME = "snapshot-meters"


@functions_framework.aio.cloud_event
@scheduled(NAME, "5 * * * *")
async def snapshot_meters(payload: dict[str, Any] | None = None) -> dict[str, Any]:
    from shared.db import transactional
    from shared.shards import parse_shard

    from .snapshot import build

    shard = parse_shard(payload)  # before any connection: a bad payload touches nothing
    return await run_locked(NAME, lambda ts: build(ts, transactional(), shard=shard), shard)
