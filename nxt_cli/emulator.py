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
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from nxt_cli.harness import PortTaken, ServerError, ServerProcess, nxt_serve, stack_env
from nxt_cli.scheduler import Emit, Scheduler, print_line, read_schedules
from shared.jobs import Schedule

# The lifetime of the printed keys. Supabase's local keys last ten years too: a developer pastes
# them into a .env once and should not have to come back for new ones.
DEV_KEY_SECONDS = 10 * 365 * 24 * 3600

# How long the functions server has to shut down gracefully (SIGTERM: it closes its pools)
# before it is killed.
STOP_SECONDS = 15

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

def functions_server(port: int, env: Mapping[str, str]) -> ServerProcess:
    """`nxt serve` through the stack harness, as a child process on a fixed port, restartable.
    A child of its own, so a crash or a broken edit never takes the database or `nxt dev`
    down. Its own session: a terminal's Ctrl-C reaches `nxt dev` only, which stops the children
    itself, jobs first, then this, then the database. No log file: its errors go to the
    developer's console, and its working directory is `nxt dev`'s (the project it serves)."""
    return nxt_serve(env, port=port, cwd=None, quiet=True, new_session=True)


def _start(server: ServerProcess) -> str | None:
    """Start the functions; None once they answer, else why not: the port taken by another
    program, or "" when the child exited first (its error is on the console already)."""
    try:
        server.start()
    except PortTaken as exc:
        return str(exc)
    except ServerError:
        return ""
    return None


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


# Not uvicorn's own reloader (`reload=True`, `reload_dirs`): without watchfiles, which is not a
# dependency, it polls *.py files only (`reload_includes` is ignored, so an edited config.toml,
# .json or .sql file would not reload), it misses removed files, and it restarts inside the
# child, so `nxt dev` would still need a watcher of its own to re-read the job schedules after
# a change and to say in one line what changed and whether the functions came back. It would
# not spare the database a restart either: that lives in `nxt dev`, which a reload never
# touches, here as there.
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

    # The developer's environment as it is (isolate=False): their settings are the point.
    env = stack_env(database_url, timeseries_url, checkout=False, config=False, isolate=False)
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
    server = functions_server(port, env)
    scheduler: Scheduler | None = None
    # Before anything starts, so an edit made while the stack comes up is not missed.
    watcher = SourceWatcher(watched_paths(root))
    try:
        if (why := _start(server)) is not None:
            raise SystemExit(why or f"the functions server did not start on port {port}")
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
        server.stop(STOP_SECONDS)


def _reload(root: Path, server: ServerProcess, scheduler: Scheduler, env: Mapping[str, str],
            changed: list[Path], bases: list[Path], emit: Emit) -> bool:
    """Restart the functions with the code as it is now; one line says what happened. False
    when the server did not come back."""
    started = time.monotonic()
    what = _describe(changed, bases)
    server.stop(STOP_SECONDS)
    if (why := _start(server)) is not None:
        emit(f"reload failed: {what} changed and the functions server did not start"
             f" ({why or 'its error is above'}); it restarts on the next change")
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
