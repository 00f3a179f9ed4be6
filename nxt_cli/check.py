"""`nxt check`: supabase/config.toml and functions/ must agree, and CI fails when they don't.

For every function it checks that the directory and the ``[functions.<name>]`` table both exist,
that ``entrypoint`` names that function's main.py and main.py serves the target, and that
``verify_jwt`` fits what the function's ``@gated(...)`` declaration accepts. A table without a
directory of its own whose entrypoint is another function's main.py is an alias (another name
for the same code, as ``meter-consumption-2``): that main.py must serve the alias's own target,
gated under the alias's name, and ``verify_jwt`` must fit that declaration. It also reports keys
the Supabase CLI does not know, ``env(...)`` values whose variable is unset, and values of the
wrong type. Exit 0: they agree; 1: a problem; 2: the config cannot be read at all.

A function's declaration is only known by importing its main.py, and that import reads the
function's own table through ``function_settings`` (cached, located via $NXT_SUPABASE_CONFIG).
The imports therefore run in a child process (``python -m nxt_cli.check``) pointed at the config
being checked: no cache, registry or module state of this process is involved, and a module that
breaks at import cannot take the checker down.

It also checks the declarations the schema change flow relies on (nxt_cli.revisions): every
time-series revision says what it means for retention and backfill, and both halves of a change
to both planes name each other.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from contextlib import redirect_stdout
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nxt_cli.config_lint import env_refs, line_of, load_config, locator
from nxt_cli.functions import alias_targets, import_main
from shared.auth.declared import API_KEY, DECLARED, GateSpec, target_name
from shared.supabase_config import (
    CONFIG_ENV_VAR,
    FUNCTION_KEYS,
    ConfigError,
    FunctionConfig,
    SupabaseConfig,
)

OK, DISAGREE, UNREADABLE = 0, 1, 2

# Entrypoints of Deno functions, which the Supabase CLI writes for TypeScript projects: nothing
# in functions/ can match them.
_DENO_SUFFIXES = (".ts", ".tsx", ".mts", ".js", ".jsx", ".mjs")

# A module that hangs at import (waiting on a network) must not hang CI forever.
_PROBE_TIMEOUT_S = 120

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

# How to correct a value of the wrong type, by key of a [functions.<name>] table.
_TYPE_FIXES = {
    "enabled": "write enabled = true or enabled = false",
    "verify_jwt": "write verify_jwt = true or verify_jwt = false",
    "entrypoint": "write the path as a string",
    "import_map": "write the path as a string",
    "static_files": "write an array of path strings",
}


@dataclass(frozen=True)
class Problem:
    """One disagreement. ``function`` is None for problems with the file as a whole."""

    function: str | None
    key: str | None
    line: int | None
    message: str
    fix: str
    path: str | None = None  # the file at fault, when it is not the config (a revision)


@dataclass
class Report:
    config: Path
    functions_dir: Path
    functions: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    readable: bool = True

    @property
    def ok(self) -> bool:
        return self.readable and not self.problems

    @property
    def exit_code(self) -> int:
        if not self.readable:
            return UNREADABLE
        return DISAGREE if self.problems else OK

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "config": str(self.config), "functions": self.functions,
                "problems": [asdict(problem) for problem in self.problems]}

    def lines(self) -> list[str]:
        """One line per problem, then a summary."""
        shown = _display(self.config)
        out = []
        for p in self.problems:
            where = p.path or (f"{shown}:{p.line}" if p.line else shown)
            if p.function is not None:
                subject = f"[{_table(p.function)}]" + (f" {p.key}: " if p.key else ": ")
            else:
                subject = f"{p.key}: " if p.key else ""
            out.append(f"{where}: {subject}{p.message}; fix: {p.fix}")
        functions_dir = _display(self.functions_dir)
        if not self.readable:
            out.append(f"nxt check: cannot read {shown}; nothing was checked")
        elif self.problems:
            count = len(self.problems)
            in_revisions = sum(1 for p in self.problems if p.path)
            where = [] if count == in_revisions else [
                f"{shown} and {functions_dir}/ disagree ({len(self.functions)} functions"
                " checked)"]
            if in_revisions:
                where.append(f"{in_revisions} in the revisions")
            out.append(f"nxt check: {count} problem{'s' if count > 1 else ''}: "
                       + "; ".join(where))
        else:
            out.append(f"nxt check: {shown} and {functions_dir}/ agree"
                       f" ({len(self.functions)} functions: {', '.join(self.functions)});"
                       " every revision declares what it must")
        return out


@dataclass(frozen=True)
class Probe:
    """What importing one function's main.py showed (see ``_probe_functions``)."""

    error: str | None = None  # the import failed: "ExceptionType: message"
    config_error: bool = False  # ... with a ConfigError, i.e. because of its config table
    accepts: tuple[str, ...] | None = None  # the @gated declaration, None if none was made
    target: str | None = None  # "ok", "missing", "not-gated", "other-name"; None: not imported
    gated_as: str | None = None  # the name the target is gated as, when "other-name"


def run(config: str | None = None, functions_dir: str | None = None,
        as_json: bool = False) -> int:
    """`nxt check`: print the report, return the exit status."""
    from nxt_cli.stack import config_path, project_root

    report = check(Path(config) if config else config_path(),
                   Path(functions_dir) if functions_dir else project_root() / "functions")
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print("\n".join(report.lines()))
    return report.exit_code


def check(config_path: Path, functions_dir: Path,
          env: Mapping[str, str] | None = None,
          revision_locations: dict[str, Path] | None = None) -> Report:
    """Compare the config with the function directories, and check the revisions.

    ``env`` stands in for os.environ: the environment the functions run in, used both to resolve
    ``env(...)`` values and to import the functions. ``revision_locations`` (plane -> a copy of
    its migrations directory) stands in for the project's own.
    """
    environ = os.environ if env is None else env
    report = Report(config=config_path, functions_dir=functions_dir)
    try:
        config = load_config(config_path, env=environ)
    except ConfigError as exc:
        if exc.table is None:  # the file itself: missing, not UTF-8, not TOML
            fix = ("correct the TOML syntax there" if exc.line else
                   "run `nxt check` inside the project, or pass --config PATH")
            report.problems.append(Problem(None, None, exc.line, exc.message, fix))
            report.readable = False
            return report
        # A bad project-wide value ([api] port = "x"): report it and still check the functions.
        report.problems.append(_file_problem(exc))
        config = _unvalidated(config_path, environ)
    try:
        tables = config.function_names()
    except ConfigError as exc:  # `functions` is something other than a table
        report.problems.append(_file_problem(exc))
        tables = []
    directories = sorted(p.parent.name for p in functions_dir.glob("*/main.py"))
    report.functions = sorted({*tables, *directories})
    sources = {name: name for name in directories}
    sources.update(alias_targets(config, functions_dir, directories))
    try:
        probes = _probe(config.path, functions_dir, sources, environ)
    except RuntimeError as exc:
        report.problems.append(Problem(None, None, None, str(exc),
                                       "run the failing function's import by hand and fix it"))
        probes = {}
    for name in report.functions:
        report.problems += _check_function(config, functions_dir, name, tables, sources,
                                           probes.get(name), environ)
    report.problems += _revision_problems(revision_locations)
    return report


def _revision_problems(locations: dict[str, Path] | None) -> list[Problem]:
    from nxt_cli.revisions import declaration_findings

    return [Problem(None, None, None, f.message, f.fix, path=_display(f.path))
            for f in declaration_findings(locations)]


def _check_function(config: SupabaseConfig, functions_dir: Path, name: str,
                    tables: list[str], sources: Mapping[str, str], probe: Probe | None,
                    env: Mapping[str, str]) -> list[Problem]:
    """`sources`: name -> the directory whose main.py serves it (its own, or an alias's)."""
    table = _table(name)
    main_py = functions_dir / sources.get(name, name) / "main.py"
    wanted_entrypoint = Path(os.path.relpath(os.path.abspath(main_py),
                                             os.path.abspath(config.config_dir))).as_posix()
    spec = _declaration(name, probe)
    problems: list[Problem] = []

    def report(key: str | None, message: str, fix: str, line: int | None = None) -> None:
        if line is None and key is not None:
            line = line_of(config, table, key)
        problems.append(Problem(name, key, line or line_of(config, table), message, fix))

    if name not in tables:
        verify = "false" if spec and spec.needs_jwt_gate_off else "true"
        report(None, f"{_display(main_py)} has no [{table}] table in the config",
               f'add [{table}] with entrypoint = "{wanted_entrypoint}" and verify_jwt = {verify}')
        for key, message, fix in _target_findings(name, main_py, probe, table_ok=False):
            report(key, message, fix)
        return problems

    raw = config.raw["functions"][name]
    fields = raw if isinstance(raw, dict) else {}
    for key in fields:
        if key not in FUNCTION_KEYS:
            known = ", ".join(sorted(FUNCTION_KEYS))
            close = difflib.get_close_matches(key, FUNCTION_KEYS, n=1)
            report(key, f"unknown key (the Supabase CLI knows {known} and ignores the rest)",
                   f"rename it to {close[0]}" if close else "remove it")

    # Every value of the table is read at the function's cold start, so each variable must be
    # set; env() values elsewhere in the file are the Supabase CLI's business.
    unset_env = False
    for ref_table, key, variable, line in env_refs(config):
        if ref_table == table and key.split("[")[0] in FUNCTION_KEYS and not env.get(variable):
            unset_env = True
            report(key, f"the value is env({variable}) but {variable} is not set; the function"
                   " reads it at cold start",
                   f"set {variable} where the function runs, or write the value itself", line)

    settings: FunctionConfig | None = None
    if not unset_env:  # validating would only report the first unset variable again
        try:
            settings = config.function(name, env=env)
        except ConfigError as exc:
            key = exc.key if exc.table == table else None
            report(key, exc.message, _TYPE_FIXES.get(key or "", "write it as a table of the"
                                                     " keys the Supabase CLI knows"), exc.line)

    if name not in sources:
        entrypoint = fields.get("entrypoint")
        if isinstance(entrypoint, str) and entrypoint.endswith(_DENO_SUFFIXES):
            report("entrypoint", f'"{entrypoint}" is a TypeScript/JavaScript function, not one'
                   f" of {_display(functions_dir)}/, so nxt cannot check it",
                   f"remove the table, or write the function as {_display(main_py)}")
        else:
            report(None, f"no directory {_display(main_py.parent)}/ with a main.py",
                   f"create {_display(main_py)}, or remove the table")
        return problems

    if settings is not None:
        if settings.entrypoint is None:
            default = config.config_dir / "functions" / name / "index.ts"
            report("entrypoint", f"not set, so the Supabase CLI looks for {_display(default)}",
                   f'entrypoint = "{wanted_entrypoint}"')
        else:
            resolved = settings.entrypoint_path(config.config_dir)
            if resolved is not None and not _same_file(resolved, main_py):
                report("entrypoint", f'"{settings.entrypoint}" resolves (relative to'
                       f" {_display(config.config_dir)}/) to {_display(resolved)}, not"
                       f" {_display(main_py)}", f'entrypoint = "{wanted_entrypoint}"')

    for key, message, fix in _target_findings(name, main_py, probe, settings is not None):
        report(key, message, fix)

    if settings is not None and spec is not None:
        accepts = ", ".join(sorted(spec.accepts))
        if spec.needs_jwt_gate_off and settings.verify_jwt:
            what = ("API keys: an API key is not a JWT, so the gateway would refuse every key"
                    if API_KEY in spec.accepts else "requests without credentials: the"
                    " gateway would refuse every request without a JWT")
            report("verify_jwt", f"is true, but {name} accepts {what} (accepts {accepts})",
                   "set verify_jwt = false; the function checks its credentials itself")
        elif spec.requires_jwt and not settings.verify_jwt:
            report("verify_jwt", f"is false, but {name} accepts only JWTs (accepts {accepts}),"
                   " so the gateway must verify them", "set verify_jwt = true")
    return problems


def _target_findings(name: str, main_py: Path, probe: Probe | None,
                     table_ok: bool) -> list[tuple[str, str, str]]:
    """(key, message, fix) for what the import showed about main.py and its target."""
    if probe is None:  # not imported: the child process failed, which is reported once
        return []
    target, shown = target_name(name), _display(main_py)
    gate_fix = f'decorate it: @gated("{name}", accepts={{...}}, methods=[...])'
    if probe.error is not None:
        if probe.config_error and not table_ok:
            return []  # a ConfigError at import repeats the table's problem, already reported
        return [("entrypoint", f"importing {shown} failed: {probe.error}",
                 "make main.py importable: the function fails at cold start the same way")]
    if probe.target == "missing":
        return [("entrypoint", f"{shown} defines no {target}, the target functions-framework"
                 f" serves for {name}",
                 f"define `async def {target}(request, caller)`; {gate_fix}")]
    if probe.target == "not-gated":
        return [("entrypoint", f"{target} in {shown} is not a @gated function", gate_fix)]
    if probe.target == "other-name":
        return [("entrypoint", f'{target} in {shown} is gated as "{probe.gated_as}", not'
                 f' "{name}"', f'@gated("{name}", ...)')]
    return []


def _declaration(name: str, probe: Probe | None) -> GateSpec | None:
    """The function's GateSpec from its import, or None when it declared none."""
    if probe is None or probe.accepts is None:
        return None
    return GateSpec(name=name, target=target_name(name), accepts=frozenset(probe.accepts))


def _file_problem(exc: ConfigError) -> Problem:
    key = ".".join(part for part in (exc.table, exc.key) if part) or None
    fix = ("set it, or write the value itself" if exc.message.startswith("environment variable")
           else "write a value of the type the Supabase CLI expects")
    return Problem(None, key, exc.line, exc.message, fix)


def _unvalidated(path: Path, env: Mapping[str, str]) -> SupabaseConfig:
    """The file without load_config's checks, which already failed on a project-wide value."""
    text = path.read_bytes().decode("utf-8-sig")  # load_config got this far, so it decodes
    return SupabaseConfig(path=path, raw=tomllib.loads(text), text=text, env=env,
                          locator=locator)


def _table(name: str) -> str:
    """``functions.<name>`` as TOML spells it, quoting names that are not bare keys."""
    return f"functions.{name}" if _BARE_KEY.fullmatch(name) else f"functions.{json.dumps(name)}"


def _same_file(a: Path, b: Path) -> bool:
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    # Also equal through a symlink (a bundle may link functions/ into place).
    return a.exists() and b.exists() and os.path.samefile(a, b)


def _display(path: Path) -> str:
    """Relative to the working directory when inside it: what the reader types to open it."""
    try:
        return Path(os.path.abspath(path)).relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


# --- importing the functions, in a child process --------------------------------------------


def _probe(config_path: Path, functions_dir: Path, sources: Mapping[str, str],
           environ: Mapping[str, str]) -> dict[str, Probe]:
    """Import each function (name -> the directory of its main.py) of ``functions_dir`` in a
    child process; RuntimeError if it dies."""
    if not sources:
        return {}
    repo = str(Path(__file__).absolute().parent.parent)  # so the child imports this nxt_cli
    path = os.pathsep.join(p for p in (repo, environ.get("PYTHONPATH")) if p)
    env = {**environ, CONFIG_ENV_VAR: str(config_path.absolute()), "PYTHONPATH": path}
    command = [sys.executable, "-m", "nxt_cli.check", str(functions_dir),
               *(f"{name}={directory}" for name, directory in sources.items())]
    try:
        proc = subprocess.run(command, env=env, capture_output=True, text=True,  # noqa: S603
                              timeout=_PROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"importing the functions took over {_PROBE_TIMEOUT_S} s") from exc
    try:
        found = json.loads(proc.stdout)
    except ValueError:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        message = f"importing the functions crashed (exit {proc.returncode}): {tail}"
        raise RuntimeError(message) from None
    return {name: Probe(**{**fields, "accepts": None if fields["accepts"] is None
                           else tuple(fields["accepts"])})
            for name, fields in found.items()}


def _probe_functions(functions_dir: Path, sources: Mapping[str, str]
                     ) -> dict[str, dict[str, Any]]:
    """In the child: import each main.py (under the function's own name, so an alias gets a
    module of its own) and note its declaration and target."""
    found: dict[str, dict[str, Any]] = {}
    for name, directory in sources.items():
        # Cleared so that what is there after the import is this module's declaration. gated()
        # records it before reading the config table, so it survives a bad table.
        DECLARED.clear()
        probe: dict[str, Any] = {"error": None, "config_error": False, "accepts": None,
                                 "target": None, "gated_as": None}
        try:
            module = import_main(functions_dir / directory / "main.py", name)
        except (Exception, SystemExit) as exc:  # whatever a module raises is a finding
            probe["error"] = f"{type(exc).__name__}: {exc}"
            probe["config_error"] = isinstance(exc, ConfigError)
            module = None
        if (declared := DECLARED.get(name)) is not None:
            probe["accepts"] = sorted(declared.accepts)
        if module is not None:
            target = getattr(module, target_name(name), None)
            gate = getattr(target, "__nxt_gate__", None)
            if target is None:
                probe["target"] = "missing"
            elif not callable(target) or not isinstance(gate, GateSpec):
                probe["target"] = "not-gated"
            elif gate.name != name:
                probe["target"], probe["gated_as"] = "other-name", gate.name
            else:
                probe["target"] = "ok"
        found[name] = probe
    return found


def _probe_main(argv: Sequence[str]) -> None:
    # Modules may print at import; stdout carries only the JSON the parent reads.
    with redirect_stdout(sys.stderr):
        found = _probe_functions(Path(argv[0]),
                                 dict(arg.partition("=")[::2] for arg in argv[1:]))
    print(json.dumps(found))


if __name__ == "__main__":
    _probe_main(sys.argv[1:])
