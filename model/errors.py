"""The one tree of typed failures; every layer raises a subclass of VoicegraphError.

Errors the *model* should see (a bad tool argument, an unknown tool) are data, not
exceptions: see tools/runtime.py. These are failures of the system or of the input.
"""

from __future__ import annotations

__all__ = [
    "AudioDecodeError",
    "AudioTooLongError",
    "InputError",
    "ModelAssetError",
    "PlannerError",
    "VoicegraphError",
]


class VoicegraphError(Exception):
    """Root of every error voicegraph raises on purpose."""


class InputError(VoicegraphError):
    """The caller sent something we cannot use; the message says what (HTTP 4xx, exit 2)."""


class AudioDecodeError(InputError):
    """The bytes are empty, corrupt, or not audio in a format we decode."""


class AudioTooLongError(InputError):
    """The audio lasts longer than the configured limit."""


class ModelAssetError(VoicegraphError):
    """A packaged model is missing, incomplete, or fails its checksum."""


class PlannerError(VoicegraphError):
    """The planner backend failed to produce a turn."""
