"""What `nxt dev` runs once the database is up: the functions (`nxt serve` as a child process,
restarted when their code changes), the scheduled jobs on their schedules, and the keys a
Supabase client needs, printed once.

Everything here answers the way the Supabase stack does, so a client written against
`supabase start` works against `nxt dev` unchanged: the API URL is the [api] port of
config.toml, the anon and service-role keys are JWTs signed with the secret the served
functions verify with, and a disabled function is simply not there (404), as with
`supabase functions serve`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from nxt_cli.scheduler import Emit, Scheduler, print_line, read_schedules
from shared.jobs import Schedule

# The lifetime of the printed keys. Supabase's local keys last ten years too: a developer pastes
# them into a .env once and should not have to come back for new ones.
DEV_KEY_SECONDS = 10 * 365 * 24 * 3600

# What the watcher looks at: source and the config the functions read at cold start.
WATCHED_SUFFIXES = frozenset({".py", ".toml", ".json", ".sql"})


# -- keys ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DevKeys:
    anon: str
    service_role: str


def jwt_secret(env: MutableMapping[str, str] | None = None) -> str:
    """The secret the served functions verify with: the configured one, else the local stack's
    (put into `env`, the functions' environment)."""
    from nxt_cli.localkeys import local_jwt_secret

    return local_jwt_secret(env)


def dev_keys(secret: str) -> DevKeys:
    """Anon and service-role keys shaped as `supabase start` prints them (no `aud`,
    `iss: supabase-demo`), signed with `secret`."""
    from nxt_cli.tokens import mint_token

    return DevKeys(
        anon=mint_token(secret, role="anon", audience=None, expires_in=DEV_KEY_SECONDS),
        service_role=mint_token(secret, role="service_role", audience=None,
                                expires_in=DEV_KEY_SECONDS),
    )


# -- the functions server -----------------------------------------------------------------------

class FunctionsServer:
    """`nxt serve` as a child process on a fixed port, restartable. A child of its own, so a
    crash or a broken edit never takes the database or `nxt dev` down."""

    def __init__(self, port: int, env: Mapping[str, str], *,
                 cwd: str | os.PathLike[str] | None = None, start_timeout: float = 60) -> None:
        self.port = port
        self._env = dict(env)
        self._cwd = cwd
        self._start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.error: str | None = None  # why the last start() failed, when we know better

    def start(self, *, quiet: bool = False) -> bool:
        """Start it and wait until it answers on its port; False when it exited first (its
        error is on the console: the child shares our stdout and stderr)."""
        self.error = None
        if _answers(self.port):
            # Checked first: otherwise the other program's answer would pass for ours.
            self.error = f"port {self.port} on 127.0.0.1 is taken by another program"
            return False
        command = [sys.executable, "-m", "nxt_cli.main", "serve", "--port", str(self.port)]
        if quiet:
            command.append("--quiet")
        # Its own session: a terminal's Ctrl-C reaches `nxt dev` only, which stops the children
        # itself, jobs first, then this, then the database.
        self.proc = subprocess.Popen(command, env=self._env, cwd=self._cwd,  # noqa: S603
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if _answers(self.port):
                return True
            time.sleep(0.1)
        self.stop()
        return False

    def exited(self) -> int | None:
        """The exit code when the child is gone, else None."""
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout: float = 15) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # uvicorn shuts down gracefully on SIGTERM, closing the pools
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


# -- watching the code --------------------------------------------------------------------------

def watched_paths(root: Path) -> list[Path]:
    """functions/, the shared/ and timeseries/ packages actually imported (a checkout may reach
    them through PYTHONPATH rather than beside functions/), and config.toml."""
    import shared
    import timeseries
    from nxt_cli.stack import config_path

    paths = [root / "functions", Path(shared.__file__).parent,
             Path(timeseries.__file__).parent, config_path(root)]
    return [p for p in paths if p.exists()]


class SourceWatcher:
    """Polls modification times (watchfiles is not a dependency; a few hundred files once a
    second cost nothing). `changes()` returns what changed since the last call."""

    def __init__(self, paths: Iterable[Path], *, interval: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        # Resolved once: functions/ may be a symlink, and a walk does not follow one.
        self.paths = [p.resolve() for p in paths]
        self._interval = interval
        self._monotonic = monotonic
        self._due = monotonic() + interval
        self._seen = self._scan()

    def _scan(self) -> dict[Path, tuple[int, int]]:
        seen: dict[Path, tuple[int, int]] = {}
        for path in self._files():
            try:
                st = path.stat()
            except OSError:
                continue  # removed between the walk and the stat: the next scan says so
            seen[path] = (st.st_mtime_ns, st.st_size)
        return seen

    def _files(self) -> Iterator[Path]:
        for base in self.paths:
            if base.is_file():
                yield base
                continue
            for directory, dirs, names in os.walk(base):
                # Pruned in place, so the walk skips them: caches and hidden directories are
                # never source.
                dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
                for name in names:
                    if Path(name).suffix in WATCHED_SUFFIXES:
                        yield Path(directory) / name

    def changes(self) -> list[Path]:
        now = self._monotonic()
        if now < self._due:
            return []
        self._due = now + self._interval
        seen = self._scan()
        changed = sorted(p for p in seen.keys() | self._seen.keys()
                         if seen.get(p) != self._seen.get(p))
        self._seen = seen
        return changed


def _describe(changed: list[Path], bases: list[Path]) -> str:
    def short(path: Path) -> str:
        for base in bases:
            if path.is_relative_to(base.parent):
                return str(path.relative_to(base.parent))
        return str(path)

    names = [short(p) for p in changed[:3]]
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    return ", ".join(names) + more


# -- the loop -----------------------------------------------------------------------------------

def child_env(root: Path, database_url: str, timeseries_url: str | None) -> dict[str, str]:
    """The environment of the functions and the jobs: both planes, and the config they read."""
    from nxt_cli.stack import config_path

    env = {**os.environ, "DATABASE_URL": database_url}
    if timeseries_url:
        env["TIMESERIES_DATABASE_URL"] = timeseries_url
    # Pinned, so the functions, the jobs and the keys printed here all read the same file.
    env.setdefault("NXT_SUPABASE_CONFIG", str(config_path(root)))
    # One record of the jobs' runs for the scheduler here and the console's "run now" there.
    env.setdefault("NXT_JOB_RUNS_LOG", str(root / ".nxt" / "job-runs.jsonl"))
    os.environ.setdefault("NXT_JOB_RUNS_LOG", env["NXT_JOB_RUNS_LOG"])
    jwt_secret(env)  # and verify with the secret the printed keys are signed with
    return env


def served_functions(root: Path) -> tuple[list[str], list[str]]:
    """(served, disabled) as `nxt serve` decides, read without importing any function."""
    from nxt_cli.config_lint import load_config
    from nxt_cli.functions import function_sources
    from nxt_cli.stack import config_path

    config = load_config(config_path(root))
    configured = set(config.function_names())
    names = [n for n in function_sources(root, config) if n in configured]
    return ([n for n in names if config.function(n).enabled],
            [n for n in names if not config.function(n).enabled])


def run_dev(root: Path, *, database_url: str, timeseries_url: str | None, port: int,
            stop: threading.Event, run_jobs_now: bool = False, emit: Emit = print_line) -> None:
    """Serve, schedule and watch until `stop` is set; leaves no child process behind."""
    env = child_env(root, database_url, timeseries_url)
    server = FunctionsServer(port, env)
    scheduler: Scheduler | None = None
    # Before anything starts, so an edit made while the stack comes up is not missed.
    watcher = SourceWatcher(watched_paths(root))
    try:
        if not server.start(quiet=True):
            raise SystemExit(server.error or f"the functions server did not start on port {port}")
        _banner(root, port, env, emit)
        scheduler = Scheduler(_schedules(root, env, emit) or {}, env=env, emit=emit,
                              run_now=run_jobs_now)
        for name, when in sorted(scheduler.next_runs().items()):
            s = scheduler.schedules[name]
            first = "now" if run_jobs_now else when.strftime("%Y-%m-%d %H:%M UTC")
            emit(f"scheduled {name}: `{s.cron}` {s.timezone}, first run {first}")
        emit("ready. Ctrl-C stops the stack.")
        reported_exit = False
        while not stop.wait(0.5):
            scheduler.tick()
            changed = watcher.changes()
            if changed:
                # A failed reload has said so itself: no second line about the exit.
                reported_exit = not _reload(root, server, scheduler, env, changed,
                                            watcher.paths, emit)
            elif (code := server.exited()) is not None and not reported_exit:
                emit(f"the functions server exited (code {code}); it restarts on the next"
                     " change to the code")
                reported_exit = True
        emit("stopping...")
    finally:
        if scheduler is not None:
            scheduler.stop()
        server.stop()


def _reload(root: Path, server: FunctionsServer, scheduler: Scheduler, env: Mapping[str, str],
            changed: list[Path], bases: list[Path], emit: Emit) -> bool:
    """Restart the functions with the code as it is now; one line says what happened. False
    when the server did not come back."""
    started = time.monotonic()
    what = _describe(changed, bases)
    server.stop()
    if not server.start(quiet=True):
        why = server.error or "its error is above"
        emit(f"reload failed: {what} changed and the functions server did not start ({why});"
             " it restarts on the next change")
        return False
    note = ""
    try:
        schedules = read_schedules(root, env)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        note = f"; kept the previous job schedules ({exc})"
    else:
        if schedules != scheduler.schedules:
            scheduler.update(schedules)
            note = "; job schedules updated"
    emit(f"reloaded functions in {time.monotonic() - started:.1f}s ({what} changed){note}")
    return True


def _schedules(root: Path, env: Mapping[str, str], emit: Emit) -> dict[str, Schedule] | None:
    try:
        return read_schedules(root, env)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        emit(f"jobs: not scheduled, their schedules could not be read ({exc})")
        return None


def _banner(root: Path, port: int, env: Mapping[str, str], emit: Emit) -> None:
    """What `supabase status` prints, for this stack."""
    served, disabled = served_functions(root)
    emit(f"API URL: http://127.0.0.1:{port}")
    emit(f"functions: http://127.0.0.1:{port}/functions/v1/<name> ({', '.join(served)})")
    if disabled:
        # As `supabase functions serve` says it: these answer 404 like an unknown name.
        emit(f"skipped serving (enabled = false): {', '.join(disabled)}")
    keys = dev_keys(jwt_secret(dict(env)))
    emit(f"anon key: {keys.anon}")
    emit(f"service_role key: {keys.service_role}")
    # The local service-role key only (as printed above): the page keeps it in a cookie.
    emit(f"console: http://127.0.0.1:{port}/?token={keys.service_role}")
