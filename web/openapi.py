"""The OpenAPI 3.1 document, generated from the route declarations an app registered.

Every schema comes from a type: request bodies and parameters from their pydantic
models, responses from reply models or straight from the crm record dataclasses (their
attribute docstrings are the field descriptions), errors from ``ErrorBody`` narrowed to
the ids each route declares. All of them are generated in one pass, so a type used by
several routes is one entry under ``components/schemas``.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import inspect
import itertools
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode
from pydantic_core import CoreSchema, core_schema

from web.errors import STATUS, ErrorBody, ErrorId
from web.params import Params
from web.routes import Reply, Route

REF_PREFIX = "#/components/schemas/"
REF_TEMPLATE = REF_PREFIX + "{model}"
_LINE_BREAK = re.compile(r"(?<!\n)\n(?!\n)")


class _Schemas(GenerateJsonSchema):
    """Pydantic's generator without a title on every property (the name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def dataclass_schema(self, schema: core_schema.DataclassSchema) -> dict[str, Any]:
        generated = super().dataclass_schema(schema)
        # A dataclass without a docstring has one made up of its signature: no description.
        cls = schema["cls"]
        if generated.get("description", "").startswith(f"{cls.__name__}("):
            del generated["description"]
        inherited = _attribute_docs(cls)
        for name, prop in generated.get("properties", {}).items():
            if "description" not in prop and name in inherited:
                prop["description"] = inherited[name]
        return generated


def _attribute_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of ``cls`` and its dataclass bases: pydantic reads only the
    class's own, and a reply that extends a record (Recording, Turn) keeps the record's."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


class _Collector:
    """The types the document needs, generated together so each is defined once."""

    def __init__(self) -> None:
        self.inputs: list[tuple[int, JsonSchemaMode, CoreSchema]] = []
        self._known: dict[tuple[Any, JsonSchemaMode], int] = {}

    def want(self, type_: Any, mode: JsonSchemaMode) -> int:
        # A type many routes answer with (CaseRecord) is built once: building is the cost.
        if (type_, mode) not in self._known:
            self._known[type_, mode] = len(self.inputs)
            self.inputs.append((len(self.inputs), mode, TypeAdapter(type_).core_schema))
        return self._known[type_, mode]

    def generate(self) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
        generator = _Schemas(ref_template=REF_TEMPLATE)
        found, definitions = generator.generate_definitions(self.inputs)
        return {key: dict(value) for (key, _), value in found.items()}, _unwrapped(definitions)


class DocumentCache:
    """The document, generated once per app and off the event loop: pydantic reads every
    record's attribute docstrings from its source, about half a second of CPU that must
    not hold up live calls, and the declarations do not change while the app runs."""

    def __init__(self) -> None:
        self._document: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    async def get(self, generate: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        async with self._lock:
            if self._document is None:
                self._document = await asyncio.to_thread(generate)
        return self._document


def _unwrapped(node: Any) -> Any:
    """Descriptions from docstrings keep their source's line breaks; a paragraph is one line."""
    if isinstance(node, dict):
        return {
            key: _LINE_BREAK.sub(" ", value)
            if key == "description" and isinstance(value, str)
            else _unwrapped(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_unwrapped(item) for item in node]
    return node


def openapi_document(
    routes: Iterable[Route],
    *,
    info: Mapping[str, Any],
    security_schemes: Mapping[str, Any],
) -> dict[str, Any]:
    """The document of ``routes``."""
    collector = _Collector()
    error_key = collector.want(ErrorBody, "serialization")
    plans = [(r, _plan(r, collector)) for r in routes]
    generated, definitions = collector.generate()
    paths: dict[str, Any] = {}
    for declaration, plan in plans:
        operation = _operation(declaration, plan, generated, generated[error_key])
        paths.setdefault(declaration.path, {})[declaration.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": dict(info),
        "paths": paths,
        "components": {
            "schemas": definitions,
            "securitySchemes": dict(security_schemes),
        },
    }


def _plan(declaration: Route, collector: _Collector) -> dict[str, int]:
    """Which generated schema stands for the route's body and each reply."""
    plan: dict[str, int] = {}
    if declaration.body is not None:
        plan["body"] = collector.want(declaration.body, "validation")
    for status, reply in declaration.replies.items():
        if reply.body is not None:
            plan[str(status)] = collector.want(reply.body, "serialization")
    if declaration.messages is not None:
        plan["messages"] = collector.want(declaration.messages, "serialization")
    return plan


def _operation(
    declaration: Route,
    plan: dict[str, int],
    generated: dict[int, dict[str, Any]],
    error_schema: dict[str, Any],
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": declaration.operation_id,
        "summary": declaration.summary,
    }
    if declaration.description:
        operation["description"] = declaration.description
    parameters = [
        *_parameters(declaration.path_params, "path"),
        *_parameters(declaration.query, "query"),
    ]
    if parameters:
        operation["parameters"] = parameters
    if "body" in plan:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": generated[plan["body"]]}},
        }
    elif declaration.accepts:
        operation["requestBody"] = {
            "required": True,
            "content": {media: {"schema": {"type": "string"}} for media in declaration.accepts},
        }
    responses: dict[str, Any] = {}
    for status, reply in sorted(declaration.replies.items()):
        schema = generated[plan[str(status)]] if str(status) in plan else None
        responses[str(status)] = _response(reply, schema)
    for status, ids in sorted(_by_status(declaration.errors).items()):
        refused = _error_response(status, ids, error_schema)
        if str(status) in responses:
            responses[str(status)] = _either(responses[str(status)], refused)
        else:
            responses[str(status)] = refused
    operation["responses"] = responses
    if "messages" in plan:
        operation["x-websocket-message"] = generated[plan["messages"]]
    operation["security"] = declaration.security
    return operation


def _parameters(model: type[Params] | None, where: str) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(
        ref_template=REF_TEMPLATE, schema_generator=_Schemas, mode="validation"
    )
    required = set(schema.get("required", ()))
    found = []
    for name, prop in schema["properties"].items():
        prop = _without_null(dict(prop))
        parameter: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
        }
        if "description" in prop:
            parameter["description"] = prop.pop("description")
        parameter["schema"] = prop
        found.append(parameter)
    return found


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter is absent or a value: ``X | None`` is documented as X (default kept)."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1:
            del schema["anyOf"]
            schema = {**kept[0], **schema}
    if schema.get("default", ...) is None:
        del schema["default"]
    return schema


def _response(reply: Reply, schema: dict[str, Any] | None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": reply.description}
    content: dict[str, Any] = {}
    if schema is not None:
        content[reply.media_type or "application/json"] = {"schema": schema}
    elif reply.media_type is not None:
        content[reply.media_type] = {"schema": {"type": "string"}}
    for other in reply.also:
        content[other] = {"schema": {"type": "string"}}
    if content:
        response["content"] = content
    return response


def _by_status(errors: Iterable[ErrorId]) -> dict[int, list[ErrorId]]:
    grouped: dict[int, list[ErrorId]] = {}
    for error_id in sorted(errors):
        grouped.setdefault(STATUS[error_id], []).append(error_id)
    return grouped


def _error_response(
    status: int, ids: list[ErrorId], error_schema: dict[str, Any]
) -> dict[str, Any]:
    narrowed = {
        "allOf": [
            error_schema,
            {
                "properties": {
                    "status": {"const": status},
                    "error_id": {"enum": [str(i) for i in ids]},
                }
            },
        ]
    }
    names = ", ".join(str(i) for i in ids)
    return {
        "description": f"Refused (error_id {names}).",
        "content": {"application/json": {"schema": narrowed}},
    }


def _either(reply: dict[str, Any], refused: dict[str, Any]) -> dict[str, Any]:
    """One status, two bodies (e.g. a 404 that is a reply of its own and an error)."""
    reply_schema = reply.get("content", {}).get("application/json", {}).get("schema")
    refused_schema = refused["content"]["application/json"]["schema"]
    schema = {"oneOf": [reply_schema, refused_schema]} if reply_schema else refused_schema
    return {
        "description": f"{reply['description']} {refused['description']}",
        "content": {"application/json": {"schema": schema}},
    }
