"""CORS as the legacy Supabase functions answered it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

# The legacy list (authorization, x-client-info, apikey, content-type) plus headers our
# functions read: browsers refuse to send a header the preflight did not allow.
CORS_ALLOW_HEADERS: Final = (
    "authorization, x-client-info, apikey, content-type, x-api-key, idempotency-key, x-request-id"
)


def cors_headers(methods: Sequence[str]) -> dict[str, str]:
    """The CORS headers legacy Supabase functions sent, with the methods actually served."""
    served = [m.upper() for m in methods if m.upper() != "OPTIONS"]
    return {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
        "Access-Control-Allow-Methods": ", ".join([*dict.fromkeys(served), "OPTIONS"]),
    }
