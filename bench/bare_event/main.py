"""The jobs' cold-start floor: a bare functions-framework async CloudEvent function that does
nothing with the event, served as the jobs are (functions-framework answers 200 once it
returns)."""

from __future__ import annotations

from typing import Any

import functions_framework.aio


@functions_framework.aio.cloud_event
async def bare_event(cloud_event: Any) -> None:
    return None
