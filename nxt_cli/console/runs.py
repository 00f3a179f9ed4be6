"""The jobs' runs, in a JSON-lines file both `nxt dev`'s scheduler and the console's "run now"
append to (NXT_JOB_RUNS_LOG; in memory when unset)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

ENV = "NXT_JOB_RUNS_LOG"
_lock = threading.Lock()
_memory: list[dict[str, Any]] = []


def _path() -> Path | None:
    value = os.environ.get(ENV, "").strip()
    return Path(value) if value else None


def record(run: dict[str, Any]) -> None:
    """`run`: job, started (ISO 8601), seconds, status, and the job's own result if any."""
    path = _path()
    with _lock:
        if path is None:
            _memory.append(run)
            del _memory[:-500]
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(json.dumps(run, default=str) + "\n")


def recent(job: str, n: int = 5) -> list[dict[str, Any]]:
    path = _path()
    with _lock:
        if path is None:
            runs = list(_memory)
        elif path.exists():
            runs = [json.loads(line) for line in path.read_text().splitlines()[-2000:]
                    if line.strip()]
        else:
            runs = []
    return [r for r in runs if r.get("job") == job][-n:][::-1]
