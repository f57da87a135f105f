"""Reading request bodies that may be JSON or multipart, with the same 4xx everywhere."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request, status
from pydantic import BaseModel, ValidationError

from api.errors import problem, validation_problem

__all__ = ["BINARY", "json_body", "media_type", "request_body"]

Model = TypeVar("Model", bound=BaseModel)


BINARY = {"type": "string", "format": "binary"}
"""A file part of a multipart form, as OpenAPI describes one."""


def request_body(**content: dict[str, Any] | type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body by hand (to keep to the body limits and
    answer in one shape): what it takes, by media type (`json=`, `form=`), so the document tells
    clients and fuzzers what to send. A model's schema is inlined, since its `$defs` would not
    resolve inside the document."""
    types = {"json": "application/json", "form": "multipart/form-data"}
    schemas = {types[kind]: _schema(given) for kind, given in content.items()}
    return {
        "requestBody": {"required": True, "content": {kind: {"schema": schema} for kind, schema in schemas.items()}}
    }


def _schema(given: dict[str, Any] | type[BaseModel]) -> dict[str, Any]:
    if isinstance(given, dict):
        return given
    schema = given.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(
                    {**definitions[ref.removeprefix("#/$defs/")], **{k: v for k, v in node.items() if k != "$ref"}}
                )
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


def media_type(request: Request) -> str:
    """The request's content type without parameters: `multipart/form-data`, `application/json`, ..."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def json_body(request: Request, model: type[Model]) -> Model:
    """The body validated as `model`; a 422 that names each bad field otherwise."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise problem(status.HTTP_422_UNPROCESSABLE_CONTENT, validation_problem(exc.errors())) from exc
