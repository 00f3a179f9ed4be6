"""An in-test handler served as functions-framework serves a deployed one, through its public
`create_asgi_app_from_module` (the handler's module is built here; the real loader is exercised by
tests/foundation/test_http_helpers.py's file-based test and by every `nxt serve`)."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from functions_framework.aio import create_asgi_app_from_module


def asgi_app(handler: Callable[..., Any]) -> Any:
    """The Starlette app functions-framework builds for ``handler`` as an ``http`` function."""
    module = types.ModuleType("nxt_test_handler")
    module.handler = handler  # type: ignore[attr-defined]
    return create_asgi_app_from_module("handler", "<test>", "http", module, None)
