"""What every CLI command shares: exit codes, the one-line failure, and settings loading.

Bad input exits with code 2 and a message on stderr; other failures of ours exit 1;
neither prints a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer

from api.settings import Settings
from model.errors import InputError, VoicegraphError

__all__ = ["EXIT_FAILURE", "EXIT_INPUT", "fail", "guard", "load_settings"]

EXIT_INPUT = 2
EXIT_FAILURE = 1

T = TypeVar("T")


def fail(message: str, code: int = EXIT_INPUT) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def guard(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call `function`, turning our errors into exit codes instead of stack traces."""
    try:
        return function(*args, **kwargs)
    except InputError as exc:
        fail(str(exc), EXIT_INPUT)
    except VoicegraphError as exc:
        fail(str(exc), EXIT_FAILURE)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the options given on the command line (None: unset)."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        fail(f"invalid settings: {exc}")
