"""Structured JSON logs on stdout, in the shape Google Cloud Logging parses.

Cloud Run / Cloud Functions turn each stdout line that is a JSON object into a structured log
entry: ``severity`` sets the level, ``message`` the summary, ``logging.googleapis.com/trace``
groups lines under the request's trace, and ``stack_trace`` is picked up by Error Reporting.

Every line is scrubbed of secrets before it is written (:func:`redact`), because logs are read
by more people, and kept longer, than the credentials that end up in exception messages.

Only the standard library is imported here: every deployed function imports this module on cold
start.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "JsonFormatter",
    "bind_request",
    "configure_logging",
    "current_request_id",
    "current_trace_id",
    "redact",
    "reset_request",
]

REDACTED: Final = "[redacted]"

# --------------------------------------------------------------------------------------------
# Request context
# --------------------------------------------------------------------------------------------

# (request id, trace id). A ContextVar rather than a thread-local: one event loop thread serves
# many concurrent requests, and each asyncio task gets its own copy of the context.
_request_ctx: contextvars.ContextVar[tuple[str, str | None] | None] = contextvars.ContextVar(
    "shared_logs_request", default=None
)

RequestToken = contextvars.Token[tuple[str, str | None] | None]


def bind_request(request_id: str, trace_id: str | None = None) -> RequestToken:
    """Attach a request id (and trace id) to every log line written in the current context."""
    return _request_ctx.set((request_id, trace_id))


def reset_request(token: RequestToken) -> None:
    """Undo :func:`bind_request`; pass the token it returned."""
    _request_ctx.reset(token)


def current_request_id() -> str | None:
    ctx = _request_ctx.get()
    return ctx[0] if ctx else None


def current_trace_id() -> str | None:
    ctx = _request_ctx.get()
    return ctx[1] if ctx else None


# --------------------------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------------------------

# Characters that end a bare token wherever secrets turn up: prose, JSON, URLs, Python reprs.
_END = r"""\s"'`<>,;&)\]}"""

_SECRET_KEY_WORDS: Final = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "authorization",
    "cookie",
    "dsn",
    "database_url",
    "databaseurl",
    "credential",
    "private_key",
)
_SECRET_KEY_ALT: Final = "|".join(w.replace("_", "[_-]?") for w in _SECRET_KEY_WORDS)

_RULES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    # URL userinfo first: the password may itself be a JWT or an API key, and the user name is
    # worth keeping. Greedy up to the last '@' before the host, so an unescaped '@' in the
    # password does not leak its tail.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/?#@]*:)[^\s/?#]*@"), r"\1***@"),
    # JWTs: header.payload.signature, header always base64url of '{"...' (signature may be empty
    # for alg=none, which is still a credential to whoever accepts it).
    (re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"'`<>,;]+"), r"\1 " + REDACTED),
    # Our API keys: the 8-character prefix is the public key id, kept so a log still says
    # which key was used.
    (re.compile(rf"(?<![A-Za-z0-9])(nxt_[A-Za-z0-9]{{8}}_)[^{_END}]+"), r"\1" + REDACTED),
    (re.compile(rf"(?<![A-Za-z0-9])(sb_(?:secret|publishable)_)[^{_END}]+"), r"\1" + REDACTED),
    # libpq key=value conninfo (also PGPASSWORD=... and ?password=... query strings). libpq quotes
    # with single quotes; Python reprs of kwargs may use double quotes.
    (
        re.compile(
            r"(?i)(?<![A-Za-z0-9])((?:pg)?password\s*=\s*)"
            r"(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)"
        ),
        r"\1***",
    ),
    # "password": "..." / 'token': '...' inside JSON text or dict reprs that got into a message.
    (
        re.compile(
            rf"(?i)([\"'])([\w.-]*(?:{_SECRET_KEY_ALT})[\w.-]*)\1(\s*[:=]\s*)([\"'])"
            r"(?:\\.|(?!\4).)*\4"
        ),
        r"\1\2\1\3\4" + REDACTED + r"\4",
    ),
)


def redact(text: str) -> str:
    """Return ``text`` with credentials (JWTs, bearer tokens, API keys, passwords) masked."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def is_secret_key(key: str) -> bool:
    """True when a field name suggests a credential (``x-api-key``, ``db_password``)."""
    normalized = key.lower().replace("-", "_")
    return any(word in normalized for word in _SECRET_KEY_WORDS)


_MAX_DEPTH: Final = 8


def _scrub(value: Any, depth: int = 0) -> Any:
    """Make ``value`` JSON-safe and secret-free: strings redacted, secret-named keys masked."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        # NaN/Infinity are not JSON; the log line must stay parseable.
        return value if math.isfinite(value) else str(value)
    if depth >= _MAX_DEPTH:
        return "[truncated]"
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if is_secret_key(str(k)) else _scrub(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v, depth + 1) for v in value]
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    # str() of an arbitrary object (a connection, a config) may embed a DSN.
    return redact(str(value))


# --------------------------------------------------------------------------------------------
# Formatter and handler
# --------------------------------------------------------------------------------------------

_TRACE_FIELD: Final = "logging.googleapis.com/trace"


def _severity(levelno: int) -> str:
    # Custom levels (e.g. 25) fall into the nearest standard severity below them, which Cloud
    # Logging understands; an unknown severity string would be stored as DEFAULT.
    if levelno >= logging.CRITICAL:
        return "CRITICAL"
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARNING"
    if levelno >= logging.INFO:
        return "INFO"
    return "DEBUG"


def _rfc3339(created: float) -> str:
    seconds = int(created)
    micros = int((created - seconds) * 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, redacted, with Cloud Logging's special field names."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:
            # A bad %-format in a log call must not lose the line (or crash the request).
            message = f"{record.msg!s} {record.args!r}"

        entry: dict[str, Any] = {
            "severity": _severity(record.levelno),
            "message": redact(message),
            "time": _rfc3339(record.created),
            "logger": record.name,
        }

        ctx = _request_ctx.get()
        if ctx is not None:
            request_id, trace_id = ctx
            if trace_id:
                project = os.environ.get("GOOGLE_CLOUD_PROJECT")
                entry[_TRACE_FIELD] = (
                    f"projects/{project}/traces/{trace_id}" if project else trace_id
                )
            # A caller's X-Request-Id becomes the request id; it may be a pasted credential.
            entry["requestId"] = redact(request_id)

        function = os.environ.get("K_SERVICE") or os.environ.get("FUNCTION_TARGET")
        if function:
            entry["function"] = function

        stack_parts: list[str] = []
        if record.exc_info:
            # Not record.exc_text: logging caches that on the record, and other handlers
            # (pytest's, a dev console) should keep the unmodified text.
            stack_parts.append(self.formatException(record.exc_info))
        elif record.exc_text:
            stack_parts.append(record.exc_text)
        if record.stack_info:
            stack_parts.append(self.formatStack(record.stack_info))
        if stack_parts:
            entry["stack_trace"] = redact("\n".join(stack_parts))

        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            # Standard keys win: a field called "severity" must not change how the line is filed.
            for key, value in _scrub(fields).items():
                entry.setdefault(key, value)

        return json.dumps(entry, default=str)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at emit time.

    Binding the stream at install time would keep writing to a stdout that pytest (capsys) or a
    worker process has since replaced.
    """

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_configure_lock = threading.Lock()


def _parse_level(level: str | None) -> int:
    if not level:
        return logging.INFO
    level = level.strip().upper()
    if level.isdigit():
        return int(level)
    return logging.getLevelNamesMapping().get(level, logging.INFO)


def configure_logging(level: str | None = None) -> None:
    """Install one JSON stdout handler on the root logger; safe to call any number of times.

    ``level`` defaults to ``$LOG_LEVEL`` (else INFO) on the first call. Later calls without a
    level leave the level alone, so an implicit call (``endpoint`` makes one) does
    not undo an explicit ``configure_logging("DEBUG")``. Handlers installed by others (pytest's
    capture, a local dev console) are left in place.
    """
    root = logging.getLogger()
    with _configure_lock:
        installed = any(isinstance(h, _StdoutHandler) for h in root.handlers)
        if not installed:
            handler = _StdoutHandler()
            handler.setFormatter(JsonFormatter())
            root.addHandler(handler)
        if level is not None or not installed:
            root.setLevel(_parse_level(level or os.environ.get("LOG_LEVEL")))
