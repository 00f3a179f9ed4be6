"""PgBouncer in transaction mode in front of a PostgreSQL server, started by the tests, as
Supabase's pooler runs in production (a server connection belongs to a client for one
transaction only, so nothing set outside a transaction may be relied on).

`NXT_TEST_POOLER=pgbouncer` makes the `api` fixture's `nxt serve` reach both planes through one
(see `served` in conftest.py); `.ci/run` runs the function test modules that way. PgBouncer comes
from Debian's package (`apt-get install -y pgbouncer`); without it the pooled tests skip, except
under CI (`CI` set), where they fail.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from nxt_cli.harness import free_port, wait_for_port

POOLER_ENV = "NXT_TEST_POOLER"
SUPPORTED = ("pgbouncer",)


def wanted() -> str | None:
    """The pooler NXT_TEST_POOLER asks for, or None; an unknown value is an error, not a skip."""
    value = (os.environ.get(POOLER_ENV) or "").strip().lower()
    if not value:
        return None
    if value not in SUPPORTED:
        raise pytest.UsageError(f"{POOLER_ENV}={value!r}: supported values are {SUPPORTED}")
    return value


def pgbouncer_binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    # Debian installs it in /usr/sbin, which is not on an ordinary user's PATH.
    return next((p for p in ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer")
                 if os.access(p, os.X_OK)), None)


def require_pgbouncer() -> str:
    binary = pgbouncer_binary()
    if binary is None:
        reason = ("PgBouncer is not installed (Debian: `apt-get install -y pgbouncer`, which"
                  " .ci/run does as root)")
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the pooler tests")
        pytest.skip(reason)
    return binary


@dataclass
class PgBouncer:
    """One PgBouncer process; every database name is passed through to the same server."""

    binary: str
    server_host: str
    server_port: int
    user: str
    pool_size: int = 20
    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nxt-pgbouncer-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "pgbouncer.log"

    def url_for(self, server_url: str) -> str:
        """`server_url` with its host and port replaced by the pooler's (user and database
        kept)."""
        parts = urlsplit(server_url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def admin_url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/pgbouncer"

    def _write_config(self) -> Path:
        users = self.workdir / "userlist.txt"
        users.write_text(f'"{self.user}" ""\n')
        ini = self.workdir / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={self.server_host} port={self.server_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "pool_mode = transaction\n"
            "auth_type = trust\n"
            f"auth_file = {users}\n"
            f"admin_users = {self.user}\n"
            f"stats_users = {self.user}\n"
            "max_client_conn = 1000\n"
            f"default_pool_size = {self.pool_size}\n"
            "server_check_delay = 0\n"
            "ignore_startup_parameters = extra_float_digits\n"
            "log_connections = 0\nlog_disconnections = 0\n"
        )
        return ini

    def start(self, timeout: float = 15.0) -> PgBouncer:
        ini = self._write_config()
        # PgBouncer refuses to run as root: as root, run it as an unprivileged account that
        # can read its (world-readable, secret-free) configuration.
        as_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self.workdir.chmod(0o755)
            as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([self.binary, str(ini)], stdout=log,
                                         stderr=subprocess.STDOUT, **as_user)
        try:
            wait_for_port(self.port, self.proc, timeout)
        except RuntimeError:
            raise RuntimeError(f"pgbouncer exited at start:\n{self.log()}") from None
        except TimeoutError:
            self.stop()
            raise TimeoutError(f"pgbouncer did not listen on {self.port}:\n{self.log()}") from None
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def show(self, what: str) -> list[dict[str, Any]]:
        """`SHOW <what>` on the admin console, as dicts."""
        import psycopg
        from psycopg.rows import dict_row

        if not what.replace("_", "").isalpha():
            raise ValueError(what)
        with psycopg.connect(self.admin_url, autocommit=True, prepare_threshold=None,
                             row_factory=dict_row) as conn:
            return conn.execute(f"show {what}").fetchall()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextmanager
def pgbouncer_for(server_url: str, *, pool_size: int = 20) -> Iterator[PgBouncer]:
    """A PgBouncer in transaction mode in front of the server of `server_url`."""
    parts = urlsplit(server_url)
    bouncer = PgBouncer(require_pgbouncer(), parts.hostname or "127.0.0.1", parts.port or 5432,
                        parts.username or "postgres", pool_size=pool_size)
    try:
        yield bouncer.start()
    finally:
        bouncer.stop()
