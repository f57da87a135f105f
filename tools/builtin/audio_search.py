"""The `audio_search` tool: the model picks the voice it speaks in from the voice library.

Step-Audio 2 was trained to call an audio search that retrieves a timbre; the cascade
gets the same tool. The chosen voice comes back as session state (`{"voice": id}`), so
the rest of this turn's reply and every later turn are spoken in it until something
changes it. The text the model reads says so, so that it answers rather than searching
again or apologising that it "cannot change its voice".

Its vocabulary gives the recognizer the names of the voices the tenant added, so "speak like
Marguerite" is heard as that voice's name. The built-ins' names are generic and are left out.
"""

from __future__ import annotations

import asyncio
from typing import Any

from retrieval.voices import VoiceLibrary
from tools.base import Tool, ToolContext, ToolError, ToolResult, ToolSpec, Vocabulary

__all__ = ["NAME", "audio_search_tool"]

NAME = "audio_search"
_ANNOUNCE = "Let me find a voice like that."
_DESCRIPTION = (
    "Change the voice you speak in. Call it whenever the user asks you to speak, talk or sound "
    "another way: an accent, deep or high, slow or fast, calm, soft, whispering, cheerful, male or "
    "female. Not for questions about voices."
)
"""What the model reads of the tool. No example of a description in it: given one ('deep slow
Scottish accent'), the 1.5B model searched for the example whatever voice was asked for ("Use a
calm, deep voice please."), or for the tool's own description ("I want a cheerful voice."). Of
ten requests for a voice, typed beside the evaluation's documents, nine are now searched for in
the user's words (six before; "Switch to a man's voice." was answered "I'm now speaking in a
man's voice." without a call), and "What voice are you using right now?" is answered, not
taken for a request."""
_PARAMETERS = {
    "type": "object",
    "properties": {
        "description": {
            "type": "string",
            "description": "The voice the user asked for, in their own words.",
        }
    },
    "required": ["description"],
    "additionalProperties": False,
}
_CHOSEN = (
    "Voice set to {name!r} ({description}). From now on your replies are spoken in this voice. Tell the "
    "user, speaking to them as you, in one short sentence; do not search for a voice again."
)
"""What the model reads. Told only to "answer the user briefly", the 1.5B model answered from
whatever else it had read: the knowledge tool's note ("The Kestrel lab is a research facility
located in the Veldt bridge."); told to tell the user, it says "The user's voice has been set
to ..."; told to speak to them as itself, "I'm ready to speak in a high, fast voice."."""
_EMPTY = "the voice library is empty"
_MAX_NAMES = 20
"""The tenant's voice names the recognizer is told, at most (the first by name)."""


def audio_search_tool(library: VoiceLibrary) -> Tool:
    """The tool over `library`: the best match among the built-ins and the tenant's own voices."""

    def choose(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        description = str(arguments["description"]).strip()
        hits = library.search(context.tenant, description, top_k=1)
        if not hits:
            raise ToolError(_EMPTY)
        voice = hits[0].voice
        content = _CHOSEN.format(name=voice.name, description=voice.description.rstrip("."))
        return ToolResult(content=content, state={"voice": voice.id})

    def vocabulary(context: ToolContext) -> Vocabulary:
        names = (" ".join(voice.name.split()) for voice in library.own_voices(context.tenant))
        return Vocabulary(words=tuple(dict.fromkeys(name for name in names if name))[:_MAX_NAMES])

    async def handler(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return await asyncio.to_thread(choose, arguments, context)

    spec = ToolSpec(
        name=NAME, description=_DESCRIPTION, parameters=_PARAMETERS, timeout_s=30.0, announce=_ANNOUNCE, read_only=True
    )
    return Tool(spec=spec, handler=handler, vocabulary=vocabulary)
