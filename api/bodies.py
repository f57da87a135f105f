"""Reading request bodies that may be JSON or multipart, with the same 4xx everywhere."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request, status
from pydantic import BaseModel, ValidationError

from api.errors import problem, validation_problem

__all__ = ["json_body", "media_type"]

Model = TypeVar("Model", bound=BaseModel)


def media_type(request: Request) -> str:
    """The request's content type without parameters: `multipart/form-data`, `application/json`, ..."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def json_body(request: Request, model: type[Model]) -> Model:
    """The body validated as `model`; a 422 that names each bad field otherwise."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise problem(status.HTTP_422_UNPROCESSABLE_CONTENT, validation_problem(exc.errors())) from exc
