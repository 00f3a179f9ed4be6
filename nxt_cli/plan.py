"""`nxt db plan`: the SQL each pending revision would run, per plane, changing nothing.

The SQL comes from alembic's offline mode, one revision at a time. A time-series revision that
branches on the engine reads it from the target's record (ts.engine_info) or from `--engine`,
so the plan is the one for that target; a revision that must ask the live database what to do
(NOT_PLANNABLE) is listed with its reason instead of a guess.

Exit status: 0 the plan is complete, 1 it is not (a revision that cannot be planned offline, a
legacy database that `nxt db adopt` must take first), 2 a database did not answer.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from alembic import command

from nxt_cli.destructive import Destruction, destructions
from nxt_cli.revisions import LABEL, TIMESERIES, TRANSACTIONAL, Revision, plane_config
from nxt_cli.status import PlaneStatus, plane_status

COMPLETE, INCOMPLETE, UNREACHABLE = 0, 1, 2


@dataclass
class PlannedRevision:
    revision: Revision
    sql: str | None = None
    not_planned: str | None = None  # why there is no SQL
    destructions: list[Destruction] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"revision": self.revision.id, "message": self.revision.message,
                "sql": self.sql, "not_planned": self.not_planned,
                "destructive": self.revision.destructive,
                "destructions": [{"what": d.what, "table": d.table}
                                 for d in self.destructions]}


@dataclass
class PlanePlan:
    status: PlaneStatus
    engine: str | None = None  # the time-series engine the plan is for
    refused: str | None = None
    revisions: list[PlannedRevision] = field(default_factory=list)

    def touched(self) -> list[str]:
        """The tables the pending destructive statements touch: what a backup must hold."""
        return sorted({d.table for r in self.revisions for d in r.destructions})

    @property
    def exit_code(self) -> int:
        if self.status.database is None:
            return COMPLETE
        if not self.status.reachable:
            return UNREACHABLE
        incomplete = self.refused or any(r.sql is None for r in self.revisions)
        return INCOMPLETE if incomplete else COMPLETE

    def as_dict(self) -> dict[str, Any]:
        return {"plane": self.status.plane, "database": self.status.database,
                "current": self.status.current, "head": self.status.head,
                "engine": self.engine, "refused": self.refused,
                "revisions": [r.as_dict() for r in self.revisions]}

    def text(self) -> str:
        s = self.status
        label = f"{LABEL[s.plane]} plane"
        if s.database is None:
            return f"-- {label}: no database (set TIMESERIES_DATABASE_URL)\n"
        if not s.reachable:
            return f"-- {label}: {s.database}: unreachable: {s.error}\n"
        if self.refused:
            return f"-- {label}: {s.database}: {self.refused}\n"
        if not self.revisions:
            return f"-- {label}: {s.database}: up to date at {s.current}\n"
        engine = f", engine {self.engine}" if self.engine else ""
        out = [f"-- {label}: {s.database}: at {s.current or 'no revision'}{engine},"
               f" {len(self.revisions)} pending\n"]
        for planned in self.revisions:
            out.append(f"\n-- {planned.revision.id}: {planned.revision.message}\n")
            if planned.destructions:
                out.append(f"-- DESTRUCTIVE: {planned.revision.destructive or 'undeclared'};"
                           " `nxt db migrate` backs up "
                           + ", ".join(sorted({d.table for d in planned.destructions}))
                           + " first (or --backup-done)\n")
            if planned.sql is None:
                out.append(f"-- not planned: {planned.not_planned}\n")
            else:
                out.append(planned.sql)
        return "".join(out)


def _recorded_engine(url: str) -> str | None:
    from nxt_cli.adopt import connect
    from timeseries.engine import engine_info

    with connect(url) as conn:
        info = engine_info(conn)
    return info.engine if info else None


def offline_sql(plane: str, url: str, start: str | None, revision: str,
                 engine: str | None, script_location: Path | None) -> str:
    cfg = plane_config(plane, script_location)
    cfg.attributes["database_url"] = url  # for the dialect only: offline mode never connects
    if engine is not None:
        cfg.attributes["timeseries_engine"] = engine
    buffer = io.StringIO()
    cfg.output_buffer = buffer
    command.upgrade(cfg, f"{start}:{revision}" if start else revision, sql=True)
    return buffer.getvalue()


def plan_plane(url: str | None, plane: str, *, engine: str | None = None,
               script_location: Path | None = None) -> PlanePlan:
    """`script_location`: a copy of the plane's migrations directory instead of its own."""
    from timeseries.migrations.guards import EngineUnknown

    status = plane_status(url, plane, script_location)
    result = PlanePlan(status)
    if url is None or not status.reachable:
        return result
    if status.state in ("legacy", "in progress"):
        result.refused = ("the legacy schema, not adopted: `nxt db adopt` takes it over (run it"
                          " without --yes for its own plan); nothing else is planned before")
        return result
    if plane == TIMESERIES:
        try:
            result.engine = engine or _recorded_engine(url)
        except psycopg.OperationalError as exc:  # gone between status and now
            status.reachable, status.error = False, str(exc).strip()
            return result
    start = status.current
    for revision in status.pending:
        planned = PlannedRevision(revision)
        if revision.not_plannable:
            planned.not_planned = f"{revision.not_plannable} (`nxt db migrate` runs it)"
        else:
            try:
                planned.sql = offline_sql(plane, url, start, revision.id, result.engine,
                                           script_location)
                planned.destructions = destructions(planned.sql)
            except EngineUnknown as exc:
                planned.not_planned = str(exc)
        result.revisions.append(planned)
        start = revision.id
    return result


def plan(url: str, ts_url: str | None, *, engine: str | None = None) -> list[PlanePlan]:
    return [plan_plane(url, TRANSACTIONAL), plan_plane(ts_url, TIMESERIES, engine=engine)]


def exit_code(plans: list[PlanePlan]) -> int:
    return max((p.exit_code for p in plans), default=COMPLETE)
