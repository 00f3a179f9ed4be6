"""Memory of one function instance under sustained use (`make bench`, group `memory`): each
HTTP function served from its bundle by functions-framework, as deployed (gunicorn and one
uvicorn worker), its resident set (the process tree's, from /proc) after 10 requests and after
`memory_requests` more of the same request. A leak (a cache without a bound, a pool that grows,
per-request state kept) shows as growth; the target is none beyond 10 %."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bench.load import closed_loop, senders
from bench.run import Bench, Row, bundle_all, cold_cases, log_tail
from bench.stack import JWT_SECRET, free_port, server, stack_env

CONCURRENCY = 4  # below the instance's --concurrency=16: steady, never queueing


def tree_rss_mb(pid: int) -> float:
    """Resident set of `pid` and its descendants (gunicorn's worker), in MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except FileNotFoundError:
            continue
        total += next(int(line.split()[1]) for line in status.splitlines()
                      if line.startswith("VmRSS:"))
        todo += [int(c) for c in children]
    return total / 1024


def serve_counting(port: int, raw: bytes, requests: int) -> tuple[int, int, str]:
    """Sends `raw` until at least `requests` were answered (exactly, when few):
    (answered, failed, the first failure)."""
    if requests <= 100:
        run = asyncio.run(senders(port, [[raw] * requests]))
        return len(run.latencies), run.errors, run.first_error
    done = failed = 0
    first = ""
    while done < requests:
        run = asyncio.run(closed_loop(port, raw, concurrency=CONCURRENCY, seconds=1))
        done += len(run.latencies)
        failed += run.errors
        first = first or run.first_error
    return done, failed, first


def memory(b: Bench) -> list[Row]:
    stack = bundle_all(b, "dist-memory")
    env = stack_env(b.tx, stack.ts, jwt_secret=JWT_SECRET, checkout=False, config=False)
    framework = str(Path(sys.executable).parent / "functions-framework")
    rows = []
    for case in (c for c in cold_cases(b, stack.reading_at) if not c.job):
        port = free_port()
        log = b.work / f"memory-{case.name}.log"
        cmd = [framework, "--target", case.name.replace("-", "_"), "--source", "main.py",
               "--host", "127.0.0.1", "--port", str(port)]
        with server(cmd, port, env={**env, "K_SERVICE": case.name}, log=log,
                    cwd=stack.dist / case.name) as instance:
            proc = instance.proc
            assert proc is not None
            early = serve_counting(port, case.request, 10)
            after_10 = tree_rss_mb(proc.pid)
            late = serve_counting(port, case.request, b.size.memory_requests)
            after_n = tree_rss_mb(proc.pid)
        failed = early[1] + late[1]
        if failed:
            print(log_tail(log), file=sys.stderr)
        rows.append(Row(
            f"{case.name} instance RSS after {late[0] + early[0]:,} requests of {case.what} (MB)",
            f"the same instance after {early[0]} requests (MB)",
            round(after_n, 1), round(after_10, 1), "<= 1.1",
            f"{CONCURRENCY} concurrent clients; {failed} failed"
            + (f" ({early[2] or late[2]})" if failed else ""), ok=failed == 0))
    return rows
