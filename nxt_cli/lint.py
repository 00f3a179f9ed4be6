"""`nxt db lint`: every revision's SQL, from the offline plan, through squawk (the PostgreSQL
migration linter, `squawk-cli` on PyPI), so that CI refuses an unsafe change (a table rewrite,
NOT NULL without a default, an index built without CONCURRENTLY, a lock-heavy ALTER, a
session without lock and statement timeouts) unless the revision says why it is safe there.

Each revision is linted on its own, as the SQL `nxt db migrate` would send: the transactional
ones once, a time-series one once per engine (it may branch on `target_engine()`). A revision
exempts itself from a rule with `SQUAWK_EXEMPT = {"rule": "why it is safe here"}`; an
exemption without a reason is a finding of its own. Revisions that decide what to run on the
live database (NOT_PLANNABLE) have no offline SQL and are listed as not linted.

Exit status: 0 clean, 1 findings, 2 squawk is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from nxt_cli.revisions import PLANES, TIMESERIES, Revision, history

ENGINES = ("native", "timescaledb")
PG_VERSION = "15.0"  # the oldest server the project supports (CI's second target)
_PLANNING_URL = "postgresql://lint@127.0.0.1/lint"  # a dialect only: nothing connects


@dataclass(frozen=True)
class LintFinding:
    plane: str
    revision: str
    path: str
    rule: str
    message: str
    line: int | None = None
    engine: str | None = None


@dataclass
class LintReport:
    findings: list[LintFinding]
    linted: list[str]
    not_linted: dict[str, str]  # revision -> why

    @property
    def exit_code(self) -> int:
        return 1 if self.findings else 0


def squawk_binary() -> str | None:
    beside = Path(sys.executable).parent / "squawk"  # the venv's, where pip put it
    return str(beside) if beside.exists() else shutil.which("squawk")


def _squawk(binary: str, sql: str, exclude: list[str]) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "revision.sql"
        path.write_text(sql)
        args = [binary, f"--pg-version={PG_VERSION}", "--reporter", "json", str(path)]
        if exclude:
            args.insert(1, "--exclude=" + ",".join(exclude))
        done = subprocess.run(args, capture_output=True, text=True, check=False,  # noqa: S603
                              timeout=120)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        if done.returncode == 0:
            return []
        raise RuntimeError(f"squawk failed ({done.returncode}): {done.stderr.strip()[:500]}")
    return json.loads(done.stdout)


def _display(path: Path) -> str:
    from nxt_cli.stack import project_root

    try:
        return str(path.relative_to(project_root()))
    except ValueError:
        return str(path)


def _lint_revision(binary: str, revision: Revision, start: str | None,
                   location: Path | None) -> list[LintFinding]:
    from nxt_cli.destructive import destructions
    from nxt_cli.plan import offline_sql

    path = _display(revision.path)
    findings = [LintFinding(revision.plane, revision.id, path, rule,
                            "exempt without a reason: say why the rule does not apply here")
                for rule, reason in revision.exemptions.items() if not reason]
    exclude = sorted(rule for rule, reason in revision.exemptions.items() if reason)
    for engine in (ENGINES if revision.plane == TIMESERIES else (None,)):
        sql = offline_sql(revision.plane, _PLANNING_URL, start, revision.id, engine, location)
        if not revision.destructive:
            findings += [LintFinding(revision.plane, revision.id, path, "destructive-undeclared",
                                     f"{d.what} of {d.table}: declare DESTRUCTIVE = \"what is"
                                     " lost and why\" (nxt db migrate backs the table up"
                                     " first)", engine=engine)
                         for d in destructions(sql)]
        for item in _squawk(binary, sql, exclude):
            findings.append(LintFinding(
                revision.plane, revision.id, path, str(item.get("rule_name")),
                str(item.get("message", "")).strip(),
                line=int(item["line"]) + 1 if isinstance(item.get("line"), int) else None,
                engine=engine))
    return findings


def lint(locations: dict[str, Path] | None = None) -> LintReport:
    binary = squawk_binary()
    if binary is None:
        raise FileNotFoundError("squawk is not installed: pip install squawk-cli (it is in the"
                                " project's dev extras)")
    locations = locations or {}
    report = LintReport([], [], {})
    for plane in PLANES:
        start: str | None = None
        for revision in history(plane, locations.get(plane)):
            if revision.not_plannable:
                report.not_linted[revision.id] = revision.not_plannable
            else:
                report.findings += _lint_revision(binary, revision, start, locations.get(plane))
                report.linted.append(revision.id)
            start = revision.id
    return report


def run(as_json: bool = False) -> int:
    try:
        report = lint()
    except FileNotFoundError as exc:
        print(f"nxt db lint: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps({"findings": [asdict(f) for f in report.findings],
                          "linted": report.linted, "not_linted": report.not_linted}, indent=2))
        return report.exit_code
    groups: dict[tuple[str, str, str | None, str], list[LintFinding]] = {}
    for finding in report.findings:
        groups.setdefault((finding.path, finding.revision, finding.engine, finding.rule),
                          []).append(finding)
    for (path, revision, engine, rule), found in groups.items():
        lines = [str(f.line) for f in found if f.line]
        at = f" (line{'s' if len(lines) > 1 else ''} {', '.join(lines[:8])}"
        at = (at + (", ..." if len(lines) > 8 else "") + " of its SQL)") if lines else ""
        times = f" x{len(found)}" if len(found) > 1 else ""
        print(f"{path}: {revision}{f' ({engine})' if engine else ''}: {rule}{times}{at}:"
              f" {found[0].message}")
    skipped = ", ".join(report.not_linted)
    summary = (f"{len(report.findings)} finding{'s' if len(report.findings) != 1 else ''}"
               if report.findings else "clean")
    print(f"nxt db lint: {summary} ({len(report.linted)} revisions linted"
          + (f"; not linted, they decide their SQL on the live database: {skipped})"
             if skipped else ")"))
    return report.exit_code
