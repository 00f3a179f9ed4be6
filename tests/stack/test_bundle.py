"""`nxt bundle` and `nxt deploy --dry-run`: each function as a self-contained directory (its own
files, shared/, timeseries/ only where its code imports it, a one-table config.toml, its whole
dependency closure pinned, none of the tooling: no token minting, no config linter), and the
deployment commands (triggers, schedules from code, secrets by reference).

The key tests (marked db, they reach the package registry through pip) install a bundle's
requirements.txt, and nothing else, into a fresh virtual environment, check that it holds exactly
the pinned versions, those installed here, and serve the bundle with functions-framework from
inside it, as Cloud Functions does.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from nxt_cli import config_lint, tokens
from nxt_cli.bundle import RUNTIME, BundleError, analyse, bundle, minimal_config
from nxt_cli.functions import function_sources
from nxt_cli.harness import ROOT, ServerError, ServerProcess, free_port, stack_env
from nxt_cli.localkeys import supabase_local_jwt_secret
from tests.conftest import TEST_JWT_SECRET, Api, Seeded

SOURCES = function_sources(ROOT)
FUNCTIONS = list(SOURCES)  # meter-consumption-2 too: the legacy URL, meter-consumption's code
# name -> every name its main.py serves (a bundle carries all of their config tables).
SIBLINGS = {name: {n for n, p in SOURCES.items() if p == SOURCES[name]} for name in SOURCES}
JOBS = {"snapshot-meters", "sync-orders", "grid-daily", "timeseries-maintenance",
        "freshness-check", "reconcile-check"}
# Functions whose code imports the timeseries package (the others reach the plane, if at all,
# through shared.db alone).
TIMESERIES_PACKAGE = {"meter-readings", "freshness", "freshness-check", "reconcile-check",
                      "snapshot-meters", "timeseries-maintenance", "sync-orders", "grid-daily"}
TIMESERIES_PLANE = TIMESERIES_PACKAGE | {"meter-consumption", "meter-consumption-2"}
# The direct pins: what the code imports, and the server loading it with its ASGI framework.
# psycopg[binary,pool] brings psycopg-binary and pyjwt[crypto] cryptography, as transitive pins.
PSYCOPG = {"psycopg", "psycopg-pool"}
HTTP_REQUIREMENTS = {"functions-framework", "starlette", "pydantic", "pyjwt", *PSYCOPG}
JOB_REQUIREMENTS = {"functions-framework", "starlette", *PSYCOPG}
# meter-readings' fast-path TypedDicts: pydantic wants typing_extensions' before Python 3.12.
EXTRA_REQUIREMENTS = {"meter-readings": {"typing-extensions"}}
# Jobs whose code never reaches shared.db's pool: psycopg-pool is only psycopg[pool]'s there.
UNPOOLED_JOBS = {"reconcile-check", "timeseries-maintenance"}
# What `python -m venv` puts in every environment before anything is installed.
VENV_SEED = {"pip", "setuptools"}
# Bundles carry bytecode only when built by the deploy's Python (nxt_cli.bundle.compile_modules).
BYTECODE = f"python{sys.version_info.major}{sys.version_info.minor}" == RUNTIME
LENDER_ID, AGGREGATOR_ID = 1, 5
MASK = "*******"


def run_nxt(*args: str, env: dict[str, str] | None = None,
            cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nxt_cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without what would point a bundle back at the repository."""
    return stack_env(isolate=False, checkout=False, config=False,
                     drop=("PYTHONPATH", "NXT_SUPABASE_CONFIG", "K_SERVICE"), **extra)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = run_nxt("bundle", "--all", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == len(FUNCTIONS)
    return out


@dataclass(frozen=True)
class PinLine:
    requirement: Requirement
    direct: bool  # marked `direct`
    via: frozenset[str]  # the names after `via`

    @property
    def version(self) -> str:
        (spec,) = self.requirement.specifier  # exactly one specifier, an ==
        assert spec.operator == "==", self.requirement
        return spec.version


def pin_lines(directory: Path) -> dict[str, PinLine]:
    """canonical name -> the pin of the bundle's requirements.txt, and what its comment says."""
    pins: dict[str, PinLine] = {}
    for line in (directory / "requirements.txt").read_text().splitlines():
        pin, _, comment = line.partition("#")
        if not pin.strip():
            continue
        reasons = [r.strip() for r in comment.split(";")]
        via = next((r.removeprefix("via ") for r in reasons if r.startswith("via ")), "")
        requirement = Requirement(pin)
        pins[canonicalize_name(requirement.name)] = PinLine(
            requirement, "direct" in reasons, frozenset(filter(None, via.split(", "))))
    return pins


def held_requirements(pins: dict[str, PinLine]) -> dict[str, list[Requirement]]:
    """pinned name -> its requirements that apply here, given the extras asked of it by its own
    line and by the requirements naming it (a fixed point: extras can ask for more extras)."""
    asked = {key: set(pin.requirement.extras) for key, pin in pins.items()}
    while True:
        held = {key: [r for r in map(Requirement, metadata.requires(key) or [])
                      if r.marker is None or r.marker.evaluate({"extra": asked[key]})]
                for key in pins}
        grown = False
        for requirement in (r for rs in held.values() for r in rs):
            wanted = asked.get(canonicalize_name(requirement.name))
            if wanted is not None and not requirement.extras <= wanted:
                wanted |= requirement.extras
                grown = True
        if not grown:
            return held


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


# -- contents -----------------------------------------------------------------------------------


def _compiled(directory: Path, files: dict[str, bytes]) -> set[str]:
    """The sources whose bytecode the bundle ships, each checked against its source's hash
    (PEP 552: flags 0b11 in the header, then the SipHash of the source bytes)."""
    from importlib.util import cache_from_source, source_hash

    compiled = set()
    for path in (p for p in files if p.endswith(".py")):
        pyc = Path(cache_from_source(str(directory / path))).relative_to(directory).as_posix()
        header = files.get(pyc)
        if header is not None:
            assert int.from_bytes(header[4:8], "little") == 0b11, pyc  # checked hash
            assert header[8:16] == source_hash(files[path]), pyc
            compiled.add(path)
    return compiled


@pytest.mark.parametrize("name", FUNCTIONS)
def test_bundle_holds_the_function_shared_and_only_the_packages_it_imports(
        dist: Path, name: str) -> None:
    directory = dist / name
    code = SOURCES[name].parent
    own = {p.name for p in code.iterdir() if p.name != "__pycache__"}
    expected = own | {"shared", "supabase", "requirements.txt", ".gcloudignore"}
    if BYTECODE:
        expected.add("__pycache__")
    if name in TIMESERIES_PACKAGE:
        expected.add("timeseries")
    assert {p.name for p in directory.iterdir()} == expected
    files = files_of(directory)
    for path in files:
        parts = set(path.split("/"))
        assert not parts & {"tests", "nxt_cli", "migrations"}, path
        assert path.endswith(".pyc") == ("__pycache__" in parts), path
    sources = {p for p in files if p.endswith(".py")}
    assert _compiled(directory, files) == (sources if BYTECODE else set())
    ignored = [line for line in files[".gcloudignore"].decode().splitlines()
               if line and not line.startswith("#")]
    assert ignored == [".gcloudignore"]  # __pycache__ is uploaded
    for source in code.glob("*.py"):
        assert (directory / source.name).read_bytes() == source.read_bytes()
    shipped = {p.relative_to(directory).as_posix() for p in (directory / "shared").rglob("*.py")}
    assert shipped == {p.relative_to(ROOT).as_posix() for p in (ROOT / "shared").rglob("*.py")}


@pytest.mark.skipif(not BYTECODE, reason=f"bundles carry bytecode when built by {RUNTIME}, the"
                    " deploy's runtime; this interpreter is another")
def test_bundled_bytecode_is_used_and_an_edited_source_is_compiled_instead(
        dist: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "customers"
    shutil.copytree(dist / "customers", copy)
    module = copy / "shared" / "web" / "limits.py"

    def load() -> tuple[str, str]:
        done = subprocess.run(
            [sys.executable, "-v", "-c", "import shared.web.limits as m;"
             " print(getattr(m, 'EDITED', None))"], cwd=copy, capture_output=True, text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, check=True)
        return done.stdout.strip(), done.stderr

    pyc = "shared/web/__pycache__/limits."
    printed, verbose = load()
    assert printed == "None" and f"code object from '{copy}/{pyc}" in verbose
    module.write_text(module.read_text() + "\nEDITED = 1\n")
    printed, verbose = load()
    assert printed == "1" and f"code object from '{copy}/{pyc}" not in verbose


DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# The tooling deployed code must never carry: minting tokens, and the config.toml linter.
TOOLING_MODULES = (Path(tokens.__file__), Path(config_lint.__file__))


def _code(node: ast.AST) -> str:
    """A definition's code, its name and docstring aside: the same code under another name or
    with other prose is still the same code."""
    body = list(getattr(node, "body", []))
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return ast.dump(ast.Module(body=body, type_ignores=[]))


def _signs_a_jwt(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "encode"
            and isinstance(node.value, ast.Name) and node.value.id == "jwt")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_no_bundle_carries_token_minting_or_the_config_linter(dist: Path, name: str) -> None:
    names = {tokens.mint_token.__name__, config_lint.LineIndex.__name__,
             config_lint.line_of.__name__, config_lint.env_refs.__name__,
             config_lint.add_line.__name__}
    # Top-level definitions only: a method as small as `return self.keys.get(...)` may well
    # have a twin in runtime code without being tooling.
    tooling = {_code(node) for path in TOOLING_MODULES
               for node in ast.parse(path.read_bytes()).body if isinstance(node, DEFINITIONS)}
    directory = dist / name
    assert not [p.name for p in TOOLING_MODULES if (directory / "shared" / p.name).exists()]
    for path in sorted(directory.rglob("*.py")):
        shown = path.relative_to(directory)
        nodes = list(ast.walk(ast.parse(path.read_bytes(), filename=str(path))))
        definitions = [n for n in nodes if isinstance(n, DEFINITIONS)]
        assert not names & {d.name for d in definitions}, shown
        assert not tooling & {_code(d) for d in definitions}, shown
        assert not any(_signs_a_jwt(n) for n in nodes), shown  # minting, whatever its name
    secret = supabase_local_jwt_secret().encode()
    for shown, data in files_of(directory).items():
        assert secret not in data, shown  # the public local secret: tokens anyone can mint


@pytest.mark.parametrize("name", FUNCTIONS)
def test_direct_pins_are_exactly_what_the_code_imports(dist: Path, name: str) -> None:
    pins = pin_lines(dist / name)
    wanted = JOB_REQUIREMENTS if name in JOBS else HTTP_REQUIREMENTS
    if name in UNPOOLED_JOBS:
        wanted = wanted - {"psycopg-pool"}
        assert pins["psycopg-pool"].via == {"psycopg"} and not pins["psycopg-pool"].direct
    assert {key for key, pin in pins.items() if pin.direct} == (
        wanted | EXTRA_REQUIREMENTS.get(name, set()))
    assert pins["psycopg"].requirement.extras == {"binary", "pool"}
    if "pyjwt" in pins:
        assert pins["pyjwt"].requirement.extras == {"crypto"}
    for key, pin in pins.items():
        # Extras only where pyproject.toml asks them; what they bring has its own line.
        assert pin.direct or not pin.requirement.extras, key


@pytest.mark.parametrize("name", FUNCTIONS)
def test_the_pins_are_the_closed_closure_installed_here(dist: Path, name: str) -> None:
    pins = pin_lines(dist / name)
    for key, pin in pins.items():
        assert pin.version == metadata.version(key), key
    held = held_requirements(pins)
    required_by: dict[str, set[str]] = {key: set() for key in pins}
    for parent, requirements in held.items():
        for requirement in requirements:
            key = canonicalize_name(requirement.name)
            assert key in pins, f"{parent} requires {requirement}, which is not pinned"
            assert requirement.specifier.contains(pins[key].version, prereleases=True), (
                f"{parent} requires {requirement}, pinned at {pins[key].version}")
            required_by[key].add(parent)
    assert {key: pin.via for key, pin in pins.items()} == required_by
    # Nothing pinned that the direct pins do not pull in.
    reached = {key for key, pin in pins.items() if pin.direct}
    todo = list(reached)
    while todo:
        for requirement in held[todo.pop()]:
            key = canonicalize_name(requirement.name)
            if key not in reached:
                reached.add(key)
                todo.append(key)
    assert reached == set(pins)
    assert {"flask", "werkzeug", "uvicorn", "anyio", "psycopg-binary"} <= reached
    if name not in JOBS:
        assert {"cryptography", "cffi", "pycparser", "pydantic-core"} <= reached


def test_no_function_ships_sqlalchemy_or_alembic_although_timeseries_imports_them() -> None:
    # timeseries.engine imports SQLAlchemy inside make_engine, which no function calls.
    reach = analyse(ROOT, "meter-readings")
    assert ROOT / "timeseries" / "engine.py" in reach.modules
    assert not reach.third_party & {"sqlalchemy", "alembic"}
    assert ROOT / "timeseries" / "tables.py" not in reach.modules


@pytest.mark.parametrize("name", FUNCTIONS)
def test_bundled_config_holds_only_the_function_table(dist: Path, name: str) -> None:
    path = dist / name / "supabase" / "config.toml"
    bundled = tomllib.loads(path.read_text())
    project = tomllib.loads((ROOT / "supabase" / "config.toml").read_text())
    assert set(bundled) == {"functions"}  # the project's [auth] jwt_secret is unset
    # Its own table first, and those of the other names its main.py serves (their gates read
    # them at import): meter-consumption and meter-consumption-2 carry both.
    assert next(iter(bundled["functions"])) == name
    assert set(bundled["functions"]) == SIBLINGS[name]
    for each, table in bundled["functions"].items():
        assert table["verify_jwt"] == project["functions"][each]["verify_jwt"]
        assert table["enabled"] is True
        assert (path.parent / table["entrypoint"]).resolve() == (
            dist / name / "main.py").resolve()


def test_the_legacy_url_bundles_meter_consumptions_code_under_its_own_target(
        dist: Path) -> None:
    assert SIBLINGS["meter-consumption-2"] == {"meter-consumption", "meter-consumption-2"}
    assert files_of(dist / "meter-consumption-2").keys() == files_of(
        dist / "meter-consumption").keys()
    assert "async def meter_consumption_2(" in (
        dist / "meter-consumption-2" / "main.py").read_text()


def test_bundled_config_keeps_an_env_jwt_secret_and_never_a_literal(tmp_path: Path) -> None:
    table = '[functions.f]\nverify_jwt = "env(F_VERIFY)"\nentrypoint = "x.py"\n'
    referenced = tmp_path / "ref.toml"
    referenced.write_text(f'[auth]\njwt_secret = "env(MY_SECRET)"\n\n{table}')
    literal = tmp_path / "literal.toml"
    literal.write_text(f'[auth]\njwt_secret = "super-secret-literal-value-0123456789"\n{table}')
    kept = tomllib.loads(minimal_config(referenced, "f"))
    assert kept["auth"] == {"jwt_secret": "env(MY_SECRET)"}
    assert kept["functions"]["f"] == {"verify_jwt": "env(F_VERIFY)", "entrypoint": "../main.py"}
    dropped = minimal_config(literal, "f")
    assert "super-secret" not in dropped and "[auth]" not in dropped
    with pytest.raises(BundleError, match=r"no \[functions.g\]"):
        minimal_config(literal, "g")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_zip_matches_the_directory(dist: Path, name: str) -> None:
    with zipfile.ZipFile(dist / f"{name}.zip") as zf:
        zipped = {info.filename: zf.read(info) for info in zf.infolist()}
    assert zipped == files_of(dist / name)
    assert "main.py" in zipped  # at the root, where Cloud Functions looks for it


def test_bundling_again_gives_the_same_zip(dist: Path, tmp_path: Path) -> None:
    again = bundle(ROOT, "customers", tmp_path)
    assert again.archive.read_bytes() == (dist / "customers.zip").read_bytes()
    assert bundle(ROOT, "customers", tmp_path).archive.read_bytes() == again.archive.read_bytes()


def test_refuses_to_replace_a_directory_that_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "customers").mkdir()
    (tmp_path / "customers" / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="not a bundle"):
        bundle(ROOT, "customers", tmp_path)
    assert (tmp_path / "customers" / "notes.txt").read_text() == "mine"


def test_analysis_follows_lazy_imports_and_skips_what_never_runs(tmp_path: Path) -> None:
    (tmp_path / "functions" / "f").mkdir(parents=True)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "used.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import alembic\n"
        "def called():\n    import psycopg\n    return helper()\n"
        "def helper():\n    import yaml\n"
        "def never_called():\n    import sqlalchemy\n")
    (tmp_path / "pkg" / "unused.py").write_text("import click\n")
    (tmp_path / "functions" / "f" / "main.py").write_text(
        "from .sibling import go\n")
    (tmp_path / "functions" / "f" / "sibling.py").write_text(
        "def go():\n    from pkg.used import called\n    return called()\n")
    reach = analyse(tmp_path, "f")
    assert reach.third_party == {"psycopg", "yaml"}
    assert reach.packages == {"pkg"}
    assert tmp_path / "pkg" / "unused.py" not in reach.modules


def test_a_function_importing_the_cli_cannot_be_bundled(tmp_path: Path) -> None:
    (tmp_path / "functions" / "f").mkdir(parents=True)
    (tmp_path / "nxt_cli").mkdir()
    (tmp_path / "nxt_cli" / "__init__.py").write_text("")
    (tmp_path / "functions" / "f" / "main.py").write_text("import nxt_cli\n")
    with pytest.raises(BundleError, match="tooling"):
        analyse(tmp_path, "f")


# -- importable with nothing but the requirements -------------------------------------------------

_IMPORT_PROBE = """
import glob, importlib.abc, os, site, sys
allowed = set(sys.argv[1].split(","))
site_dirs = site.getsitepackages()
repository = {"shared", "timeseries", "nxt_cli", "migrations", "tests"}

def installed(top):
    return any(glob.glob(os.path.join(d, top)) or glob.glob(os.path.join(d, top + ".*"))
               for d in site_dirs)

class OnlyRequirements(importlib.abc.MetaPathFinder):
    # Refuses what this venv has installed (or the editable repository provides) beyond the
    # bundle's requirements; the stdlib and the bundle's own modules pass.
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in allowed or not (top in repository or installed(top)):
            return None
        raise ModuleNotFoundError(f"{name} is not provided by requirements.txt", name=name)

sys.meta_path.insert(0, OnlyRequirements())
from functions_framework import create_app
create_app(sys.argv[2], "main.py")
import shared, shared.supabase_config as config
here = os.getcwd()
assert shared.__file__.startswith(here), shared.__file__
assert str(config._find_config(os.environ)[0]).startswith(here)
print("ok")
"""


@pytest.mark.parametrize("name", FUNCTIONS)
def test_bundle_imports_with_nothing_but_its_requirements(dist: Path, name: str) -> None:
    directory = dist / name
    pinned = set(pin_lines(directory))  # the whole closure (test above)
    allowed = {top for top, dists in metadata.packages_distributions().items()
               if any(canonicalize_name(d) in pinned for d in dists)}
    allowed |= {"main", *(p.name for p in directory.iterdir() if (p / "__init__.py").exists())}
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, ",".join(sorted(allowed)), name.replace("-", "_")],
        cwd=directory, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


# -- deploy --dry-run ---------------------------------------------------------------------------

SENTINELS = {
    "DATABASE_URL": "postgresql://app:db-password-sentinel@db.example:5432/postgres",
    "TIMESERIES_DATABASE_URL": "postgresql://ts:ts-password-sentinel@ts.example:5432/ts",
    "SUPABASE_JWT_SECRET": "jwt-secret-sentinel-0123456789abcdefghijkl",
    "JWT_SECRET": "jwt-secret-other-sentinel-0123456789abcdef",
}


@pytest.fixture(scope="module")
def dry_run() -> str:
    env = clean_env(**SENTINELS, OPERATOR_ORGANIZATION_ID="7", JWT_AUDIENCE="authenticated,ops")
    env.pop("NXT_DEPLOY_REGION", None)
    done = run_nxt("deploy", "--dry-run", env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def deploy_line(output: str, name: str) -> str:
    lines = [line for line in output.splitlines()
             if line.startswith(f"gcloud functions deploy {name} ")]
    assert len(lines) == 1, output
    return lines[0]


def flag(line: str, name: str) -> str | None:
    import shlex

    values = [a.partition("=")[2] for a in shlex.split(line) if a.startswith(f"--{name}=")]
    return values[0] if values else None


def test_dry_run_never_prints_a_secret(dry_run: str) -> None:
    secrets = {**SENTINELS, "TEST": TEST_JWT_SECRET}
    for var in ("DATABASE_URL", "TIMESERIES_DATABASE_URL", "SUPABASE_JWT_SECRET", "JWT_SECRET"):
        if os.environ.get(var):
            secrets[f"real {var}"] = os.environ[var]
    for label, value in secrets.items():
        assert value not in dry_run, label
    assert "sentinel" not in dry_run and "password" not in dry_run


@pytest.mark.parametrize("name", FUNCTIONS)
def test_dry_run_deploys_each_function_with_its_trigger_and_secrets(
        dry_run: str, name: str) -> None:
    line = deploy_line(dry_run, name)
    target = name.replace("-", "_")
    for part in ("--gen2", "--runtime=python311", "--region=europe-west1",
                 f"--source=dist/{name}", f"--entry-point={target}"):
        assert f" {part}" in line, part
    if name in JOBS:
        assert f" --trigger-topic=nxt-{name}" in line and " --no-allow-unauthenticated" in line
        assert "--trigger-http" not in line
    else:
        assert " --trigger-http" in line and " --allow-unauthenticated" in line
        assert "--trigger-topic" not in line
        # As bench/sweep.py measured: many requests per instance on one worker and its pool.
        assert " --concurrency=16" in line and " --cpu=1" in line
    secrets = dict(s.split("=") for s in (flag(line, "set-secrets") or "").split(","))
    expected = {"DATABASE_URL": "nxt-database-url:latest",
                "TIMESERIES_DATABASE_URL": "nxt-timeseries-database-url:latest",
                "SUPABASE_JWT_SECRET": "nxt-jwt-secret:latest"}
    wanted = set()
    if name not in JOBS or name in {"snapshot-meters", "sync-orders", "grid-daily",
                                    "reconcile-check"}:
        wanted.add("DATABASE_URL")
    if name in TIMESERIES_PLANE:
        wanted.add("TIMESERIES_DATABASE_URL")
    if name not in JOBS:
        wanted.add("SUPABASE_JWT_SECRET")
    assert secrets == {k: expected[k] for k in wanted}
    env_vars = flag(line, "set-env-vars") or ""
    if name not in JOBS:
        # JWT_AUDIENCE holds a comma, so gcloud's alternate delimiter is used.
        assert env_vars.startswith("^@^")
        assert "JWT_AUDIENCE=authenticated,ops" in env_vars.removeprefix("^@^").split("@")
    if name in {"customers", "orders", "meter-consumption", "meter-consumption-2", "freshness"}:
        assert "OPERATOR_ORGANIZATION_ID=7" in env_vars
    else:
        assert "OPERATOR_ORGANIZATION_ID" not in env_vars


def test_dry_run_schedules_each_job_as_its_code_declares(dry_run: str) -> None:
    from nxt_cli.invoke import jobs

    declared = {n: t.__nxt_schedule__ for n, t in jobs(ROOT).items()}
    assert set(declared) == JOBS
    scheduler = [line for line in dry_run.splitlines() if line.startswith("gcloud scheduler")]
    assert len(scheduler) == len(JOBS)
    for name, schedule in declared.items():
        line = next(s for s in scheduler if f" nxt-{name} " in s)
        assert line.startswith(f"gcloud scheduler jobs create pubsub nxt-{name} ")
        assert flag(line, "schedule") == schedule.cron
        assert flag(line, "time-zone") == schedule.timezone
        assert flag(line, "topic") == f"nxt-{name}"
        assert flag(line, "message-body") == "{}"
        assert flag(line, "location") == "europe-west1"


def test_every_setting_marker_names_code_that_exists() -> None:
    # A renamed function would otherwise drop its variable from every deployment, silently.
    import ast

    from nxt_cli.deploy import SETTINGS

    defined: dict[str, set[str]] = {}
    for path in (ROOT / "shared").rglob("*.py"):
        tree = ast.parse(path.read_text())
        defined[".".join(path.relative_to(ROOT).with_suffix("").parts)] = {
            n.name for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    everywhere = set().union(*defined.values())
    for setting in SETTINGS:
        module, colon, name = setting.marker.partition(":")
        assert (name in defined.get(module, set())) if colon else (module in everywhere), setting


def test_region_comes_from_the_flag_or_the_environment() -> None:
    env = clean_env(NXT_DEPLOY_REGION="us-east4")
    from_env = run_nxt("deploy", "--dry-run", env=env)
    assert from_env.returncode == 0, from_env.stderr
    assert "--region=us-east4" in from_env.stdout and "europe-west1" not in from_env.stdout
    from_flag = run_nxt("deploy", "--dry-run", "--region", "asia-south1", env=env)
    assert "--region=asia-south1" in from_flag.stdout and "us-east4" not in from_flag.stdout
    bad = run_nxt("deploy", "--dry-run", "--region", "moon; rm -rf /", env=env)
    assert bad.returncode == 2 and "not a Google Cloud region" in bad.stderr


def test_disabled_functions_are_skipped_with_a_note(tmp_path: Path) -> None:
    import shutil

    from nxt_cli.bundle import enabled_functions

    ignore = shutil.ignore_patterns("__pycache__")
    for part in ("functions", "shared", "timeseries", "supabase"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    config = tmp_path / "supabase" / "config.toml"
    text = config.read_text()
    config.write_text(text.replace("[functions.orders]\nenabled = true",
                                   "[functions.orders]\nenabled = false"))
    names, notes = enabled_functions(tmp_path)
    assert "orders" not in names and set(names) == set(FUNCTIONS) - {"orders"}
    assert notes == ["skipped orders: enabled = false in supabase/config.toml"]


def test_deploy_refuses_clearly_without_gcloud(tmp_path: Path) -> None:
    env = clean_env(PATH=str(tmp_path))  # an empty directory: no gcloud on it
    done = run_nxt("deploy", env=env)
    assert done.returncode == 2
    assert "gcloud is not installed" in done.stderr


# -- the key tests: a fresh venv, the bundle alone ----------------------------------------------


@pytest.fixture(scope="session")
def bundle_venv(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Path]:
    """A virtual environment with only a bundle's requirements.txt installed, one per distinct
    requirements file in the session."""
    made: dict[str, Path] = {}

    def venv_for(directory: Path) -> Path:
        requirements = directory / "requirements.txt"
        # The same pins make the same environment, whatever their comments say (`direct` in
        # meter-readings, `via` elsewhere, for typing-extensions).
        pins = sorted(str(pin.requirement) for pin in pin_lines(directory).values())
        key = hashlib.sha256("\n".join(pins).encode()).hexdigest()[:12]
        if key not in made:
            path = tmp_path_factory.mktemp(f"venv-{key}")
            subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
            done = subprocess.run(
                [str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r",
                 str(requirements)], env=clean_env(), capture_output=True, text=True,
                timeout=900)
            assert done.returncode == 0, done.stderr[-4000:]
            made[key] = path
        return made[key]

    return venv_for


def unzip(archive: Path, into: Path) -> Path:
    """The deployable artifact, unpacked away from the repository and from dist/."""
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(into)
    return into


@contextmanager
def serve(directory: Path, venv: Path, name: str, **env: str) -> Iterator[Api]:
    """functions-framework from inside the bundle, in an environment built from scratch: no
    PYTHONPATH, no NXT_SUPABASE_CONFIG, K_SERVICE set as on Cloud Functions."""
    port = free_port()
    base = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(directory), "LANG": "C.UTF-8",
            "K_SERVICE": name, "SUPABASE_JWT_SECRET": TEST_JWT_SECRET}
    log_path = directory.parent / f"{name}.log"
    server = ServerProcess(
        [str(venv / "bin" / "functions-framework"), "--target", name.replace("-", "_"),
         "--source", "main.py", "--host", "127.0.0.1", "--port", str(port)],
        port, {**base, **env}, cwd=directory, log=log_path)
    try:
        server.start()
    except ServerError as exc:
        raise AssertionError(str(exc)) from None
    api = Api(server.url, TEST_JWT_SECRET, log_path)
    try:
        yield api
    finally:
        api.http.close()
        server.stop()


_LIST_DISTRIBUTIONS = """
import json
from importlib import metadata
print(json.dumps({d.metadata["Name"]: d.version for d in metadata.distributions()}))
"""


def venv_distributions(venv: Path, cwd: Path) -> dict[str, str]:
    """canonical name -> version of every distribution the venv's interpreter sees."""
    done = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", _LIST_DISTRIBUTIONS],
                          cwd=cwd, env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=120, check=True)
    return {canonicalize_name(n): v for n, v in json.loads(done.stdout).items()}


@pytest.mark.db
@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_fresh_venv_from_the_requirements_holds_the_pins_and_the_versions_tested_here(
        dist: Path, bundle_venv: Callable[[Path], Path], name: str, tmp_path: Path) -> None:
    pins = {key: pin.version for key, pin in pin_lines(dist / name).items()}
    installed = venv_distributions(bundle_venv(dist / name), tmp_path)
    # pip resolved nothing beyond the pins, and moved none of them.
    assert {k: v for k, v in installed.items() if k not in VENV_SEED or k in pins} == pins
    assert pins == {key: metadata.version(key) for key in pins}


def assert_repo_not_importable(venv: Path, cwd: Path) -> None:
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import shared"], cwd=cwd,
                           env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert probe.returncode != 0, "the fresh venv can import the repository's shared/"


@pytest.mark.db
def test_customers_bundle_serves_from_a_fresh_venv(
        dist: Path, bundle_venv: Callable[[Path], Path], functions_db: Seeded,
        tmp_path: Path) -> None:
    venv = bundle_venv(dist / "customers")
    assert_repo_not_importable(venv, tmp_path)
    directory = unzip(dist / "customers.zip", tmp_path / "customers")
    with serve(directory, venv, "customers", DATABASE_URL=functions_db.url) as api:
        resp = api.get("/", token=api.token(LENDER_ID))
        assert resp.status_code == 200, resp.text + api.log_path.read_text()[-3000:]
        body = resp.json()
        assert set(body) == {"total", "page", "size", "total_pages", "entries"}
        assert (body["page"], body["size"]) == (1, 100)
        assert body["total"] > 0 and body["total_pages"] == -(-body["total"] // 100)
        assert len(body["entries"]) == min(100, body["total"])
        assert all(set(e) == {"id", "full_name", "grid"} and e["full_name"] == MASK
                   for e in body["entries"])
        assert api.get("/").status_code == 401  # the gate holds without the gateway


@pytest.mark.db
def test_meter_consumption_bundle_serves_from_a_fresh_venv(
        dist: Path, bundle_venv: Callable[[Path], Path], functions_db: Seeded,
        functions_ts: str, tmp_path: Path) -> None:
    venv = bundle_venv(dist / "meter-consumption")
    directory = unzip(dist / "meter-consumption.zip", tmp_path / "meter-consumption")
    assert not (directory / "timeseries").exists()
    window = {"FROM": datetime(2001, 1, 1, tzinfo=UTC).isoformat(),
              "TO": datetime(2001, 1, 2, tzinfo=UTC).isoformat()}
    with serve(directory, venv, "meter-consumption", DATABASE_URL=functions_db.url,
               TIMESERIES_DATABASE_URL=functions_ts) as api:
        by_key = api.get("/", params=window,
                         headers={"X-API-Key": functions_db.api_keys[0][1]})
        by_jwt = api.get("/", params=window, token=api.token(AGGREGATOR_ID))
        for resp in (by_key, by_jwt):
            assert resp.status_code == 200, resp.text + api.log_path.read_text()[-3000:]
            assert resp.json() == {"total": 0, "offset": 0, "pageLimit": 20, "readings": [],
                                   "next_cursor": None}


@pytest.mark.db
def test_a_job_bundle_runs_from_a_fresh_venv_when_its_event_arrives(
        dist: Path, bundle_venv: Callable[[Path], Path], functions_ts: str,
        tmp_path: Path) -> None:
    venv = bundle_venv(dist / "freshness-check")
    directory = unzip(dist / "freshness-check.zip", tmp_path / "freshness-check")
    # What Pub/Sub delivers when Cloud Scheduler publishes `{}` (a binary-mode CloudEvent).
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-type":
               "google.cloud.pubsub.topic.v1.messagePublished", "ce-source":
               "//pubsub.googleapis.com/projects/p/topics/nxt-freshness-check",
               "content-type": "application/json"}
    with serve(directory, venv, "freshness-check", TIMESERIES_DATABASE_URL=functions_ts) as api:
        resp = api.post("/", headers=headers, json={"message": {"data": "e30="}})
        log = api.log_path.read_text()
        assert resp.status_code == 200, resp.text + log[-3000:]
    assert "job freshness-check:" in log


@pytest.mark.db
def test_a_bundle_without_a_jwt_secret_refuses_jwts_wherever_it_runs(
        dist: Path, bundle_venv: Callable[[Path], Path], functions_db: Seeded,
        tmp_path: Path) -> None:
    """Attack finding 10: off Cloud Run (no K_SERVICE) a function without a configured secret
    accepted tokens signed with Supabase's public local secret, which anyone can mint."""
    from nxt_cli.localkeys import supabase_local_jwt_secret
    from nxt_cli.seed import demo_user_id
    from nxt_cli.tokens import mint_token

    venv = bundle_venv(dist / "customers")
    directory = unzip(dist / "customers.zip", tmp_path / "customers")
    forged = mint_token(supabase_local_jwt_secret(), role="authenticated",
                        sub=demo_user_id(LENDER_ID), organization_id=LENDER_ID,
                        organization_type="LENDER")
    with serve(directory, venv, "customers", DATABASE_URL=functions_db.url, K_SERVICE="",
               SUPABASE_JWT_SECRET="") as api:
        for _ in range(3):
            resp = api.get("/", headers={"Authorization": f"Bearer {forged}"})
            assert resp.status_code == 503, resp.text
            assert resp.headers.get("retry-after")
        log = api.log_path.read_text()
    assert log.count("JWT verification is not configured") == 1, log[-3000:]
