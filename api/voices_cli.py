"""`voicegraph voices list|add|search`: the voice library from the shell, without the planner.

The first use in a data dir renders the built-in voices (seconds). Bad input exits with
code 2 and a one-line message, as the rest of the CLI does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from api.cli_common import fail, guard, load_settings
from model.audio import decode_audio
from retrieval.voices import Voice, VoiceHit, VoiceLibrary

__all__ = ["voices_app"]

voices_app = typer.Typer(no_args_is_help=True, help="The voice library: list, add, search.")

_SEARCH_WHAT = "give a description to search for, or --audio with a clip"

TenantOption = Annotated[str | None, typer.Option("--tenant", help="Act as this tenant (default: the local one).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@contextmanager
def _open(tenant: str | None) -> Iterator[tuple[VoiceLibrary, str]]:
    """The library, its tenants' voices in the memory backend the settings name, and who acts."""
    from api.voicing import memory_registrations, open_voice_library

    settings = load_settings()
    with ExitStack() as stack:
        registrations = guard(stack.enter_context, memory_registrations(settings))
        library: VoiceLibrary = guard(open_voice_library, settings, registrations=registrations)
        yield library, tenant or settings.tenant


def _print(voices: list[tuple[Voice, float | None]], as_json: bool) -> None:
    if as_json:
        rows = [{**asdict(voice), "score": score} for voice, score in voices]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for voice, score in voices:
        mark = "" if voice.builtin else " (yours)"
        prefix = f"{score:.3f}  " if score is not None else ""
        typer.echo(f"{prefix}{voice.id}  {voice.name}{mark}: {voice.description}")


def _hits(hits: list[VoiceHit]) -> list[tuple[Voice, float | None]]:
    return [(hit.voice, hit.score) for hit in hits]


@voices_app.command("list")
def list_voices(tenant: TenantOption = None, as_json: JsonOption = False) -> None:
    """The built-in voices and the tenant's own."""
    with _open(tenant) as (library, who):
        _print([(voice, None) for voice in guard(library.list_voices, who)], as_json)


@voices_app.command("add")
def add_voice(
    sample: Annotated[Path, typer.Argument(help="A clip of the voice (wav, mp3, ogg, webm, flac).")],
    description: Annotated[str, typer.Option("--description", help="The voice in words.")],
    name: Annotated[str | None, typer.Option("--name", help="A short name (default: the description).")] = None,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a voice like SAMPLE: the nearest built-in timbre at the sample's pitch and pace."""
    if not sample.is_file():
        fail(f"no such file: {sample}")
    with _open(tenant) as (library, who):
        voice = guard(library.add, who, description=description, clip=sample.read_bytes(), name=name)
    _print([(voice, None)], as_json)


@voices_app.command("search")
def search_voices(
    description: Annotated[str | None, typer.Argument(help="The voice wanted, in words.")] = None,
    audio: Annotated[Path | None, typer.Option("--audio", help="Find voices that sound like this clip.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=50)] = 3,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """The voices nearest to a description, or to a clip (--audio)."""
    if (description is None) == (audio is None):
        fail(_SEARCH_WHAT)
    if audio is not None and not audio.is_file():
        fail(f"no such file: {audio}")
    with _open(tenant) as (library, who):
        if audio is not None:
            samples = guard(decode_audio, audio.read_bytes(), max_seconds=120)
            hits = guard(library.search_by_example, who, samples, 16_000, top_k)
        else:
            hits = guard(library.search, who, description or "", top_k)
    _print(_hits(hits), as_json)
