"""OpenAPI 3.1 documents generated from a function's pydantic models.

A function lists its operations once; the same list yields the document it serves at
`/openapi.json` and the one `nxt openapi` writes to docs/openapi/<name>.json. Built on first
request, not at import: schema generation costs more than a cold start should.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

if TYPE_CHECKING:
    from pydantic_core import core_schema

from shared.auth.declared import API_KEY, JWT, NONE, SERVICE_ROLE
from shared.web.limits import MAX_QUERY_BYTES


class ErrorBody(BaseModel):
    """Every error answers this shape."""

    error: str = Field(description="What is wrong, naming the parameter or field when relevant")


COMMON_ERRORS: Mapping[int, str] = {
    400: "Bad input: the message names the parameter or field",
    401: "No or invalid credentials",
    403: "Authenticated, but not allowed",
    414: f"Query string longer than {MAX_QUERY_BYTES} bytes",
    503: "Database unavailable; retry after the Retry-After header",
}
# What every operation that takes a JSON body may also answer (shared.web.bodies.read_body).
BODY_ERRORS: Mapping[int, str] = {
    413: "Request body larger than the function accepts",
    415: "Content-Type is not application/json",
}


class _JsonSchema(GenerateJsonSchema):
    """Decimal strings documented with a pattern of the digits the field accepts, not as any
    string: a client (or a fuzzer) learns that "12.50" is an amount and "twelve" is not."""

    def get_decimal_pattern(self, schema: core_schema.DecimalSchema) -> str | None:
        return self.build_decimal_pattern(schema)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # relative to the function, e.g. "/" or "/{id}/complete"
    summary: str
    responses: Mapping[int, tuple[str, type[BaseModel] | None]]
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    path_params: Mapping[str, str] = field(default_factory=dict)  # name -> description
    headers: tuple[tuple[str, bool, str], ...] = ()  # (name, required, description)
    description: str = ""


def _security(accepts: Iterable[str]) -> tuple[dict[str, Any], list[dict[str, list[str]]]]:
    schemes: dict[str, Any] = {}
    requirements: list[dict[str, list[str]]] = []
    kinds = set(accepts)
    if kinds & {JWT, SERVICE_ROLE, API_KEY}:
        schemes["bearerAuth"] = {
            "type": "http", "scheme": "bearer",
            "description": "A Supabase Auth JWT" + (
                ", or an API key (nxt_...)" if API_KEY in kinds else ""),
        }
        requirements.append({"bearerAuth": []})
    if API_KEY in kinds:
        schemes["apiKeyHeader"] = {"type": "apiKey", "in": "header", "name": "X-API-Key"}
        requirements.append({"apiKeyHeader": []})
    if NONE in kinds:
        requirements.append({})
    return schemes, requirements


def _query_parameters(model: type[BaseModel], definitions: dict[str, Any]) -> list[dict]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}",
                                     schema_generator=_JsonSchema)
    definitions.update(schema.get("$defs", {}))
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                 "schema": prop}
        if description:
            param["description"] = description
        params.append(param)
    return params


def build_document(name: str, *, title: str, description: str, version: str,
                   accepts: Iterable[str], operations: Iterable[Operation]) -> dict[str, Any]:
    operations = list(operations)
    models = {ErrorBody}
    for op in operations:
        models.update(m for _, m in op.responses.values() if m is not None)
        if op.body is not None:
            models.add(op.body)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, top = models_json_schema([(m, "validation") for m in ordered],
                                ref_template="#/components/schemas/{model}",
                                schema_generator=_JsonSchema)
    definitions: dict[str, Any] = dict(top.get("$defs", {}))
    schemes, security = _security(accepts)

    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        item: dict[str, Any] = {"summary": op.summary, "operationId": _operation_id(op)}
        if op.description:
            item["description"] = op.description
        params: list[dict[str, Any]] = [
            {"name": p, "in": "path", "required": True, "description": d,
             "schema": {"type": "integer", "minimum": 1}}
            for p, d in op.path_params.items()
        ]
        params += [{"name": h, "in": "header", "required": req, "description": d,
                    "schema": {"type": "string", "maxLength": 255}} for h, req, d in op.headers]
        if op.query is not None:
            params += _query_parameters(op.query, definitions)
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{op.body.__name__}"}}}}
        errors = {**COMMON_ERRORS, **(BODY_ERRORS if op.body is not None else {})}
        responses: dict[str, Any] = {}
        for status, (text, model) in sorted({**{s: (t, ErrorBody) for s, t in errors.items()},
                                             **op.responses}.items()):
            if model is None and status >= 400:
                model = ErrorBody  # every error answers {"error": ...} (shared.web.errors)
            response: dict[str, Any] = {"description": text}
            if model is not None:
                response["content"] = {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
            responses[str(status)] = response
        item["responses"] = responses
        paths.setdefault(op.path, {})[op.method.lower()] = item

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "servers": [{"url": f"/functions/v1/{name}"}],
        "security": security,
        "paths": paths,
        "components": {"schemas": definitions, "securitySchemes": schemes},
    }


def _operation_id(op: Operation) -> str:
    words = [w for w in op.path.replace("{", "").replace("}", "").split("/") if w]
    return "_".join([op.method.lower(), *words]) if words else op.method.lower()
