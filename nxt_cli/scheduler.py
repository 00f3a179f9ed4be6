"""The local stand-in for Cloud Scheduler inside `nxt dev`: every scheduled job runs on the cron
schedule it declares (`shared.jobs.scheduled`), each run as `nxt invoke <job>` in a subprocess,
so a run sees exactly what a deployed run sees and a crash never takes `nxt dev` down.

At most one run of a job is in flight at a time (a slot that comes while the previous run is
still going is skipped, not queued), and each run ends in exactly one line: job, status,
duration. The clock is injected, so a test drives the schedule without waiting for minutes.

`python -m nxt_cli.scheduler [ROOT]` prints the schedules of ROOT's jobs as JSON: `nxt dev`
reads them in a subprocess, so importing the functions never happens in its own process and a
reload sees the code as it is now, not as it was first imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from shared.jobs import Schedule

Clock = Callable[[], datetime]
Emit = Callable[[str], None]
Command = Callable[[str], Sequence[str]]

_print_lock = threading.Lock()


def print_line(line: str) -> None:
    """One whole line to stdout: runs end on their own threads, and print() writes the text and
    its newline separately, so two threads could interleave them."""
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def utc_now() -> datetime:
    return datetime.now(UTC)


def next_fire(schedule: Schedule, after: datetime) -> datetime:
    """The first time strictly after `after` at which `schedule` fires, in UTC.

    The cron fields are read in the schedule's time zone, as Cloud Scheduler reads them, so
    `0 6 * * *` in Africa/Lagos fires at 05:00 UTC, and a zone with summer time moves with it.
    """
    if after.tzinfo is None:
        raise ValueError("the clock must return an aware datetime")
    local = after.astimezone(ZoneInfo(schedule.timezone))
    return croniter(schedule.cron, local).get_next(datetime).astimezone(UTC)


def invoke_command(job: str) -> list[str]:
    return [sys.executable, "-m", "nxt_cli.main", "invoke", job]


def job_result(stdout: str) -> dict[str, Any] | None:
    """The result `nxt invoke` printed as its last line, if it did."""
    last = next((ln for ln in reversed(stdout.splitlines()) if ln.strip()), "")
    try:
        result = json.loads(last)
    except ValueError:
        return None
    return result if isinstance(result, dict) else None


def outcome(returncode: int, stdout: str, stderr: str) -> str:
    """The status word of a finished run: the job's own `status` (what `nxt invoke` printed as
    its last line), or why it failed."""
    if returncode != 0:
        lines = [ln.strip() for ln in (stderr or stdout).splitlines() if ln.strip()]
        detail = lines[-1][:200] if lines else "no output"
        return f"failed (exit {returncode}): {detail}"
    last = next((ln for ln in reversed(stdout.splitlines()) if ln.strip()), "")
    try:
        result = json.loads(last)
    except ValueError:
        return "done"
    if not isinstance(result, dict):
        return "done"
    status = str(result.get("status", "done"))
    reason = result.get("reason")
    return f"{status} ({reason})" if reason else status


@dataclass
class _Run:
    job: str
    proc: subprocess.Popen[str]
    started: float
    thread: threading.Thread | None = field(default=None, repr=False)
    started_at: datetime | None = None


class Scheduler:
    """Runs `schedules` as their cron expressions say; call `tick()` often (twice a second is
    plenty: cron has minute resolution) and `stop()` once at the end."""

    def __init__(
        self,
        schedules: Mapping[str, Schedule],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        clock: Clock = utc_now,
        emit: Emit = print_line,
        command: Command = invoke_command,
        run_now: bool = False,
    ) -> None:
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._clock = clock
        self._emit = emit
        self._command = command
        self._schedules: dict[str, Schedule] = {}
        self._next: dict[str, datetime] = {}
        self._running: dict[str, _Run] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self.update(schedules, run_now=run_now)

    # -- schedules ------------------------------------------------------------------------------

    def update(self, schedules: Mapping[str, Schedule], *, run_now: bool = False) -> None:
        """Take new schedules (after a reload). A job whose schedule did not change keeps its
        next slot; a run in flight goes on either way."""
        now = self._clock()
        fresh: dict[str, Schedule] = {}
        upcoming: dict[str, datetime] = {}
        for name, schedule in sorted(schedules.items()):
            try:
                first = next_fire(schedule, now)
            except (ValueError, KeyError, ZoneInfoNotFoundError) as exc:
                # One bad declaration must not stop the other jobs; `nxt check` says more.
                self._emit(f"job {name}: not scheduled ({schedule.cron!r} {schedule.timezone}:"
                           f" {exc})")
                continue
            fresh[name] = schedule
            if run_now:
                upcoming[name] = now
            elif self._schedules.get(name) == schedule and name in self._next:
                upcoming[name] = self._next[name]
            else:
                upcoming[name] = first
        self._schedules, self._next = fresh, upcoming

    @property
    def schedules(self) -> dict[str, Schedule]:
        return dict(self._schedules)

    def next_runs(self) -> dict[str, datetime]:
        return dict(self._next)

    def running(self) -> set[str]:
        with self._lock:
            return set(self._running)

    # -- running --------------------------------------------------------------------------------

    def tick(self) -> list[str]:
        """Start every job whose slot has come; returns the jobs started."""
        now = self._clock()
        started = []
        for name in sorted(self._next):
            if self._next[name] > now:
                continue
            # Counted from now, not from the slot: after a laptop sleep a job runs once, not
            # once for every slot it missed.
            self._next[name] = next_fire(self._schedules[name], now)
            with self._lock:
                if self._stopping:
                    return started
                busy = name in self._running
            if busy:
                self._emit(f"job {name}: skipped (the previous run is still going)")
                continue
            self._start(name)
            started.append(name)
        return started

    def _start(self, name: str) -> None:
        try:
            proc = subprocess.Popen(  # noqa: S603 (our own CLI, fixed arguments)
                list(self._command(name)), env=self._env, cwd=self._cwd, text=True,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                # Its own session: a Ctrl-C in the terminal reaches `nxt dev` only, which then
                # stops the runs itself, in order, instead of each dying mid-way on its own.
                start_new_session=True)
        except OSError as exc:
            self._emit(f"job {name}: failed to start ({exc}) in 0.00s")
            return
        run = _Run(name, proc, time.monotonic(), started_at=self._clock())
        run.thread = threading.Thread(target=self._finish, args=(run,), daemon=True,
                                      name=f"nxt-job-{name}")
        with self._lock:
            self._running[name] = run
        run.thread.start()

    def _finish(self, run: _Run) -> None:
        # communicate() drains both pipes while waiting, so a chatty job never blocks on a full
        # pipe; its output is kept out of the console and summed up in one line.
        stdout, stderr = run.proc.communicate()
        seconds = time.monotonic() - run.started
        with self._lock:
            self._running.pop(run.job, None)
            stopping = self._stopping
        status = "interrupted" if stopping and run.proc.returncode != 0 else outcome(
            run.proc.returncode, stdout, stderr)
        self._emit(f"job {run.job}: {status} in {seconds:.2f}s")
        from nxt_cli.console import runs  # what the console's Jobs section lists

        runs.record({"job": run.job, "started": run.started_at, "seconds": round(seconds, 2),
                     "status": status, "result": job_result(stdout), "by": "schedule"})

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no run is in flight (tests); False when `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                threads = [r.thread for r in self._running.values() if r.thread]
            if not threads:
                return True
            threads[0].join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return not self._running

    def stop(self, timeout: float = 10.0) -> None:
        """Start no more runs; ask those in flight to stop (SIGTERM), kill them after `timeout`.
        A killed run frees its advisory lock with its connection."""
        with self._lock:
            self._stopping = True
            runs = list(self._running.values())
        for run in runs:
            if run.proc.poll() is None:
                run.proc.terminate()
        deadline = time.monotonic() + timeout
        for run in runs:
            try:
                run.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                run.proc.kill()
                run.proc.wait()
        for run in runs:
            if run.thread is not None:
                run.thread.join(5)


def read_schedules(root: Path, env: Mapping[str, str] | None = None,
                   timeout: float = 120) -> dict[str, Schedule]:
    """The schedules of `root`'s jobs, read by importing them in a subprocess (see the module
    docstring). Raises RuntimeError when a function cannot be imported."""
    done = subprocess.run(  # noqa: S603 (our own module, fixed arguments)
        [sys.executable, "-m", "nxt_cli.scheduler", str(root)], env=None if env is None
        else dict(env), capture_output=True, text=True, timeout=timeout, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    if done.returncode != 0 or not lines:
        tail = [ln for ln in done.stderr.splitlines() if ln.strip()]
        raise RuntimeError(tail[-1] if tail else f"exit {done.returncode}")
    data = json.loads(lines[-1])
    return {name: Schedule(s["cron"], s["timezone"]) for name, s in data.items()}


def _print_schedules(root: Path) -> None:
    from nxt_cli.invoke import jobs

    found = {name: target.__nxt_schedule__ for name, target in jobs(root).items()}
    # Last line, after anything a function module logs while it is imported.
    print(json.dumps({name: {"cron": s.cron, "timezone": s.timezone}
                      for name, s in sorted(found.items())}), flush=True)


if __name__ == "__main__":
    from nxt_cli.stack import project_root

    _print_schedules(Path(sys.argv[1]) if len(sys.argv) > 1 else project_root())
