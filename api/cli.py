"""The command line: `voicegraph ask`, `serve`, `trace`, `bench`, `eval`, `models prepare`, `planner serve`,
`kb ...` and `voices ...`.

Bad input exits with code 2 and a one-line message on stderr; so does a missing model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli_common import fail, guard, load_settings
from api.kb_cli import kb_app
from api.voices_cli import voices_app

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, help="voicegraph: a tool-using voice agent.")
models_app = typer.Typer(no_args_is_help=True, help="The offline models.")
planner_app = typer.Typer(no_args_is_help=True, help="The packaged planner model as a server of its own.")
app.add_typer(models_app, name="models")
app.add_typer(planner_app, name="planner")
app.add_typer(kb_app, name="kb")
app.add_typer(voices_app, name="voices")


def _run(coro: Any) -> Any:
    """Run a coroutine, turning our errors into exit codes instead of stack traces."""
    return guard(asyncio.run, coro)


@app.command()
def ask(
    text: Annotated[str | None, typer.Option("--text", help="Ask in writing.")] = None,
    audio: Annotated[
        Path | None, typer.Option("--audio", help="Ask with a recording (wav, mp3, ogg, webm, flac).")
    ] = None,
    session: Annotated[
        str, typer.Option("--session", help="Session id; turns of one session share memory.")
    ] = "default",
    kb: Annotated[Path | None, typer.Option("--kb", help="A folder (txt, md, html, pdf, docx) to search.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Where to write the spoken reply (WAV).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the turn result as JSON.")] = False,
    speak: Annotated[bool, typer.Option("--speak/--no-speak", help="Synthesize the reply audio.")] = True,
) -> None:
    """Ask the agent one question and hear the answer."""
    from api.turn_cli import run_ask

    if (text is None) == (audio is None):
        fail("give exactly one of --text or --audio")
    settings = load_settings(kb_dir=kb, speak=speak)
    result = _run(run_ask(settings, text=text, audio=audio, session=session, out=out))
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    if result["transcript"] and audio is not None:
        typer.echo(f"you said: {result['transcript']}")
    for call in result["tool_calls"]:
        typer.echo(f"tool: {call['name']}({json.dumps(call['arguments'])}) -> {call['status']}")
    typer.echo(result["answer"])
    for citation in result["citations"]:
        typer.echo(f"  [{citation['id']}] {citation['source']}: {citation['title']}")
    if result.get("audio_path"):
        typer.echo(f"audio: {result['audio_path']}")
    typer.echo(f"trace: voicegraph trace {session} --turn {result['turn']}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Serve the HTTP API."""
    from api.process_memory import limit_malloc_arenas

    limit_malloc_arenas()  # before the server's threads start allocating
    import uvicorn

    from api.app import create_app

    settings = load_settings(host=host, port=port)
    # X-Forwarded-For is believed per VOICEGRAPH_TRUSTED_PROXIES (api/forwarded.py), not uvicorn's default.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, proxy_headers=False)


@app.command()
def trace(
    session: Annotated[str, typer.Argument(help="The session id.")],
    turn: Annotated[int | None, typer.Option("--turn", help="Only this turn.")] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="The session's tenant (default: the local one).")
    ] = None,
    all_attributes: Annotated[bool, typer.Option("--all", help="Print every attribute of every span.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the traces as JSON, as the API returns them.")] = False,
) -> None:
    """Print a session's turns as span trees: what was heard, each plan, each tool call, the speech."""
    from api.trace_cli import load_traces, render_trace

    settings = load_settings()
    traces = _run(load_traces(settings, tenant or settings.tenant, session))
    if turn is not None:
        traces = [t for t in traces if t.get("turn") == turn]
        if not traces:
            fail(f"session {session!r} has no trace of turn {turn}")
    if as_json:
        typer.echo(json.dumps({"session_id": session, "traces": traces}, indent=2, ensure_ascii=False))
        return
    typer.echo("\n\n".join("\n".join(render_trace(t, all_attributes=all_attributes)) for t in traces))


class BenchMode(StrEnum):
    stages = "stages"
    latency = "latency"
    hearing = "hearing"
    realtime = "realtime"
    paralinguistics = "paralinguistics"
    load = "load"


@app.command()
def bench(
    mode: Annotated[
        BenchMode,
        typer.Argument(
            help="stages: one spoken turn in-process, stage by stage, with model load times and memory. "
            "latency: warm turns of three kinds over HTTP on each engine (first audio, answer audio, total, "
            "tokens, peak memory, start-up). hearing: word error rate of the recognizer on a spoken set. "
            "realtime: spoken turns over /v1/realtime (end of speech to first audio, barge-in). "
            "paralinguistics: how right and how cheap the figures of how a turn was said are. "
            "load: many sessions at once against replicas over HTTP, then a check of every session."
        ),
    ] = BenchMode.stages,
    question: Annotated[str, typer.Option(help="stages: the question, spoken by the TTS.")] = (
        "What time is it in Tokyo?"
    ),
    audio: Annotated[Path | None, typer.Option("--audio", help="stages: use this recording instead.")] = None,
    turns: Annotated[
        int | None,
        typer.Option(min=1, help="Turns to time (stages: 1; latency, realtime: 5 of each kind; load: 5 per session)."),
    ] = None,
    compare: Annotated[
        bool, typer.Option("--compare/--no-compare", help="latency: also run the transformers engine, as a ratio.")
    ] = True,
    sessions: Annotated[int, typer.Option(min=1, help="load: sessions at once.")] = 200,
    replicas: Annotated[int, typer.Option(min=1, help="load: replicas to start (without --url).")] = 2,
    url: Annotated[
        list[str] | None, typer.Option("--url", help="load: a replica's base URL (repeatable); none: start them here.")
    ] = None,
    kill: Annotated[bool, typer.Option("--kill", help="load: kill a replica a third of the way through.")] = False,
    api_key: Annotated[str | None, typer.Option("--api-key", help="load: the key to send to --url replicas.")] = None,
) -> None:
    """Measure this machine: latency, memory and hearing, printed as tables."""
    if mode is BenchMode.latency:
        from api.latency_bench import run_latency_bench

        typer.echo(guard(run_latency_bench, load_settings(), turns=turns or 5, compare=compare))
    elif mode is BenchMode.realtime:
        from api.realtime_bench import run_realtime_bench

        typer.echo(guard(run_realtime_bench, load_settings(), turns=turns or 5))
    elif mode is BenchMode.hearing:
        from api.hearing_bench import run_hearing_bench

        typer.echo(guard(run_hearing_bench, models_root=load_settings().models_root))
    elif mode is BenchMode.load:
        from api.load_bench import run_load_bench

        if kill and url:
            fail("--kill needs replicas the bench starts itself: drop --url")
        report = run_load_bench(
            sessions=sessions, turns=turns or 5, replicas=replicas, urls=url or (), kill=kill, api_key=api_key
        )
        typer.echo(report.render())
        if not report.consistent:
            raise typer.Exit(1)
    elif mode is BenchMode.paralinguistics:
        from api.paralinguistics_bench import run_paralinguistics_bench

        typer.echo(guard(run_paralinguistics_bench))
    else:
        from api.bench import run_bench

        settings = load_settings(memory="memory")
        typer.echo(_run(run_bench(settings, question=question, audio=audio, turns=turns or 1)))


@app.command("eval")
def evaluate(
    cases: Annotated[
        Path | None,
        typer.Option(
            "--cases",
            help="Your own cases (JSONL, or YAML for .yaml/.yml): questions with the tool and arguments expected, "
            "run with your settings and tenant, your tools included (they run as in a real turn). "
            "Without it: the spoken tool-call set shipped with voicegraph.",
        ),
    ] = None,
    spoken: Annotated[
        bool, typer.Option("--spoken/--no-spoken", help="Run the dialogues (shipped or --cases).")
    ] = True,
    bfcl: Annotated[
        bool, typer.Option("--bfcl/--no-bfcl", help="Run BFCL non-live simple, multiple and irrelevance.")
    ] = True,
    limit: Annotated[
        int | None, typer.Option(min=1, help="BFCL: at most this many cases of each category, the same ones each run.")
    ] = None,
    typed: Annotated[bool, typer.Option("--typed", help="Type the questions instead of speaking them.")] = False,
    tenant: Annotated[str | None, typer.Option(help="--cases: run as this tenant (default: the local one).")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write every figure and case here.")] = None,
) -> None:
    """Evaluate the planner: tool choice and arguments on spoken dialogues, knowledge answers,
    word error rate, and BFCL; each figure beside its goal."""
    from api.eval_cli import run_eval_command

    if cases is not None and not spoken:
        fail("--cases runs dialogues: drop --no-spoken")
    if not spoken and not bfcl:
        fail("nothing to run: --no-spoken and --no-bfcl")
    table = guard(
        run_eval_command,
        load_settings(),
        cases=cases,
        spoken=spoken,
        bfcl=bfcl,
        limit=limit,
        typed=typed,
        tenant=tenant,
        json_path=json_path,
    )
    typer.echo(table)


@models_app.command("prepare")
def models_prepare() -> None:
    """Assemble the packaged planner model into the data dir, and convert it for the
    transformers engine when that is the one in use (done once); Whisper base too when it is
    the recognizer in use."""
    from model.assets import assemble_planner_gguf, prepare_planner_model

    settings = load_settings()
    path = guard(assemble_planner_gguf, settings.models_root)
    if settings.resolved_engine() == "transformers":
        path = guard(prepare_planner_model, settings.models_root)
    typer.echo(f"planner model ready: {path}")
    if "base" in settings.asr_model.split("+"):
        from model.whisper_assets import assemble_whisper_base

        typer.echo(f"recognizer ready: {guard(assemble_whisper_base, settings.models_root)}")


@planner_app.command("serve")
def planner_serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
) -> None:
    """Serve the packaged planner model over the OpenAI-compatible API (llama.cpp), for replicas
    run with VOICEGRAPH_PLANNER=openai; VOICEGRAPH_PLANNER_API_KEY, when set, is required of clients."""
    import uvicorn

    from model.assets import PLANNER_GGUF_NAME, assemble_planner_gguf
    from model.planner_server import build_planner_server

    settings = load_settings()
    name = Path(PLANNER_GGUF_NAME).stem
    key = settings.planner_api_key.get_secret_value() if settings.planner_api_key else None
    gguf = guard(assemble_planner_gguf, settings.models_root)
    server = guard(
        build_planner_server,
        gguf,
        model_name=name,
        context_tokens=settings.context_tokens,
        threads=settings.threads,
        api_key=key,
    )
    typer.echo(
        f"planner server: VOICEGRAPH_PLANNER=openai VOICEGRAPH_PLANNER_URL=http://{host}:{port}/v1 "
        f"VOICEGRAPH_PLANNER_MODEL={name} VOICEGRAPH_PLANNER_TOOL_CHOICE=forced",
        err=True,
    )
    uvicorn.run(server, host=host, port=port, log_level="warning")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
