"""`nxt db status`: per plane, which database, which engine, adopted or fresh, at which
revision, and what is pending. Reads only.

Exit status: 0 every plane is up to date, 1 something is pending (or a legacy database waits
for `nxt db adopt`), 2 a database did not answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from nxt_cli.revisions import LABEL, TIMESERIES, TRANSACTIONAL, Revision, history, pending
from nxt_cli.stack import display_url, url_problem

UP_TO_DATE, PENDING, UNREACHABLE = 0, 1, 2

# What nxt_cli.adopt.recognise found, as status says it.
_STATES = {"adopted": "adopted from the legacy system", "ours": "fresh (built by nxt)",
           "empty": "empty", "legacy": "legacy, not adopted: run `nxt db adopt`",
           "in progress": "adoption in progress: run `nxt db adopt` again"}


@dataclass
class PlaneStatus:
    plane: str
    database: str | None  # password hidden; None: no database is configured for the plane
    reachable: bool = True
    error: str | None = None
    engine: str | None = None
    state: str | None = None
    current: str | None = None
    head: str | None = None
    pending: list[Revision] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.database is None:
            return UP_TO_DATE
        if not self.reachable:
            return UNREACHABLE
        return PENDING if self.pending or self.state in ("legacy", "in progress") else UP_TO_DATE

    def as_dict(self) -> dict[str, Any]:
        return {"plane": self.plane, "database": self.database, "reachable": self.reachable,
                "error": self.error, "engine": self.engine, "state": self.state,
                "current": self.current, "head": self.head,
                "pending": [{"revision": r.id, "message": r.message} for r in self.pending]}

    def lines(self) -> list[str]:
        head = f"{LABEL[self.plane]} plane"
        if self.database is None:
            return [f"{head}: no database (set TIMESERIES_DATABASE_URL; locally,"
                    " `nxt db migrate` creates one)"]
        if not self.reachable:
            return [f"{head}: {self.database}: unreachable: {self.error}"]
        out = [f"{head}: {self.database}",
               f"  engine:   {self.engine or 'not recorded yet'}",
               f"  state:    {_STATES.get(self.state or '', self.state)}",
               f"  revision: {self.current or 'none'} (head {self.head})"]
        if self.pending:
            out.append(f"  pending:  {len(self.pending)}")
            out += [f"    {r.id}  {r.message}" for r in self.pending]
        else:
            out.append("  pending:  none")
        return out


def _engine(conn: psycopg.Connection[Any], plane: str) -> str | None:
    version = conn.execute("select current_setting('server_version')").fetchone()
    postgres = f"PostgreSQL {version[0] if version else '?'}"
    if plane == TRANSACTIONAL:
        return postgres
    from timeseries.engine import engine_info

    info = engine_info(conn)
    if info is None:
        return None
    if info.engine == "timescaledb":
        features = ", ".join(info.features) or "no optional features"
        return f"TimescaleDB {info.timescaledb_version} on {postgres} ({features})"
    return f"native partitions on {postgres}"


def plane_status(url: str | None, plane: str,
                 script_location: Path | None = None) -> PlaneStatus:
    """`script_location`: a copy of the plane's migrations directory instead of its own."""
    from nxt_cli.adopt import connect, recognise, timeseries_plane, transactional_plane

    revisions = history(plane, script_location)
    status = PlaneStatus(plane, display_url(url) if url else None,
                         head=revisions[-1].id if revisions else None)
    if url is None:
        return status
    problem = url_problem(url)
    if problem:
        status.reachable, status.error = False, problem
        return status
    spec = transactional_plane() if plane == TRANSACTIONAL else timeseries_plane()
    try:
        with connect(url) as conn:
            status.state, status.current = recognise(conn, spec)
            status.engine = _engine(conn, plane)
    except psycopg.OperationalError as exc:
        status.reachable = False
        status.error = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
        return status
    if status.state == "legacy":  # adoption stamps the baseline; the rest is what it applies
        status.pending = pending(plane, spec.baseline, script_location)
    else:
        status.pending = pending(plane, status.current, script_location)
    return status


def status(url: str, ts_url: str | None) -> list[PlaneStatus]:
    return [plane_status(url, TRANSACTIONAL), plane_status(ts_url, TIMESERIES)]


def exit_code(planes: list[PlaneStatus]) -> int:
    return max((p.exit_code for p in planes), default=UP_TO_DATE)
