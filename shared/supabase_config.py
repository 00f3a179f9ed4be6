"""Read ``supabase/config.toml``, the Supabase CLI's project config.

The Supabase CLI owns the file's format; this module reads the parts the Python side needs (each
function's ``[functions.<name>]`` table, ports, JWT settings) and leaves the rest alone, so a file
written by the CLI for any project reads without complaint.

Errors name the file, table and key, because the person who has to fix them is editing that
file. tomllib reports no positions for values, and the scan of the text that finds lines is
tooling a deployed function never needs, so it lives in nxt_cli/config_lint.py: `nxt` passes its
``Locator`` to ``load_config`` and its errors name the line too; a function's cold start
(``function_settings``) scans nothing.

Validation is deliberately lazy and per table: a function reads only its own table at cold start
(``function_settings``), so a typo in another function's table, or an ``env(...)`` variable only
another service needs, cannot take it down.

Stdlib only and cheap to import: every deployed function imports this at cold start.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG_ENV_VAR",
    "ENV_REF",
    "FUNCTION_KEYS",
    "ConfigError",
    "FunctionConfig",
    "FunctionNotFoundError",
    "Locate",
    "Locator",
    "SupabaseConfig",
    "format_table",
    "function_settings",
    "load_config",
]

CONFIG_ENV_VAR = "NXT_SUPABASE_CONFIG"

# The keys the Supabase CLI defines for a [functions.<name>] table; anything else is most likely a
# typo (verfiy_jwt) that the CLI would silently ignore, so it is reported, not rejected.
FUNCTION_KEYS = frozenset({"enabled", "verify_jwt", "import_map", "entrypoint", "static_files"})

# Same pattern as the Supabase CLI (pkg/config/decode_hooks.go), so both read the same values as
# references; fullmatch, because Go's `$` does not match before a trailing newline. Public, so
# that the tooling listing references (nxt_cli/config_lint.py) reads them the same way.
ENV_REF = re.compile(r"env\((.*)\)")

# The line of a table's header (key None) or of one of its keys, None when not known; the table
# is a path of unquoted parts, () for the top level.
Locate = Callable[[tuple[str, ...], str | None], int | None]
# Makes a Locate from a file's text.
Locator = Callable[[str], Locate]

# Not resolve(): a bundle may reach its `shared/` through a symlink, and the config it ships sits
# beside the link, not beside the link's target.
_MODULE_DIR = Path(__file__).absolute().parent


class ConfigError(Exception):
    """A problem with supabase/config.toml, located as precisely as known.

    ``table`` is the dotted table path as TOML spells it (``functions.orders``; ``""`` for the
    top level), or None when the problem is not about one table.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        line: int | None,
        key: str | None,
        message: str,
        table: str | None = None,
    ) -> None:
        # Passing every field to Exception keeps the error picklable (args are replayed into
        # __init__), which matters when it crosses a process boundary.
        super().__init__(os.fspath(path), line, key, message, table)
        self.path: str = os.fspath(path)
        self.line: int | None = line
        self.key: str | None = key
        self.message: str = message
        self.table: str | None = table

    def __str__(self) -> str:
        location = self.path if self.line is None else f"{self.path}:{self.line}"
        if self.table and self.key:
            subject = f"[{self.table}] {self.key}: "
        elif self.table:
            subject = f"[{self.table}]: "
        elif self.key:
            subject = f"{self.key}: "
        else:
            subject = ""
        return f"{location}: {subject}{self.message}"


class FunctionNotFoundError(ConfigError, KeyError):
    """No ``[functions.<name>]`` table; also a KeyError, as for any missing mapping key."""


@dataclass(frozen=True)
class FunctionConfig:
    """One ``[functions.<name>]`` table, with the Supabase CLI's defaults filled in."""

    name: str
    enabled: bool = True
    verify_jwt: bool = True
    entrypoint: str | None = None
    import_map: str | None = None
    static_files: tuple[str, ...] = ()
    unknown_keys: tuple[str, ...] = ()
    line: int | None = None

    def entrypoint_path(self, config_dir: Path | str) -> Path | None:
        """The entrypoint as a path, given the directory holding config.toml (supabase/)."""
        if self.entrypoint is None:
            return None
        # normpath, not resolve(): collapse the "../" the config is written with, as the CLI's
        # filepath.Join does, without following symlinks or requiring the file to exist.
        return Path(os.path.normpath(Path(config_dir) / self.entrypoint))


@dataclass(frozen=True)
class SupabaseConfig:
    """The project-wide settings of a config.toml, plus lazy access to the rest.

    ``jwt_secret_raw`` and ``raw`` hold values as written, ``env(...)`` references included;
    ``jwt_secret()``, ``function()`` and ``functions()`` resolve them when asked. ``env`` is the
    environment given to ``load_config``; None means ``os.environ``, read at each call.
    ``locator`` is the one given to ``load_config``: without one, nothing is located by line.
    """

    path: Path
    project_id: str | None = None
    api_port: int = 54321
    db_port: int = 54322
    db_major_version: int = 15
    jwt_expiry: int = 3600
    jwt_secret_raw: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    text: str = field(default="", repr=False)
    env: Mapping[str, str] | None = field(default=None, repr=False, compare=False)
    locator: Locator | None = field(default=None, repr=False, compare=False)
    _doc: _Document = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen, so the helper that answers lookups is attached the only way frozen allows.
        doc = _Document(self.path, self.text, self.raw, self.locator)
        object.__setattr__(self, "_doc", doc)

    @property
    def config_dir(self) -> Path:
        """The supabase/ directory: what the file's relative paths are relative to."""
        return self.path.parent

    def jwt_secret(self, env: Mapping[str, str] | None = None) -> str | None:
        """``[auth] jwt_secret`` with ``env(...)`` resolved; None when the file sets none.

        None means the Supabase CLI uses its well-known local secret. A reference to an unset
        variable raises rather than returning None, since silently falling back to the public
        local secret would accept tokens anyone can mint.
        """
        if not self.jwt_secret_raw:
            return None
        return self._doc.resolve(self.jwt_secret_raw, ("auth",), "jwt_secret", self._env(env))

    def function(self, name: str, env: Mapping[str, str] | None = None) -> FunctionConfig:
        """The validated ``[functions.<name>]`` table; FunctionNotFoundError when absent."""
        return _read_function(self._doc, name, self._env(env))

    def function_names(self) -> list[str]:
        """Names of the ``[functions.*]`` tables, in file order, without validating them."""
        return list(self._doc.table(("functions",)))

    def functions(self, env: Mapping[str, str] | None = None) -> dict[str, FunctionConfig]:
        """Every function table, validated; raises on the first bad one.

        A checker wanting every problem should loop over ``function_names()`` instead.
        """
        environ = self._env(env)
        return {name: _read_function(self._doc, name, environ) for name in self.function_names()}

    def locate(self, table: tuple[str, ...], key: str | None = None) -> int | None:
        """Line of a table's header, or of one of its keys; None if unknown or unlocated."""
        return self._doc.locate(table, key)

    def _env(self, env: Mapping[str, str] | None) -> Mapping[str, str]:
        if env is not None:
            return env
        return self.env if self.env is not None else os.environ


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    locator: Locator | None = None,
) -> SupabaseConfig:
    """Read and check the project-wide settings of config.toml.

    With no ``path``: ``$NXT_SUPABASE_CONFIG``, else the first ``supabase/config.toml`` walking up
    from the working directory, else walking up from this module (a bundled function ships
    ``supabase/config.toml`` beside its ``shared/``). ``env`` stands in for ``os.environ``, both
    for that lookup and for ``env(...)`` values. ``locator`` gives errors and tables their lines.
    """
    environ = env if env is not None else os.environ
    config_path, origin = (Path(path), None) if path is not None else _find_config(environ)
    doc = _read_document(config_path, origin, locator)
    api, db, auth = doc.table(("api",)), doc.table(("db",)), doc.table(("auth",))
    jwt_secret_raw = auth.get("jwt_secret")
    if jwt_secret_raw is not None and not isinstance(jwt_secret_raw, str):
        raise doc.error(
            f"expected a string, got {_describe(jwt_secret_raw)}", ("auth",), "jwt_secret"
        )
    return SupabaseConfig(
        path=config_path,
        project_id=doc.get_str(doc.raw, (), "project_id", environ),
        api_port=doc.get_int(api, ("api",), "port", 54321, environ, port=True),
        db_port=doc.get_int(db, ("db",), "port", 54322, environ, port=True),
        db_major_version=doc.get_int(db, ("db",), "major_version", 15, environ),
        jwt_expiry=doc.get_int(auth, ("auth",), "jwt_expiry", 3600, environ),
        jwt_secret_raw=jwt_secret_raw,
        raw=doc.raw,
        text=doc.text,
        env=env,
        locator=locator,
    )


# A process serves one function, so a handful of entries is plenty; the bound only guards against
# a caller passing request data as the name.
@functools.lru_cache(maxsize=32)
def function_settings(name: str) -> FunctionConfig:
    """This function's ``[functions.<name>]`` table, read once per process at cold start.

    Reads only that table, so nothing else in the file can fail it. Failures are not cached, and
    name no line: a deployed function carries no line scanner (``nxt check`` names it). The file
    and environment are read on the first call; ``function_settings.cache_clear()`` makes the
    next call read them again.
    """
    config_path, origin = _find_config(os.environ)
    return _read_function(_read_document(config_path, origin), name, os.environ)


# --- reading ------------------------------------------------------------------------------------


def _find_config(environ: Mapping[str, str]) -> tuple[Path, str | None]:
    """The config path to use and, when it came from the environment, which variable named it."""
    named = environ.get(CONFIG_ENV_VAR)
    if named:
        return Path(named), CONFIG_ENV_VAR
    starts: list[Path] = []
    try:
        starts.append(Path.cwd())
    except OSError:
        pass  # the working directory was deleted under us; the module's own location still works
    starts.append(_MODULE_DIR)
    for start in starts:
        for directory in (start, *start.parents):
            candidate = directory / "supabase" / "config.toml"
            if candidate.is_file():
                return candidate, None
    looked = " nor ".join(f"in {start} or its parents" for start in starts)
    raise ConfigError(
        "supabase/config.toml",
        None,
        None,
        f"not found: {CONFIG_ENV_VAR} is not set, and there is no supabase/config.toml {looked}",
    )


def _read_document(
    path: Path, origin: str | None = None, locator: Locator | None = None
) -> _Document:
    named_by = f" (named by {origin})" if origin else ""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(path, None, None, f"file not found{named_by}") from exc
    except IsADirectoryError as exc:
        raise ConfigError(path, None, None, f"is a directory, not a file{named_by}") from exc
    except OSError as exc:
        raise ConfigError(path, None, None, f"cannot read: {exc.strerror or exc}") from exc
    try:
        # utf-8-sig: editors on Windows add a BOM that TOML does not allow but nobody can see.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(path, line, None, "not valid UTF-8") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, message = _decode_error_location(str(exc), text)
        raise ConfigError(path, line, None, f"invalid TOML: {message}") from exc
    return _Document(path, text, raw, locator)


_AT_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*\Z")
_AT_END = re.compile(r"\s*\(at end of document\)\s*\Z")


def _decode_error_location(message: str, text: str) -> tuple[int | None, str]:
    """Split tomllib's "... (at line N, column M)" into the line and a message with the column."""
    match = _AT_LINE.search(message)
    if match:
        return int(match.group(1)), f"{message[: match.start()]} (column {match.group(2)})"
    match = _AT_END.search(message)
    if match:
        # tomllib counts the empty line after the final newline; the unfinished construct the
        # reader needs to see is on the last line that has anything on it.
        return text.rstrip().count("\n") + 1, f"{message[: match.start()]} (at end of file)"
    return None, message


def _read_function(doc: _Document, name: str, env: Mapping[str, str]) -> FunctionConfig:
    functions = doc.table(("functions",))
    if name not in functions:
        defined = ", ".join(functions) or "none"
        raise FunctionNotFoundError(
            doc.path,
            None,
            None,
            f"not defined (functions defined: {defined})",
            format_table(("functions", name)),
        )
    table = functions[name]
    path = ("functions", name)
    if not isinstance(table, dict):
        raise doc.error(f"expected a table, got {_describe(table)}", ("functions",), name)
    return FunctionConfig(
        name=name,
        enabled=doc.get_bool(table, path, "enabled", True, env),
        verify_jwt=doc.get_bool(table, path, "verify_jwt", True, env),
        entrypoint=doc.get_str(table, path, "entrypoint", env),
        import_map=doc.get_str(table, path, "import_map", env),
        static_files=doc.get_str_list(table, path, "static_files", env),
        unknown_keys=tuple(key for key in table if key not in FUNCTION_KEYS),
        line=doc.locate(path, None),
    )


class _Document:
    """A parsed file with typed access to its values; errors are located when it has a locator."""

    def __init__(
        self, path: Path, text: str, raw: dict[str, Any], locator: Locator | None = None
    ) -> None:
        self.path = path
        self.text = text
        self.raw = raw
        self._locator = locator

    @functools.cached_property
    def locate(self) -> Locate:
        # Made on first need: reading ports or the JWT secret asks for no line.
        return _unlocated if self._locator is None else self._locator(self.text)

    def error(self, message: str, table: tuple[str, ...], key: str | None = None) -> ConfigError:
        return ConfigError(self.path, self.locate(table, key), key, message, format_table(table))

    def table(self, path: tuple[str, ...]) -> dict[str, Any]:
        """The table at ``path``; empty when absent, ConfigError when something else is there."""
        node = self.raw
        for depth, part in enumerate(path):
            value = node.get(part)
            if value is None:
                return {}
            if not isinstance(value, dict):
                raise self.error(f"expected a table, got {_describe(value)}", path[:depth], part)
            node = value
        return node

    def resolve(self, value: Any, table: tuple[str, ...], key: str, env: Mapping[str, str]) -> Any:
        """``value``, or the variable an ``env(NAME)`` string names."""
        if not isinstance(value, str):
            return value
        match = ENV_REF.fullmatch(value)
        if match is None:
            return value
        name = match.group(1)
        resolved = env.get(name)
        # Empty counts as unset, as in the Supabase CLI (it keeps the literal "env(...)" then).
        if not resolved:
            raise self.error(
                f"environment variable {name} is not set (the value is {_describe(value)})",
                table,
                key,
            )
        return resolved

    def get_bool(
        self,
        table: dict[str, Any],
        path: tuple[str, ...],
        key: str,
        default: bool,
        env: Mapping[str, str],
    ) -> bool:
        raw = table.get(key)
        if raw is None:
            return default
        value = self.resolve(raw, path, key, env)
        if isinstance(value, bool):
            return value
        # A variable can only hold text; accept the spellings a boolean has in TOML.
        if raw is not value and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise self.error(f"expected true or false, got {_describe_resolved(raw, value)}", path, key)

    def get_int(
        self,
        table: dict[str, Any],
        path: tuple[str, ...],
        key: str,
        default: int,
        env: Mapping[str, str],
        *,
        port: bool = False,
    ) -> int:
        raw = table.get(key)
        if raw is None:
            return default
        value = self.resolve(raw, path, key, env)
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif raw is not value and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            number = int(value)
        expected = "a port number (1-65535)" if port else "a positive integer"
        if number is None or number < 1 or (port and number > 65535):
            raise self.error(
                f"expected {expected}, got {_describe_resolved(raw, value)}", path, key
            )
        return number

    def get_str(
        self, table: dict[str, Any], path: tuple[str, ...], key: str, env: Mapping[str, str]
    ) -> str | None:
        raw = table.get(key)
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise self.error(f"expected a string, got {_describe(raw)}", path, key)
        return self.resolve(raw, path, key, env)

    def get_str_list(
        self, table: dict[str, Any], path: tuple[str, ...], key: str, env: Mapping[str, str]
    ) -> tuple[str, ...]:
        raw = table.get(key)
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.error(f"expected an array of strings, got {_describe(raw)}", path, key)
        items: list[str] = []
        for i, item in enumerate(raw):
            if not isinstance(item, str):
                message = f"expected an array of strings, got {_describe(item)} at index {i}"
                raise self.error(message, path, key)
            items.append(self.resolve(item, path, key, env))
        return tuple(items)


def _describe(value: Any) -> str:
    """A value as TOML would spell it, short enough for a one-line message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return str(value)


def _describe_resolved(raw: Any, value: Any) -> str:
    if raw is value:
        return _describe(value)
    return f"{_describe(value)} (from {raw})"


def _unlocated(table: tuple[str, ...], key: str | None) -> int | None:
    return None


# --- naming tables ------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _format_key(key: str) -> str:
    if _BARE_KEY.fullmatch(key):
        return key
    escaped = key.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def format_table(path: tuple[str, ...]) -> str:
    """A table path as TOML writes it (``functions."meter.v2"``; ``""`` for the top level)."""
    return ".".join(_format_key(part) for part in path)
