"""snapshot-meters (hourly): the hourly per-meter snapshot for every closed hour that new
readings touched, joined with the meters' dimension from the transactional plane."""

from __future__ import annotations

from typing import Any

import functions_framework.aio

from shared.jobs import run_locked, scheduled

NAME = "snapshot-meters"


@functions_framework.aio.cloud_event
@scheduled(NAME, "5 * * * *")
async def snapshot_meters() -> dict[str, Any]:
    from shared.db import transactional

    from .snapshot import build

    return await run_locked(NAME, lambda ts: build(ts, transactional()))
