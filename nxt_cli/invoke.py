"""`nxt invoke <job>`: run a scheduled job once, now, through the same target its scheduler
triggers, and return its result."""

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


def invoke(root: Path, name: str) -> dict[str, Any]:
    from shared.auth.declared import target_name

    source = root / "functions" / name / "main.py"
    if not source.exists():
        raise LookupError(f"no function {name!r} (functions/{name}/main.py)")
    target = getattr(import_main(source, name), target_name(name), None)
    if getattr(target, "run", None) is None:
        raise LookupError(f"{name} is not a scheduled job; call it over HTTP instead")
    return asyncio.run(_run(target.run))


async def _run(run: Any) -> dict[str, Any]:
    from shared.db import close_all

    try:
        return await run()
    finally:
        await close_all()
