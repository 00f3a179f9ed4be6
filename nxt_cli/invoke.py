"""`nxt invoke <job> [--payload JSON]`: run a scheduled job once, now, through the same target
its scheduler triggers, and return its result. The payload is what a Cloud Scheduler job would
publish (snapshot-meters: `{"shard": 0, "shards": 2}` runs one shard by hand)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from nxt_cli.functions import discover, import_main


def jobs(root: Path) -> dict[str, Any]:
    """name -> the job's target, for every function that declares a schedule."""
    from shared.auth.declared import target_name

    found = {}
    for name in discover(root):
        module = import_main(root / "functions" / name / "main.py", name)
        target = getattr(module, target_name(name), None)
        if getattr(target, "__nxt_schedule__", None) is not None:
            found[name] = target
    return found


def invoke(root: Path, name: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Raises LookupError for an unknown job, or a payload given to a job that reads none;
    shared.shards.InvalidPayload for a payload the job refuses."""
    from shared.auth.declared import target_name

    source = root / "functions" / name / "main.py"
    if not source.exists():
        raise LookupError(f"no function {name!r} (functions/{name}/main.py)")
    target = getattr(import_main(source, name), target_name(name), None)
    if getattr(target, "run", None) is None:
        raise LookupError(f"{name} is not a scheduled job; call it over HTTP instead")
    if payload and not getattr(target, "takes_payload", False):
        raise LookupError(f"{name} reads no payload (its trigger's payload is ignored)")
    return asyncio.run(_run(target.run, payload))


async def _run(run: Any, payload: dict[str, Any] | None) -> dict[str, Any]:
    from shared.db import close_all

    try:
        return await (run(payload) if payload else run())
    finally:
        await close_all()
