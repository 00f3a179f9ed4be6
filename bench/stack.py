"""What the benchmark starts and stops itself, through the stack harness the tests use
(nxt_cli/harness.py): an embedded PostgreSQL on a free loopback port, scratch databases, and
server subprocesses, plus what only the benchmark runs (the floor server)."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from nxt_cli import harness
from nxt_cli.harness import ROOT, ServerProcess, free_port, server_url, stack_env, stop_process
from nxt_cli.harness import ScratchDatabases as Scratch

__all__ = ["JWT_SECRET", "ROOT", "Scratch", "floor_serve", "free_port", "nxt_serve", "postgres",
           "server", "stack_env", "stop_process"]

# Signs the run's tokens; new on every run, known only to the run and the servers it starts.
JWT_SECRET = secrets.token_urlsafe(32)


def postgres(workdir: Path, url: str | None = None) -> AbstractContextManager[str]:
    """Admin URL of an embedded PostgreSQL started for this run (removed afterwards), or of
    `url` (`--url`: a PostgreSQL on this machine) as it is."""
    return server_url(workdir / "pgdata", url)


def server(cmd: list[str], port: int, *, env: dict[str, str], log: Path,
           cwd: Path = ROOT) -> ServerProcess:
    """A server command with its output appended to `log` (one log may hold several runs)."""
    return ServerProcess(cmd, port, env, cwd=cwd, log=log, append=True)


@contextmanager
def nxt_serve(env: dict[str, str], log: Path) -> Iterator[int]:
    """`nxt serve` (every function behind the local gateway, uvicorn, one process): its port,
    once it answers."""
    with harness.nxt_serve(env, log=log, append=True, quiet=True) as served:
        yield served.port


@contextmanager
def floor_serve(env: dict[str, str], log: Path) -> Iterator[int]:
    """The floor functions of bench/floor/ served the same way as `nxt serve`."""
    port = free_port()
    with server([sys.executable, "-m", "bench.floor_server", "--port", str(port)], port,
                env=env, log=log) as served:
        yield served.port
