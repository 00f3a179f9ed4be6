"""Where things are in supabase/config.toml: the lines `nxt` reports, and the ``env(...)``
references it checks.

Tooling only. shared/supabase_config.py reads the file (with tomllib, which reports no positions
for values) and ships in every deployed function; a function's cold start needs no line, so the
scan that finds them lives here, where no bundle carries it. Every command of `nxt` reads the
file through ``load_config`` below, so its errors name the line as well as the table and key.

Lines come from a light scan of the text (``LineIndex``): good enough for the keys reported, not
a second TOML parser.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared import supabase_config
from shared.supabase_config import (
    ENV_REF,
    ConfigError,
    FunctionNotFoundError,
    Locate,
    SupabaseConfig,
    format_table,
)

__all__ = ["LineIndex", "add_line", "env_refs", "line_of", "load_config", "locator"]


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> SupabaseConfig:
    """shared.supabase_config.load_config, with every error and table located by line."""
    return supabase_config.load_config(path, env, locator=locator)


def locator(text: str) -> Locate:
    """What ``load_config`` locates with; for a SupabaseConfig built by hand, too."""
    return LineIndex(text).locate


def line_of(config: SupabaseConfig, table: str, key: str | None = None) -> int | None:
    """Line of a table's header (or first mention), or of one of its keys; None if unknown.

    ``table`` is dotted and may quote parts as TOML does (``functions."meter.v2"``); ``""`` is
    the top level. ``key`` is a single key, taken literally. A ``table`` that is not a dotted
    key raises ValueError: that is a bug in the caller, not in the file. ``config`` must have
    been read with a locator (``load_config`` here), else every line is None.
    """
    return config.locate(_parse_table_path(table), key)


def env_refs(config: SupabaseConfig) -> list[tuple[str, str, str, int | None]]:
    """Every ``env(NAME)`` value as (table, key, NAME, line), in file order.

    Unresolved on purpose: a checker lists what a deployment must set without needing it set.
    Array elements are keyed ``key[i]``; values inside inline tables or arrays of tables report
    the nearest line the scan knows.
    """
    refs: list[tuple[str, str, str, int | None]] = []

    def visit(value: Any, table: tuple[str, ...], key: str, label: str, line: int | None) -> None:
        if isinstance(value, str):
            match = ENV_REF.fullmatch(value)
            if match:
                refs.append((format_table(table), label, match.group(1), line))
        elif isinstance(value, dict):
            inner = (*table, key)
            for k, v in value.items():
                visit(v, inner, k, k, config.locate(inner, k) or line)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                visit(item, table, key, f"{label}[{i}]", line)

    for key, value in config.raw.items():
        visit(value, (), key, key, config.locate((), key))
    # tomllib orders a table by its first mention, which can precede its own keys' lines.
    refs.sort(key=lambda ref: (ref[3] is None, ref[3] or 0))
    return refs


def add_line(error: ConfigError) -> None:
    """Give ``error`` the line its table or key is on, when runtime code raised it unlocated.

    A function's cold start (``function_settings``) scans no lines; when `nxt` imports a
    function and that fails, this makes the error read as `nxt`'s own reads of the file do.
    In place, so that the traceback and the exception's type are the function's own.
    """
    # A missing table has no line to point at, and an error about the file has its own.
    if error.line is not None or error.table is None or isinstance(error, FunctionNotFoundError):
        return
    try:
        text = Path(error.path).read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return  # changed since it was read: the error keeps what it knew
    error.line = LineIndex(text).locate(_parse_table_path(error.table), error.key)
    # ConfigError pickles through its args, so they must carry the line too.
    error.args = (error.path, error.line, error.key, error.message, error.table)


# --- locating lines -----------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BASIC_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_LITERAL_STRING = re.compile(r"'([^'\n]*)'")


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


class LineIndex:
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

    def locate(self, table: tuple[str, ...], key: str | None = None) -> int | None:
        """The ``Locate`` that shared.supabase_config asks for: a table's line, or a key's."""
        return self.table(table) if key is None else self.key(table, key)

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
