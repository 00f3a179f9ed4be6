"""What the benchmark starts and stops itself, the way tests/conftest.py does: an embedded
PostgreSQL on a free loopback port, scratch databases, and server subprocesses."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from nxt_cli.localdb import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
# Signs the run's tokens; new on every run, known only to the run and the servers it starts.
JWT_SECRET = secrets.token_urlsafe(32)


@contextmanager
def postgres(workdir: Path) -> Iterator[str]:
    """Admin URL of an embedded PostgreSQL started for this run (removed afterwards)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nxt_cli.localdb import LocalDatabase, free_port

        db = LocalDatabase(workdir / "pgdata", free_port()).start()
    try:
        yield db.url
    finally:
        db.destroy()


class Scratch:
    """Uniquely named databases on the server, dropped at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.names: list[str] = []

    def create(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        self.names.append(name)
        return urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{name}"))

    def drop(self, url: str) -> None:
        """Drop one of them now (a large one, to free its disk before the next step)."""
        name = urlsplit(url).path.lstrip("/")
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
        self.names.remove(name)

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in self.names:
                conn.execute(f'drop database if exists "{name}" with (force)')
        self.names.clear()


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without what would change how a function configures itself."""
    drop = ("K_SERVICE", "JWT_SECRET", "PYTHONPATH", "NXT_SUPABASE_CONFIG", "DATABASE_URL",
            "TIMESERIES_DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered on port {port}")


@contextmanager
def process(cmd: list[str], *, env: dict[str, str], log: Path,
            cwd: Path = ROOT) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess with its output in `log`, terminated (then killed) at the end."""
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out,  # noqa: S603
                                stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc)


@contextmanager
def nxt_serve(env: dict[str, str], log: Path) -> Iterator[int]:
    """`nxt serve` (every function behind the local gateway, uvicorn, one process)."""
    port = free_port()
    cmd = [sys.executable, "-m", "nxt_cli.main", "serve", "--quiet", "--port", str(port)]
    with process(cmd, env=env, log=log) as proc:
        wait_for_port(port, proc)
        yield port


@contextmanager
def floor_serve(env: dict[str, str], log: Path) -> Iterator[int]:
    """The floor functions of bench/floor/ served the same way as `nxt serve`."""
    port = free_port()
    cmd = [sys.executable, "-m", "bench.floor_server", "--port", str(port)]
    with process(cmd, env=env, log=log) as proc:
        wait_for_port(port, proc)
        yield port
