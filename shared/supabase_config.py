"""Read ``supabase/config.toml``, the Supabase CLI's project config.

The Supabase CLI owns the file's format; this module reads the parts the Python side needs (each
function's ``[functions.<name>]`` table, ports, JWT settings) and leaves the rest alone, so a file
written by the CLI for any project reads without complaint.

Errors name the file, line and key, because the person who has to fix them is editing that file.
tomllib reports no positions for values, so lines come from a light scan of the text (see
``_LineIndex``): good enough for the keys reported here, not a second TOML parser.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG_ENV_VAR",
    "FUNCTION_KEYS",
    "ConfigError",
    "FunctionConfig",
    "FunctionNotFoundError",
    "SupabaseConfig",
    "function_settings",
    "load_config",
]

CONFIG_ENV_VAR = "NXT_SUPABASE_CONFIG"

# The keys the Supabase CLI defines for a [functions.<name>] table; anything else is most likely a
# typo (verfiy_jwt) that the CLI would silently ignore, so it is reported, not rejected.
FUNCTION_KEYS = frozenset({"enabled", "verify_jwt", "import_map", "entrypoint", "static_files"})

# Same pattern as the Supabase CLI (pkg/config/decode_hooks.go), so both read the same values as
# references; fullmatch, because Go's `$` does not match before a trailing newline.
_ENV_REF = re.compile(r"env\((.*)\)")

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
    _doc: _Document = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen, so the helper that answers lookups is attached the only way frozen allows.
        object.__setattr__(self, "_doc", _Document(self.path, self.text, self.raw))

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

    def line_of(self, table: str, key: str | None = None) -> int | None:
        """Line of a table's header (or first mention), or of one of its keys; None if unknown.

        ``table`` is dotted and may quote parts as TOML does (``functions."meter.v2"``); ``""``
        is the top level. ``key`` is a single key, taken literally. A ``table`` that is not a
        dotted key raises ValueError: that is a bug in the caller, not in the file.
        """
        path = _parse_table_path(table)
        index = self._doc.index
        return index.table(path) if key is None else index.key(path, key)

    def env_refs(self) -> list[tuple[str, str, str, int | None]]:
        """Every ``env(NAME)`` value as (table, key, NAME, line), in file order.

        Unresolved on purpose: a checker lists what a deployment must set without needing it set.
        Array elements are keyed ``key[i]``; values inside inline tables or arrays of tables
        report the nearest line the scan knows.
        """
        index = self._doc.index
        refs: list[tuple[str, str, str, int | None]] = []

        def visit(
            value: Any, table: tuple[str, ...], key: str, label: str, line: int | None
        ) -> None:
            if isinstance(value, str):
                match = _ENV_REF.fullmatch(value)
                if match:
                    refs.append((_format_path(table), label, match.group(1), line))
            elif isinstance(value, dict):
                inner = (*table, key)
                for k, v in value.items():
                    visit(v, inner, k, k, index.key(inner, k) or line)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    visit(item, table, key, f"{label}[{i}]", line)

        for key, value in self.raw.items():
            visit(value, (), key, key, index.key((), key))
        # tomllib orders a table by its first mention, which can precede its own keys' lines.
        refs.sort(key=lambda ref: (ref[3] is None, ref[3] or 0))
        return refs

    def _env(self, env: Mapping[str, str] | None) -> Mapping[str, str]:
        if env is not None:
            return env
        return self.env if self.env is not None else os.environ


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> SupabaseConfig:
    """Read and check the project-wide settings of config.toml.

    With no ``path``: ``$NXT_SUPABASE_CONFIG``, else the first ``supabase/config.toml`` walking up
    from the working directory, else walking up from this module (a bundled function ships
    ``supabase/config.toml`` beside its ``shared/``). ``env`` stands in for ``os.environ``, both
    for that lookup and for ``env(...)`` values.
    """
    environ = env if env is not None else os.environ
    config_path, origin = (Path(path), None) if path is not None else _find_config(environ)
    doc = _read_document(config_path, origin)
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
    )


# A process serves one function, so a handful of entries is plenty; the bound only guards against
# a caller passing request data as the name.
@functools.lru_cache(maxsize=32)
def function_settings(name: str) -> FunctionConfig:
    """This function's ``[functions.<name>]`` table, read once per process at cold start.

    Reads only that table, so nothing else in the file can fail it. Failures are not cached.
    The file and environment are read on the first call; ``function_settings.cache_clear()``
    makes the next call read them again.
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


def _read_document(path: Path, origin: str | None = None) -> _Document:
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
    return _Document(path, text, raw)


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
            _format_path(("functions", name)),
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
        line=doc.index.table(path),
    )


class _Document:
    """A parsed file with typed, located access to its values."""

    def __init__(self, path: Path, text: str, raw: dict[str, Any]) -> None:
        self.path = path
        self.text = text
        self.raw = raw

    @functools.cached_property
    def index(self) -> _LineIndex:
        # Built on first need: a healthy cold start only needs one table header's line.
        return _LineIndex(self.text)

    def error(self, message: str, table: tuple[str, ...], key: str | None = None) -> ConfigError:
        line = self.index.table(table) if key is None else self.index.key(table, key)
        return ConfigError(self.path, line, key, message, _format_path(table))

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
        match = _ENV_REF.fullmatch(value)
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


# --- locating lines -----------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BASIC_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_LITERAL_STRING = re.compile(r"'([^'\n]*)'")


def _format_key(key: str) -> str:
    if _BARE_KEY.fullmatch(key):
        return key
    escaped = key.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _format_path(path: tuple[str, ...]) -> str:
    return ".".join(_format_key(part) for part in path)


def _unescape(content: str) -> str:
    if "\\" not in content:
        return content
    # tomllib already knows every escape TOML has; a one-line document borrows it.
    try:
        return str(tomllib.loads(f'k = "{content}"')["k"])
    except tomllib.TOMLDecodeError:
        return content


def _skip_blanks(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    return pos


def _parse_key(line: str, pos: int) -> tuple[tuple[str, ...], int] | None:
    """A dotted key starting at ``pos``: its parts and the position after it (and any blanks)."""
    parts: list[str] = []
    while True:
        pos = _skip_blanks(line, pos)
        if (match := _BARE_KEY.match(line, pos)) is not None:
            parts.append(match.group())
        elif (match := _BASIC_STRING.match(line, pos)) is not None:
            parts.append(_unescape(match.group(1)))
        elif (match := _LITERAL_STRING.match(line, pos)) is not None:
            parts.append(match.group(1))
        else:
            return None
        pos = _skip_blanks(line, match.end())
        if not line.startswith(".", pos):
            return tuple(parts), pos
        pos += 1


def _parse_table_path(table: str) -> tuple[str, ...]:
    if not table.strip():
        return ()
    parsed = _parse_key(table, 0)
    if parsed is None or parsed[1] != len(table):
        raise ValueError(f"not a TOML table path: {table!r}")
    return parsed[0]


def _find_closing(line: str, pos: int, delimiter: str) -> int:
    """Position just after the ``delimiter`` closing a multi-line string, or -1."""
    if delimiter == "'''":
        end = line.find(delimiter, pos)
        return -1 if end < 0 else end + 3
    while pos < len(line):
        if line[pos] == "\\":
            pos += 2
        elif line.startswith('"""', pos):
            return pos + 3
        else:
            pos += 1
    return -1


def _scan_value(line: str, pos: int, depth: int, open_string: str | None) -> tuple[int, str | None]:
    """Follow a value through one line: bracket depth and any multi-line string left open.

    Lines inside a multi-line array or string are not keys or headers even when they look like
    them (``[1, 2]`` on its own line, ``key = x`` in a string); this is how the scan knows.
    """
    while pos < len(line):
        if open_string is not None:
            end = _find_closing(line, pos, open_string)
            if end < 0:
                return depth, open_string
            pos, open_string = end, None
            continue
        char = line[pos]
        if char == "#":
            break
        if line.startswith('"""', pos) or line.startswith("'''", pos):
            open_string = line[pos : pos + 3]
            pos += 3
            continue
        if char in "\"'":
            pattern = _BASIC_STRING if char == '"' else _LITERAL_STRING
            match = pattern.match(line, pos)
            pos = match.end() if match else len(line)
            continue
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(0, depth - 1)
        pos += 1
    return depth, open_string


class _LineIndex:
    """1-based lines of table headers and keys, found by scanning the text."""

    def __init__(self, text: str) -> None:
        self.tables: dict[tuple[str, ...], int] = {}
        # Tables that exist only as a prefix of a longer header or dotted key ([functions.x]
        # creates "functions"): located at their first mention, used when no header exists.
        self.implicit_tables: dict[tuple[str, ...], int] = {}
        self.keys: dict[tuple[tuple[str, ...], str], int] = {}
        self._scan(text)

    def table(self, path: tuple[str, ...]) -> int | None:
        line = self.tables.get(path)
        return line if line is not None else self.implicit_tables.get(path)

    def key(self, table: tuple[str, ...], key: str) -> int | None:
        return self.keys.get((table, key))

    def _define(self, path: tuple[str, ...], line: int) -> None:
        """Record every table and key a dotted path mentions; first mention wins."""
        for depth in range(len(path)):
            self.keys.setdefault((path[:depth], path[depth]), line)
            if depth:
                self.implicit_tables.setdefault(path[:depth], line)

    def _scan(self, text: str) -> None:
        current: tuple[str, ...] = ()
        depth, open_string = 0, None
        # split("\n"), not splitlines(): TOML and tomllib count only \n as a line break.
        for number, line in enumerate(text.split("\n"), start=1):
            if depth or open_string is not None:
                depth, open_string = _scan_value(line, 0, depth, open_string)
                continue
            start = _skip_blanks(line, 0)
            if line.startswith("[", start):
                header = self._parse_header(line, start)
                if header is not None:
                    current = header
                    self.tables.setdefault(header, number)
                    self._define(header, number)
                continue
            parsed = _parse_key(line, start)
            if parsed is None or not line.startswith("=", parsed[1]):
                continue
            parts, end = parsed
            self._define((*current, *parts), number)
            depth, open_string = _scan_value(line, end + 1, 0, None)

    @staticmethod
    def _parse_header(line: str, start: int) -> tuple[str, ...] | None:
        # [[x]] (array of tables) is located at its first occurrence, which is all callers need.
        opening = "[[" if line.startswith("[[", start) else "["
        parsed = _parse_key(line, start + len(opening))
        if parsed is None:
            return None
        parts, end = parsed
        closing = "]]" if opening == "[[" else "]"
        return parts if line.startswith(closing, end) else None
