"""Failures of registering and managing custom tools: the caller's mistakes, typed for the API.

(Failures *during* a call are ToolError, in tools/base.py: the model reads those.)
"""

from __future__ import annotations

from model.errors import InputError, VoicegraphError

__all__ = ["InvalidToolError", "ToolExistsError", "ToolNotFoundError", "ToolSourceError", "UnsafeTargetError"]


class InvalidToolError(InputError):
    """A tool definition that cannot be registered: a bad name or parameters schema."""


class ToolExistsError(InputError):
    """A tool of that name is already there (a built-in, or one the tenant registered)."""


class ToolNotFoundError(InputError):
    """The tenant registered no tool of that name."""


class UnsafeTargetError(InputError):
    """The tool's URL points at a private, loopback or link-local address that is not allowed."""


class ToolSourceError(VoicegraphError):
    """A tool source (an MCP server) could not be reached or listed."""
