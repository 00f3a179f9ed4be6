"""The roles a request may run as; they match Supabase's, so the same policies hold there.

A module of its own: the data layer (shared.db) checks them, and jobs, which load the data layer,
must not load the rest of shared.auth for it.
"""

from __future__ import annotations

REQUEST_ROLES = frozenset({"anon", "authenticated", "service_role"})
