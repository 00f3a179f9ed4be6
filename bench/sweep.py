"""The server settings, measured: server mode, pool size and worker count for the HTTP
functions, each served by the deployed server (`functions-framework`), under the page load of
bench/run.py (customers page of 100 rows, 16 concurrent clients) and at 64 concurrent.

    python -m bench.sweep --size smoke|full      (make bench-sweep [SIZE=smoke])

Prints a table and writes bench/sweep.json. What was chosen from it, and why, is in
bench/README.md ("Server mode, workers and pool").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.load import closed_loop, encode_request, percentile
from bench.run import SIZES, Bench, log_tail, prepare
from bench.stack import JWT_SECRET, ROOT, Scratch, free_port, postgres, server, stack_env

OUT = ROOT / "bench" / "sweep.json"


@dataclass(frozen=True)
class Setting:
    name: str
    target: str  # what is served: "bare-asgi", "bare-threads", "floor-asgi", "floor-threads"
    # or "customers"
    pool: int
    workers: int = 1
    threads: int = 0  # gunicorn threads (threads mode); 0: the framework's default


@dataclass
class Result:
    setting: str
    served: str
    pool: int
    workers: int
    concurrency: int
    req_s: float
    p50_ms: float
    p99_ms: float
    errors: int


SETTINGS = [
    # Mode, the framework alone: a constant answer, ASGI against gunicorn threads.
    Setting("mode: constant, ASGI", "bare-asgi", pool=4),
    Setting("mode: constant, threads (8)", "bare-threads", pool=4),
    # Mode: the same SQL with a bare pool, ASGI (async psycopg) against gunicorn threads.
    Setting("mode: ASGI, async pool", "floor-asgi", pool=4),
    Setting("mode: threads (8), sync pool", "floor-threads", pool=4),
    Setting("mode: threads (32), sync pool", "floor-threads", pool=4, threads=32),
    # Pool size and workers: the customers function itself, from its bundle.
    *(Setting(f"customers, pool {n}", "customers", pool=n) for n in (1, 2, 4, 8, 16)),
    Setting("customers, 2 workers x pool 2", "customers", pool=2, workers=2),
    Setting("customers, 2 workers x pool 4", "customers", pool=4, workers=2),
]


def command(b: Bench, s: Setting, dist: Path) -> tuple[list[str], dict[str, str], Path, int]:
    import jwt

    framework = str(Path(sys.executable).parent / "functions-framework")
    claims = jwt.decode(b.tokens["operator"], options={"verify_signature": False})
    env = stack_env(b.tx, jwt_secret=JWT_SECRET, config=False,
                    DB_POOL_MAX_SIZE=str(s.pool), WORKERS=str(s.workers),
                    FLOOR_CLAIMS=json.dumps(claims), K_SERVICE="customers")
    if s.threads:
        env["THREADS"] = str(s.threads)
    source, target, cwd = {
        "floor-asgi": (ROOT / "bench" / "floor" / "main.py", "floor", ROOT),
        "floor-threads": (ROOT / "bench" / "floor_sync" / "main.py", "floor_sync", ROOT),
        "bare-asgi": (ROOT / "bench" / "bare" / "main.py", "bare", ROOT),
        "bare-threads": (ROOT / "bench" / "floor_sync" / "main.py", "bare_sync", ROOT),
        "customers": (dist / "customers" / "main.py", "customers", dist / "customers"),
    }[s.target]
    port = free_port()
    return ([framework, "--target", target, "--source", str(source), "--host", "127.0.0.1",
             "--port", str(port)], env, cwd, port)


def measure(b: Bench, s: Setting, dist: Path, seconds: float) -> list[Result]:
    log = b.work / f"sweep-{s.target}.log"
    cmd, env, cwd, port = command(b, s, dist)
    with server(cmd, port, env=env, log=log, cwd=cwd):
        headers = {"Authorization": f"Bearer {b.tokens['operator']}"}
        raw = encode_request("GET", "/?page=1&size=100", headers)
        first = asyncio.run(closed_loop(port, raw, concurrency=1, seconds=0.3))
        if first.errors:
            raise RuntimeError(f"{s.name}: {first.first_error}\n{log_tail(log)}")
        asyncio.run(closed_loop(port, raw, concurrency=16, seconds=1))  # pools fill
        out = []
        for concurrency in (16, 64):
            run = asyncio.run(closed_loop(port, raw, concurrency=concurrency, seconds=seconds))
            out.append(Result(s.name, s.target, s.pool, s.workers, concurrency,
                              round(len(run.latencies) / run.seconds),
                              round(percentile(run.latencies, 50) * 1000, 1),
                              round(percentile(run.latencies, 99) * 1000, 1), run.errors))
        return out


def print_table(results: list[Result]) -> None:
    header = ("setting", "clients", "req/s", "p50 ms", "p99 ms", "errors")
    cells = [header] + [(r.setting, str(r.concurrency), f"{r.req_s:,.0f}", f"{r.p50_ms:g}",
                         f"{r.p99_ms:g}", str(r.errors)) for r in results]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    for i, line in enumerate(cells):
        print(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print("-|-".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    seconds = 2.0 if args.size == "smoke" else 8.0
    started = time.perf_counter()
    results: list[Result] = []
    with TemporaryDirectory(prefix="nxt-sweep-") as tmp:
        work = Path(tmp)
        with postgres(work) as admin:
            scratch = Scratch(admin)
            try:
                b = prepare(size, scratch, work)
                done = subprocess.run([sys.executable, "-m", "nxt_cli.main", "bundle",  # noqa: S603
                                       "customers", "--out", str(work / "dist")], cwd=ROOT,
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    raise RuntimeError(f"nxt bundle customers failed: {done.stderr}")
                for s in SETTINGS:
                    print(f"... {s.name}", flush=True)
                    results += measure(b, s, work / "dist", seconds)
            finally:
                scratch.drop_all()
    print()
    print_table(results)
    args.out.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    print(f"\n{args.size}: {time.perf_counter() - started:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
