"""The revisions of both planes as data: what `nxt db new`, `changelog`, `status`, `plan` and
`nxt check` read.

A revision is an alembic script in its plane's own path (`migrations/versions/` for the
transactional plane, `timeseries/migrations/versions/` for the time-series plane). Beside
alembic's own attributes it may declare, at module level:

- `RETENTION` and `BACKFILL` (time-series revisions: required, non-empty): what the change
  means for data already stored and for how long it is kept, said before rollout as the design
  note asks (`nxt check` refuses a time-series revision without them);
- `PAIRED_WITH = "<plane>:<revision>"`: the other half of a change to both planes (`nxt db new
  --plane both` writes both halves, each naming the other; `nxt check` refuses a half whose
  partner is missing or does not name it back);
- `NOT_PLANNABLE = "why"`: the revision decides what to run by asking the live database (so
  alembic's offline mode cannot print it); `nxt db plan` says so instead of guessing, and
  `nxt db lint` cannot lint it;
- `DESTRUCTIVE = "what is lost and why that is right"`: the revision drops, retypes or deletes
  (nxt_cli.destructive finds such statements; `nxt db lint` refuses them undeclared, and
  `nxt db migrate` takes a backup of what they touch first);
- `SQUAWK_EXEMPT = {"rule": "why it is safe here"}`: rules of the migration linter this
  revision is exempt from, each with its reason (`nxt db lint` refuses an empty one).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import Script, ScriptDirectory

TRANSACTIONAL, TIMESERIES = "transactional", "timeseries"
PLANES = (TRANSACTIONAL, TIMESERIES)
# How each plane spells its revision ids: 0011, ts0004.
ID_PREFIX = {TRANSACTIONAL: "", TIMESERIES: "ts"}
LABEL = {TRANSACTIONAL: "transactional", TIMESERIES: "time-series"}

_CREATE_DATE = re.compile(r"^Create Date:\s*(\S+)", re.MULTILINE)
_PAIR = re.compile(r"^(transactional|timeseries):(\w+)$")


def plane_config(plane: str, script_location: Path | None = None) -> Config:
    """The plane's alembic configuration (no database), optionally for a copy of its path."""
    from nxt_cli.migrate import alembic_config, timeseries_alembic_config

    make: Callable[[str], Config] = (alembic_config if plane == TRANSACTIONAL
                                     else timeseries_alembic_config)
    cfg = make("postgresql://unused")
    if script_location is not None:
        cfg.set_main_option("script_location", str(script_location))
        cfg.set_main_option("version_locations", str(script_location / "versions"))
    return cfg


@dataclass(frozen=True)
class Revision:
    plane: str
    id: str
    down: str | None
    message: str  # the docstring's first line
    summary: str  # the docstring's first paragraph, on one line
    created: str  # the "Create Date:" of the docstring (its date part)
    path: Path
    retention: str | None
    backfill: str | None
    paired_with: str | None
    not_plannable: str | None
    exemptions: dict[str, str]
    destructive: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"plane": self.plane, "revision": self.id, "down_revision": self.down,
                "message": self.message, "created": self.created,
                "retention": self.retention, "backfill": self.backfill,
                "paired_with": self.paired_with, "not_plannable": self.not_plannable}


def _declared(module: Any, name: str) -> str | None:
    value = getattr(module, name, None)
    return value.strip() if isinstance(value, str) else None


def _revision(plane: str, script: Script) -> Revision:
    doc = (script.module.__doc__ or "").strip()
    first_paragraph = doc.split("\n\n", 1)[0]
    created = _CREATE_DATE.search(doc)
    down = script.down_revision
    return Revision(
        plane=plane, id=script.revision,
        down=down if isinstance(down, str) or down is None else ",".join(down),
        message=first_paragraph.splitlines()[0].strip() if first_paragraph else "",
        summary=" ".join(first_paragraph.split()),
        created=created.group(1) if created else "",
        path=Path(script.path),
        retention=_declared(script.module, "RETENTION"),
        backfill=_declared(script.module, "BACKFILL"),
        paired_with=_declared(script.module, "PAIRED_WITH"),
        not_plannable=_declared(script.module, "NOT_PLANNABLE"),
        exemptions=_exemptions(script.module),
        destructive=_declared(script.module, "DESTRUCTIVE"))


def _exemptions(module: Any) -> dict[str, str]:
    value = getattr(module, "SQUAWK_EXEMPT", None) or {}
    if not isinstance(value, dict):
        return {"SQUAWK_EXEMPT": ""}  # not a mapping: reported as an exemption without reason
    return {str(rule): reason.strip() if isinstance(reason, str) else ""
            for rule, reason in value.items()}


def history(plane: str, script_location: Path | None = None) -> list[Revision]:
    """The plane's revisions, oldest first."""
    script = ScriptDirectory.from_config(plane_config(plane, script_location))
    return [_revision(plane, s) for s in reversed(list(script.walk_revisions()))]


def pending(plane: str, current: str | None,
            script_location: Path | None = None) -> list[Revision]:
    """The revisions after `current` (None: all of them), oldest first."""
    revisions = history(plane, script_location)
    if current is None:
        return revisions
    ids = [r.id for r in revisions]
    if current not in ids:
        raise LookupError(f"the database is at revision {current!r}, which this checkout's"
                          f" {LABEL[plane]} plane does not have (is the checkout older than the"
                          " database?)")
    return revisions[ids.index(current) + 1:]


# -- the declarations `nxt check` enforces -------------------------------------------------


@dataclass(frozen=True)
class Finding:
    path: Path
    message: str
    fix: str


def declaration_findings(locations: dict[str, Path] | None = None) -> list[Finding]:
    """What the revisions fail to declare: retention and backfill of every time-series
    revision, and both halves of every pair naming each other."""
    locations = locations or {}
    by_plane = {plane: history(plane, locations.get(plane)) for plane in PLANES}
    index = {(r.plane, r.id): r for revisions in by_plane.values() for r in revisions}
    findings: list[Finding] = []
    for revision in by_plane[TIMESERIES]:
        for name, value in (("RETENTION", revision.retention), ("BACKFILL", revision.backfill)):
            if not value:
                findings.append(Finding(
                    revision.path,
                    f"time-series revision {revision.id} does not declare {name}"
                    f" ({'empty' if value == '' else 'missing'})",
                    f"set a module-level {name} = \"...\": what the change means for"
                    f" {'how long data is kept' if name == 'RETENTION' else 'rows already stored'}"
                    " (\"none\" and why, when it changes nothing)"))
    for revision in index.values():
        if revision.paired_with is None:
            continue
        match = _PAIR.match(revision.paired_with)
        partner = index.get((match.group(1), match.group(2))) if match else None
        if partner is None:
            findings.append(Finding(
                revision.path,
                f"revision {revision.id} is PAIRED_WITH {revision.paired_with!r}, which does not"
                " exist",
                "name the other half as \"<transactional|timeseries>:<revision>\""))
        elif partner.paired_with != f"{revision.plane}:{revision.id}":
            findings.append(Finding(
                revision.path,
                f"revision {revision.id} is paired with {partner.plane}:{partner.id}, which does"
                f" not name it back (it says {partner.paired_with!r})",
                f"set PAIRED_WITH = \"{revision.plane}:{revision.id}\" in {partner.path.name}"))
    return findings


# -- `nxt db new` --------------------------------------------------------------------------


def _next_id(plane: str, revisions: list[Revision]) -> str:
    prefix = ID_PREFIX[plane]
    numbers = [int(r.id[len(prefix):]) for r in revisions
               if r.id.startswith(prefix) and r.id[len(prefix):].isdigit()]
    return f"{prefix}{max(numbers, default=0) + 1:04d}"


def new_revisions(message: str, plane: str,
                  locations: dict[str, Path] | None = None) -> list[Path]:
    """Write the revision file(s) of a change: one for a plane, two linked ones for `both`."""
    if not message.strip():
        raise ValueError("the message is empty: say what the change does")
    locations = locations or {}
    planes = list(PLANES) if plane == "both" else [plane]
    ids = {p: _next_id(p, history(p, locations.get(p))) for p in planes}
    paths = []
    for p in planes:
        others = [o for o in planes if o != p]
        paired = f"{others[0]}:{ids[others[0]]}" if others else None
        script = ScriptDirectory.from_config(plane_config(p, locations.get(p)))
        with redirect_stdout(io.StringIO()):  # alembic's "Generating ... done"
            written = script.generate_revision(ids[p], message.strip(), head="head",
                                               plane=p, paired_with=paired)
        assert written is not None
        path = Path(written.path)
        if ID_PREFIX[p] and path.name.startswith(ID_PREFIX[p]):
            # Files are named by number alone in both paths (0004_..., like 0001_baseline.py).
            path = path.rename(path.with_name(path.name[len(ID_PREFIX[p]):]))
        paths.append(path)
    return paths


# -- `nxt db changelog` --------------------------------------------------------------------

CHANGELOG_HEADER = """# Schema changelog

Generated from the revisions by `nxt db changelog`; `make lint` fails when it is stale. Each
plane's revisions, newest first. Time-series revisions say what they mean for data already
stored (backfill) and for how long it is kept (retention)."""


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def changelog(locations: dict[str, Path] | None = None) -> str:
    locations = locations or {}
    out = [CHANGELOG_HEADER]
    for plane in PLANES:
        revisions = list(reversed(history(plane, locations.get(plane))))
        out += ["", f"## The {LABEL[plane]} plane ({len(revisions)} revisions)", ""]
        if plane == TIMESERIES:
            out.append("| revision | date | change | retention | backfill | paired with |")
            out.append("|---|---|---|---|---|---|")
        else:
            out.append("| revision | date | change | paired with |")
            out.append("|---|---|---|---|")
        for r in revisions:
            cells = [r.id, r.created, _cell(r.summary)]
            if plane == TIMESERIES:
                cells += [_cell(r.retention), _cell(r.backfill)]
            cells.append(_cell(r.paired_with))
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
