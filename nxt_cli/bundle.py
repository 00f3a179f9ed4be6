"""`nxt bundle <name>`: one function as a self-contained deployable directory, and its zip.

`dist/<name>/` holds what `functions-framework --target <target> --source main.py`, run from
inside it, needs, and nothing else:

- `main.py` and the other files of `functions/<name>/` (its sibling modules); for an alias (a
  config table whose entrypoint is another function's main.py, as `meter-consumption-2`),
  the files of that function's directory;
- `shared/`, and every other first-party package the function's code reaches (`timeseries/` for
  the functions that import it), without `__pycache__`, tests or alembic migrations;
- `supabase/config.toml` with only `[functions.<name>]`, and the tables of the other names the
  same main.py serves (importing main.py reads each of its gates' tables), and `[auth]
  jwt_secret` when it is an `env(...)` reference, never a literal: `shared.supabase_config`
  finds it by walking up from the working directory, and failing that from the bundled
  `shared/`, so nothing has to point at it;
- `requirements.txt`: the whole dependency closure the function runs on, each distribution
  pinned (`==`) to the version installed here, where its tests ran, so a deploy's `pip install`
  adds nothing unpinned: the distributions the function's code imports, functions-framework and
  Starlette (marked `direct`, with the extras pyproject.toml asks of them, as
  `psycopg[binary,pool]`), and everything they require, recursively (flask, uvicorn, anyio,
  psycopg-binary, cryptography, cffi, ...), each with `# via` the pins requiring it. The
  requirements are read from the installed distributions' metadata, their environment markers
  evaluated for the interpreter running `nxt bundle`, which is to be the deploy's runtime
  (Python 3.11 on Linux); the header names it;
- `__pycache__/` bytecode of every module above, checked against its source's hash (PEP 552),
  and a `.gcloudignore` that uploads it (gcloud's default for Python leaves `__pycache__`
  out). The platform's build compiles the installed requirements but not the function's
  source, so without it every cold start compiles the bundle's ~40 modules first. A
  checked-hash file is used only while its source is byte for byte the one it was compiled
  from: an edit made in the bundle afterwards is compiled at import instead, never served
  stale. Written only when the interpreter running `nxt bundle` is the deploy's (`RUNTIME`):
  another version's bytecode would be ignored anyway.

What a function's code reaches is worked out statically with `ast`, lazy imports included, per
top-level definition rather than per module: `timeseries.engine` imports SQLAlchemy only inside
`make_engine`, which no function calls, so no function ships SQLAlchemy. Imports under
`if TYPE_CHECKING:` never run and are not followed.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from nxt_cli.functions import function_sources

# Always installed: it is the server that loads main.py, whether or not the code imports it.
FRAMEWORK = "functions-framework"
# What functions_framework.aio, which every function is written against, serves with: a direct
# pin even for a job whose own code never imports it (the closure of functions-framework would
# pin it anyway, but a reader should see that the code relies on it).
ASGI = "starlette"
# Every function carries the runtime package, even one whose code never reaches it.
ALWAYS_BUNDLED = ("shared",)
# First-party packages that are tooling: a function importing them cannot be deployed.
NEVER_BUNDLED = frozenset({"nxt_cli", "tests", "bench"})
# Never copied: caches, tests, and alembic environments (migrations run from `nxt`, not from a
# function).
SKIPPED_DIRS = frozenset({"__pycache__", "tests", "migrations", ".pytest_cache", ".ruff_cache"})
# The Cloud Functions runtime the bundles are built for (`nxt deploy` asks for it).
RUNTIME = "python311"
# Replaces gcloud's default ignore list, which leaves __pycache__ out of the upload.
GCLOUDIGNORE = """\
# Written by nxt bundle: upload every file here, __pycache__ included (checked-hash bytecode of
# the bundle's own modules, so a cold start does not compile them).
.gcloudignore
"""
# Zip entries get one fixed time, so the same bundle always zips to the same bytes.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_FN = "@fn"  # the pseudo-package a function's own modules are named under
_ENV_REF = re.compile(r"env\((.*)\)")  # as shared.supabase_config reads references
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class BundleError(Exception):
    """A function cannot be bundled; the message says why and what to change."""


# -- what a function's code reaches -------------------------------------------------------------

Key = tuple[str, str]  # (module, unit): unit "" is the module's import-time code, "*" all of it


@dataclass
class _Unit:
    reaches: set[Key] = field(default_factory=set)  # first-party code its imports name
    third_party: set[str] = field(default_factory=set)  # top-level modules it imports
    names: set[str] = field(default_factory=set)  # names and attribute names it reads


@dataclass(frozen=True)
class Reach:
    """What running a function may execute, as far as the source shows."""

    packages: frozenset[str]  # first-party top-level packages, e.g. {"shared", "timeseries"}
    third_party: frozenset[str]  # top-level modules not in the stdlib, e.g. {"psycopg"}
    names: frozenset[str]  # every name and attribute name the reached code reads
    units: frozenset[Key]  # the definitions reached ("" for a module's import-time code)
    modules: frozenset[Path]  # files of the first-party modules reached

    def touches(self, marker: str) -> bool:
        """Whether reached code reads `marker`: a name, or "module:definition" reached."""
        module, colon, unit = marker.partition(":")
        return (module, unit) in self.units if colon else marker in self.names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(nodes: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """ast.walk over several nodes, skipping `if TYPE_CHECKING:` bodies (they never run)."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


class _Analysis:
    def __init__(self, root: Path, function_dir: Path) -> None:
        self.root = root
        self.function_dir = function_dir
        self._units: dict[str, dict[str, _Unit]] = {}
        self._paths: dict[str, Path] = {}

    def locate(self, module: str) -> Path | None:
        """The file of a first-party module (dotted; the function's own under `@fn.`)."""
        parts = module.split(".")
        if parts[0] == _FN:
            stem = self.function_dir.joinpath(*parts[1:])
        else:
            stem = self.root.joinpath(*parts)
        for candidate in (stem.with_suffix(".py"), stem / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    def is_first_party(self, top: str) -> bool:
        return top == _FN or self.locate(top) is not None

    def units(self, module: str) -> dict[str, _Unit]:
        if module not in self._units:
            path = self.locate(module)
            if path is None:
                raise BundleError(f"cannot find module {module} (imported by the function's code)")
            self._paths[module] = path
            self._units[module] = self._parse(module, path)
        return self._units[module]

    def _parse(self, module: str, path: Path) -> dict[str, _Unit]:
        tree = ast.parse(path.read_bytes(), filename=str(path))
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        import_time: list[ast.AST] = []
        units: dict[str, _Unit] = {}
        for stmt in tree.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                # Decorators and defaults run at import; the body only when called.
                import_time += [*stmt.decorator_list, *stmt.args.defaults,
                                *(d for d in stmt.args.kw_defaults if d is not None)]
                units[stmt.name] = self._unit([stmt], package)
            elif isinstance(stmt, ast.ClassDef):
                import_time += [*stmt.decorator_list, *stmt.bases, *stmt.keywords,
                                *(s for s in stmt.body if not isinstance(
                                    s, ast.FunctionDef | ast.AsyncFunctionDef))]
                units[stmt.name] = self._unit([stmt], package)
            elif not _is_main_guard(stmt):
                import_time.append(stmt)
        units[""] = self._unit(import_time, package)
        return units

    def _unit(self, nodes: list[ast.AST], package: str) -> _Unit:
        unit = _Unit()
        for node in _walk(nodes):
            if isinstance(node, ast.Name):
                unit.names.add(node.id)
            elif isinstance(node, ast.Attribute):
                unit.names.add(node.attr)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self._import(unit, alias.name, None)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve_relative(node, package)
                for alias in node.names:
                    self._import(unit, base, alias.name)
        return unit

    def _import(self, unit: _Unit, module: str, name: str | None) -> None:
        top = module.partition(".")[0]
        if top in sys.stdlib_module_names:
            return
        if not self.is_first_party(top):
            unit.third_party.add(top)
            return
        if top in NEVER_BUNDLED:
            raise BundleError(f"the function's code imports {module}, which is tooling and is"
                              " never deployed")
        if name is None or name == "*":
            unit.reaches.add((module, "*"))  # used through attributes we do not follow
        elif self.locate(f"{module}.{name}") is not None:
            unit.reaches.add((f"{module}.{name}", "*"))  # `from shared import db`
        else:
            unit.reaches.add((module, name))

    def own_modules(self) -> list[str]:
        """The function's own modules (main and its siblings): all of them are its code."""
        paths = [p for p in sorted(self.function_dir.rglob("*.py")) if not _skipped(p)]
        return [".".join((_FN, *p.relative_to(self.function_dir).with_suffix("").parts))
                for p in paths]

    def run(self) -> Reach:
        queue: list[Key] = [(module, "*") for module in self.own_modules()]
        seen: set[Key] = set()
        third_party: set[str] = set()
        names: set[str] = set()
        while queue:
            key = queue.pop()
            if key in seen:
                continue
            seen.add(key)
            module, name = key
            units = self.units(module)
            if name == "*":
                queue += [(module, n) for n in units]
                continue
            if name not in units:  # a constant or a re-exported name: importing runs it
                queue.append((module, ""))
                continue
            # A definition runs only once its module, and the packages above it, are imported.
            parents = module.split(".")
            queue += [(".".join(parents[:i]), "") for i in range(1, len(parents) + 1)
                      if parents[0] != _FN]
            unit = units[name]
            queue += sorted(unit.reaches)
            queue += [(module, n) for n in unit.names if n in units and n]
            third_party |= unit.third_party
            names |= unit.names
        packages = {m.partition(".")[0] for m, _ in seen} - {_FN}
        return Reach(packages=frozenset(packages), third_party=frozenset(third_party),
                     names=frozenset(names), units=frozenset(k for k in seen if k[1] != "*"),
                     modules=frozenset(self._paths.values()))


def _is_main_guard(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.If) and isinstance(stmt.test, ast.Compare)
            and isinstance(stmt.test.left, ast.Name) and stmt.test.left.id == "__name__")


def _resolve_relative(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def function_dir(root: Path, name: str) -> Path:
    """The directory of function `name`'s code: its own, or for an alias the directory of the
    main.py its entrypoint names."""
    source = function_sources(root).get(name)
    return source.parent if source is not None else root / "functions" / name


def served_by(root: Path, name: str) -> list[str]:
    """Every function name served by the main.py `name` is served by, `name` first."""
    sources = function_sources(root)
    if name not in sources:
        return [name]
    return [name, *(n for n, p in sources.items() if p == sources[name] and n != name)]


def analyse(root: Path, name: str) -> Reach:
    """What function `name` of checkout `root` reaches: its packages, imports and names."""
    return _Analysis(root, function_dir(root, name)).run()


# -- requirements -------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Pin:
    """One line of a bundle's requirements.txt, and why it is there."""

    name: str  # canonical (PEP 503), as pip-tools writes it: the same spelling in `via`
    version: str
    extras: tuple[str, ...] = ()  # only on direct pins: what pyproject.toml asks of them
    direct: bool = False  # the code imports it, or it is what serves the code
    via: tuple[str, ...] = ()  # canonical names of the pinned distributions that require it

    def __str__(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.name}{extras}=={self.version}"

    def line(self) -> str:
        """The pin with pip-tools' kind of comment (pip ignores ` #` to the end of a line)."""
        reasons = (["direct"] if self.direct else []) + (
            [f"via {', '.join(self.via)}"] if self.via else [])
        return f"{self}  # {'; '.join(reasons)}"


def declared_extras(root: Path) -> dict[str, tuple[str, ...]]:
    """The extras pyproject.toml asks of each runtime dependency: psycopg -> (binary, pool)."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    extras: dict[str, set[str]] = {}
    for line in project.get("dependencies", []):
        requirement = Requirement(line)
        extras.setdefault(canonicalize_name(requirement.name), set()).update(requirement.extras)
    return {key: tuple(sorted(wanted)) for key, wanted in extras.items() if wanted}


def _installed(name: str) -> metadata.Distribution:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise BundleError(f"{name} is not installed in this environment") from None


def _requires(dist: metadata.Distribution, extras: Iterable[str]) -> list[Requirement]:
    """What `dist[extras]` requires on this interpreter and platform: each requirement whose
    environment marker holds here, with no extra or with one of `extras`."""
    held: list[Requirement] = []
    for line in dist.requires or []:
        requirement = Requirement(line)
        marker = requirement.marker
        # One extra at a time, as pip evaluates them; "" stands for the base requirements.
        if marker is None or any(marker.evaluate({"extra": e}) for e in ("", *extras)):
            held.append(requirement)
    return held


def _check_installed(requirement: Requirement, dist: metadata.Distribution,
                     parent: str | None) -> None:
    # Pins that contradict each other would fail on the deploy's pip install, not here.
    if not requirement.specifier.contains(dist.version, prereleases=True):
        wanted = f"{parent} requires {requirement}" if parent else f"{requirement} is wanted"
        raise BundleError(f"{wanted}, but {dist.version} is installed here (run `pip check`)")


def closure(direct: dict[str, tuple[str, ...]]) -> list[Pin]:
    """Pins of the distributions `direct` names (name -> the extras asked of it) and of
    everything they require, recursively, at the versions installed here."""
    todo: list[tuple[str | None, Requirement]] = [
        (None, Requirement(f"{name}[{','.join(extras)}]" if extras else name))
        for name, extras in direct.items()]
    dists: dict[str, metadata.Distribution] = {}
    walked: dict[str, set[str]] = {}  # canonical name -> the extras its requirements were read with
    via: dict[str, set[str]] = {}
    while todo:
        parent, requirement = todo.pop()
        key = canonicalize_name(requirement.name)
        if key not in dists:
            dists[key] = _installed(requirement.name)
        _check_installed(requirement, dists[key], parent)
        if parent is not None:
            via.setdefault(key, set()).add(parent)
        # Read again when new extras are asked of it (uvicorn, then uvicorn[standard]).
        if key in walked and requirement.extras <= walked[key]:
            continue
        walked[key] = walked.get(key, set()) | requirement.extras
        todo += [(key, r) for r in _requires(dists[key], sorted(walked[key]))]
    direct_keys = {canonicalize_name(name): extras for name, extras in direct.items()}
    return sorted(
        Pin(key, dist.version, direct_keys.get(key, ()), key in direct_keys,
            tuple(sorted(via.get(key, ()))))
        for key, dist in dists.items())


def _direct(root: Path, third_party: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The distributions providing `third_party` imports, functions-framework and Starlette,
    each with the extras pyproject.toml asks of it."""
    providers = metadata.packages_distributions()
    dists = {FRAMEWORK, ASGI}
    for top in third_party:
        if top not in providers:
            raise BundleError(f"no installed distribution provides the module {top!r}")
        dists.update(providers[top])  # a namespace package may come from several
    extras = declared_extras(root)
    # A distribution the project gets as an extra of another (psycopg-pool, from psycopg[pool])
    # works through that other one, which it need not declare: psycopg-pool imports psycopg
    # without depending on it.
    needed = {canonicalize_name(d) for d in dists}
    for parent, wanted in extras.items():
        dist = _installed(parent)
        base = {canonicalize_name(r.name) for r in _requires(dist, ())}
        added = {canonicalize_name(r.name) for r in _requires(dist, wanted)} - base
        if needed & added:
            dists.add(parent)
    return {name: extras.get(canonicalize_name(name), ()) for name in sorted(dists)}


def requirements(root: Path, third_party: Iterable[str]) -> list[Pin]:
    """The whole closure a function runs on, pinned: the distributions providing its
    `third_party` imports, functions-framework and Starlette, with the extras pyproject.toml
    asks of them (psycopg[binary,pool], pyjwt[crypto]), and all they require (flask, anyio,
    psycopg-binary, cryptography -> cffi -> pycparser, ...)."""
    return closure(_direct(root, third_party))


def requirements_txt(name: str, pins: Iterable[Pin]) -> str:
    """The bundle's requirements.txt: a header saying what the comments mean, a pin a line."""
    python = f"Python {sys.version_info.major}.{sys.version_info.minor}, {sys.platform}"
    header = [f"# {name}: every distribution it runs on ({python}), pinned to the version",
              "# `nxt bundle` found installed, the one its tests ran against.",
              "# `direct`: its code imports it, or it serves the code; `via X`: pinned X requires"
              " it.", ""]
    return "\n".join([*header, *(p.line() for p in pins)]) + "\n"


# -- the bundled config -------------------------------------------------------------------------


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_value(key)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string (the escapes json.dumps emits are TOML's).
        return json.dumps(value, ensure_ascii=False)
    raise BundleError(f"unexpected value {value!r} in the function's config table")


def minimal_config(config_path: Path, name: str, also: Iterable[str] = ()) -> str:
    """config.toml for the bundle: the function's own table and those of `also` (the other
    names its main.py serves, whose gates read their tables when it is imported), each with
    the entrypoint pointing at the bundle's main.py, and `[auth] jwt_secret` only when it is an
    `env(...)` reference."""
    raw = tomllib.loads(config_path.read_text(encoding="utf-8-sig"))
    lines = [f"# supabase/config.toml of the {name} bundle, written by `nxt bundle`: only what",
             "# the function reads at run time. Edit the project's config.toml, not this.", ""]
    secret = raw.get("auth", {}).get("jwt_secret")
    if isinstance(secret, str) and _ENV_REF.fullmatch(secret):
        lines += ["[auth]", f"jwt_secret = {_toml_value(secret)}", ""]
    for n, each in enumerate((name, *also)):
        table = raw.get("functions", {}).get(each)
        if not isinstance(table, dict):
            raise BundleError(f"{config_path}: no [functions.{each}] table (run `nxt check`)")
        if n:
            lines += ["", "# Served by the same main.py (its gate reads this table at import)."]
        lines.append(f"[functions.{_toml_key(each)}]")
        # import_map and static_files are Deno bundler settings; the Python runtime never
        # reads them.
        for key in ("enabled", "verify_jwt"):
            if key in table:
                lines.append(f"{key} = {_toml_value(table[key])}")
        lines.append('entrypoint = "../main.py"')
    return "\n".join(lines) + "\n"


# -- writing the bundle -------------------------------------------------------------------------


@dataclass(frozen=True)
class Bundle:
    name: str
    directory: Path
    archive: Path
    pins: tuple[Pin, ...]
    packages: tuple[str, ...]
    files: int
    size: int  # bytes of the directory's files
    archive_size: int


def _skipped(path: Path) -> bool:
    name = path.name
    return (name.endswith((".pyc", ".pyo")) or name == "conftest.py"
            or (name.startswith("test_") and name.endswith(".py")) or name.endswith("_test.py"))


def _ignore(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n in SKIPPED_DIRS or _skipped(Path(directory, n))}


def _clear(target: Path) -> None:
    """Remove a previous bundle; refuse to delete a directory that is something else."""
    if not target.exists():
        return
    looks_like_bundle = (target / "requirements.txt").is_file() and (target / "main.py").is_file()
    if not (looks_like_bundle or (target.is_dir() and not any(target.iterdir()))):
        raise BundleError(f"{target} exists and is not a bundle; refusing to replace it")
    shutil.rmtree(target)


def compile_modules(directory: Path) -> bool:
    """Checked-hash bytecode beside every module of `directory`, when this interpreter is the
    deploy's runtime; False (and nothing written) otherwise.

    In a fresh interpreter with a fixed hash seed, the file names recorded relative to the
    bundle: the same sources give the same bytes wherever they are bundled (marshal's output
    depends on the compiling process's state and a frozenset's order on the seed). The import
    system replaces the recorded name with the file's real path when it loads the bytecode."""
    if f"python{sys.version_info.major}{sys.version_info.minor}" != RUNTIME:
        return False
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-d", ".", "--invalidation-mode",  # noqa: S603
                    "checked-hash", str(directory)], check=True,
                   env={**os.environ, "PYTHONHASHSEED": "0"})
    return True


def write_zip(directory: Path, archive: Path) -> Path:
    """Zip the directory's files at the archive's root, in a fixed order with fixed times."""
    partial = archive.with_name(archive.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    partial.replace(archive)
    return archive


def bundle(root: Path, name: str, out: Path) -> Bundle:
    """Write `out/<name>/` and `out/<name>.zip` for function `name` of checkout `root`."""
    source = function_dir(root, name)
    if not (source / "main.py").is_file():
        raise BundleError(f"no function {name!r} (functions/{name}/main.py)")
    config = minimal_config(root / "supabase" / "config.toml", name, served_by(root, name)[1:])
    reach = analyse(root, name)
    for path in reach.modules:
        if any(part in SKIPPED_DIRS for part in path.relative_to(root).parts):
            raise BundleError(f"the function reaches {path.relative_to(root)}, which bundles"
                              " leave out")
    pins = requirements(root, reach.third_party)
    packages = tuple(sorted(set(ALWAYS_BUNDLED) | reach.packages))
    target = out / name
    for source_dir in (source, *(root / p for p in packages)):
        if target.resolve().is_relative_to(source_dir.resolve()):
            raise BundleError(f"{out} is inside {source_dir}, which the bundle copies")
    _clear(target)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, ignore=_ignore)
    for package in packages:
        if (target / package).exists():
            raise BundleError(f"functions/{source.name}/{package} would hide the {package}"
                              " package")
        shutil.copytree(root / package, target / package, ignore=_ignore)
    for own in ("supabase", "requirements.txt"):
        if (target / own).exists():
            raise BundleError(f"functions/{source.name}/{own} clashes with what the bundle"
                              " writes")
    (target / "supabase").mkdir()
    (target / "supabase" / "config.toml").write_text(config)
    (target / "requirements.txt").write_text(requirements_txt(name, pins))
    (target / ".gcloudignore").write_text(GCLOUDIGNORE)
    compile_modules(target)
    archive = write_zip(target, out / f"{name}.zip")
    files = [p for p in target.rglob("*") if p.is_file()]
    return Bundle(name=name, directory=target, archive=archive, pins=tuple(pins),
                  packages=packages, files=len(files), size=sum(p.stat().st_size for p in files),
                  archive_size=archive.stat().st_size)


def enabled_functions(root: Path) -> tuple[list[str], list[str]]:
    """(functions to bundle and deploy, notes on those skipped), in name order."""
    from nxt_cli.config_lint import load_config
    from shared.supabase_config import ConfigError

    config = load_config(root / "supabase" / "config.toml")
    names, notes = [], []
    for name in function_sources(root, config):
        if name not in config.function_names():
            notes.append(f"skipped {name}: no [functions.{name}] in supabase/config.toml"
                         " (run `nxt check`)")
            continue
        try:
            enabled = config.function(name).enabled
        except ConfigError as exc:
            raise BundleError(str(exc)) from None
        if enabled:
            names.append(name)
        else:
            notes.append(f"skipped {name}: enabled = false in supabase/config.toml")
    return names, notes


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def run(root: Path, args: argparse.Namespace) -> int:
    """`nxt bundle`: print one line per bundle, notes for skipped functions; exit 1 on error."""
    out = Path(args.out) if args.out else root / "dist"
    if args.all == bool(args.name):
        print("nxt bundle: name one function, or pass --all", file=sys.stderr)
        return 2
    try:
        names, notes = enabled_functions(root) if args.all else ([args.name], [])
        for note in notes:
            print(note)
        for name in names:
            b = bundle(root, name, out)
            print(f"{b.directory}: {b.files} files, {_size(b.size)}; {b.archive}"
                  f" {_size(b.archive_size)}; packages {', '.join(b.packages)}; requires"
                  f" {', '.join(p.name for p in b.pins if p.direct)} and the"
                  f" {sum(not p.direct for p in b.pins)} they depend on")
    except BundleError as exc:
        print(f"nxt bundle: {exc}", file=sys.stderr)
        return 1
    return 0
