"""What each function declares in code: its name, its functions-framework target and the
credentials it accepts. `nxt check` compares the declarations with config.toml.

Apart from shared.auth.gate, which enforces the declarations of HTTP functions, because a job
(shared.jobs) declares itself too and must not pay at cold start for the JWT and HTTP
machinery that the gate imports and a job never runs.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a function may accept. `jwt`: a Supabase JWT of any role (the handler decides what each
# role may do); `service_role`: only a service-role JWT; `api_key`: one of our API keys;
# `none`: no credentials at all.
JWT = "jwt"
SERVICE_ROLE = "service_role"
API_KEY = "api_key"
NONE = "none"
KINDS = frozenset({JWT, SERVICE_ROLE, API_KEY, NONE})


@dataclass(frozen=True)
class GateSpec:
    """What a function declares in code; `nxt check` compares it with config.toml."""

    name: str
    target: str
    accepts: frozenset[str]

    @property
    def needs_jwt_gate_off(self) -> bool:
        """API keys are not JWTs: a gateway verifying JWTs would refuse every key."""
        return API_KEY in self.accepts or NONE in self.accepts

    @property
    def requires_jwt(self) -> bool:
        return not self.needs_jwt_gate_off


# Filled as function modules are imported, before their config is read, so that `nxt check`
# learns a function's declaration even when its config table is broken.
DECLARED: dict[str, GateSpec] = {}


def target_name(function_name: str) -> str:
    """The functions-framework target of a function: its name as a Python identifier."""
    return function_name.replace("-", "_")
