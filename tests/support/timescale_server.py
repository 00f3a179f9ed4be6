"""A throwaway TimescaleDB server for tests: tests/timescale/server.mjs under Node.

PGlite (PostgreSQL 17 compiled to WebAssembly, TimescaleDB 2.23 inside) served on a loopback
port by pglite-socket. It serves one connection at a time (others wait until it closes) and
runs no background workers; tests/timescale/README.md lists what works.

    with start_timescale(tmp_path) as ts:
        psycopg.connect(ts.url, autocommit=True)

Needs `npm ci --prefix tests/timescale` first; timescale_available() says why it can't run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

SERVER_DIR = Path(__file__).resolve().parents[1] / "timescale"
SERVER_SCRIPT = SERVER_DIR / "server.mjs"
NPM_HINT = "npm ci --prefix tests/timescale"
_READY = re.compile(r"^ready (\S+):(\d+)$")


def timescale_available() -> str | None:
    """None when the server can start here, else the reason it can't (for skip messages)."""
    if shutil.which("node") is None:
        return "node is not installed (the TimescaleDB test server runs under Node 20+)"
    if not (SERVER_DIR / "node_modules" / "@unni-craftsman" / "pglite").is_dir():
        return f"tests/timescale/node_modules is missing: `{NPM_HINT}` was not run"
    return None


def require_timescale() -> None:
    """Skip a TimescaleDB test where Node or its packages are missing (a laptop without npm:
    the native engine's tests still run); under CI, where `make install` runs npm, that is a
    broken install, so the test fails instead of skipping."""
    import os

    import pytest

    reason = timescale_available()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the TimescaleDB tests")
    pytest.skip(reason)


class TimescaleServer:
    """A running server; `url` is a libpq URL for psycopg, psql or SQLAlchemy."""

    def __init__(
        self,
        proc: subprocess.Popen[str],
        reader: threading.Thread,
        host: str,
        port: int,
        log: Path,
    ) -> None:
        self.proc = proc
        self.reader = reader
        self.host = host
        self.port = port
        self.log = log
        # any password is accepted, but libpq insists on sending one
        self.url = f"postgresql://postgres:postgres@{host}:{port}/postgres?sslmode=disable"

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout)  # sees EOF now that the server is gone

    def __enter__(self) -> TimescaleServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_timescale(
    tmpdir: str | os.PathLike[str],
    port: int = 0,
    timeout: float = 60.0,
    datadir: str | os.PathLike[str] | None = None,
) -> TimescaleServer:
    """Start a server and wait for it to accept connections.

    port 0 lets the server bind a free port itself (no race with other processes); the port
    it got is read from its `ready 127.0.0.1:<port>` line. Its stderr goes to
    `<tmpdir>/timescale-server.log`. The database is in memory unless `datadir` is given:
    in memory, every byte of it stays in the Node process (about 0.4 GB per million
    readings), so larger data sets (bench/growth.py) keep it in a directory instead.
    """
    reason = timescale_available()
    if reason is not None:
        raise RuntimeError(f"cannot start the TimescaleDB test server: {reason}")
    log = Path(tmpdir) / "timescale-server.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            ["node", str(SERVER_SCRIPT), str(port), *([str(datadir)] if datadir else [])],
            cwd=SERVER_DIR,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    found: list[tuple[str, int]] = []

    def read_ready() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # ends at EOF, when the server exits
            if match := _READY.match(line.strip()):
                found.append((match[1], int(match[2])))
                break
        for _ in proc.stdout:  # keep draining so the server never blocks on a full pipe
            pass

    reader = threading.Thread(target=read_ready, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not found and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if not found:
        code = proc.poll()
        why = f"exited with code {code}" if code is not None else f"not ready in {timeout}s"
        TimescaleServer(proc, reader, "127.0.0.1", port, log).stop()
        raise RuntimeError(f"TimescaleDB test server {why}; see {log}:\n{log.read_text()[-2000:]}")
    host, bound = found[0]
    return TimescaleServer(proc, reader, host, bound, log)
