// The voicegraph playground: talk to the agent, read its answers and see each turn's spans.
// Plain browser JavaScript, no build step. Server text only ever reaches the page as text
// (textContent, text nodes, attributes), never as HTML.
//
// A turn streams (Accept: text/event-stream): a live card shows the transcript, the tool
// calls and the answer as they come, and the spoken answer plays chunk by chunk through Web
// Audio; the `result` event then replaces the live card with the turn's card.
"use strict";

(() => {
  const SESSION_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
  const KEY_STORE = "voicegraph.apiKey";
  const MIN_RECORDING_MS = 300;
  const RECORDING_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];
  const TIMINGS = [["asr", "ASR"], ["plan", "plan"], ["act", "tools"], ["speak", "speak"],
    ["first_audio", "first audio"], ["total", "total"]];
  const TOOL_ARGUMENTS = "gen_ai.tool.call.arguments";
  const TOOL_RESULT = "gen_ai.tool.call.result";
  const EVENT_STREAM = "text/event-stream";
  const AUDIO_LEAD_S = 0.05;  // the first chunk starts this far ahead, so its start is not clipped

  const $ = (id) => document.getElementById(id);
  const ui = {
    sessionId: $("session-id"), newSession: $("new-session"), currentVoice: $("current-voice"), apiKey: $("api-key"),
    turns: $("turns"), empty: $("empty"), ptt: $("ptt"), pttLabel: $("ptt-label"), recording: $("recording"),
    recTime: $("rec-time"), textForm: $("text-form"), textInput: $("text-input"), send: $("send"),
    fileForm: $("file-form"), fileInput: $("file-input"), fileSend: $("file-send"), speak: $("speak"),
    voicePick: $("voice-pick"), voiceSelect: $("voice-select"), status: $("status"), error: $("error"),
    hint: $("ptt-hint"),
  };
  const state = {
    session: "", busy: false, mic: false, voices: new Map(), voicesLoaded: false, views: [], seq: 0,
    knownTraces: new Set(), audio: null, player: null,
  };

  // ---- small helpers -------------------------------------------------------------------

  /** An element with attributes (`text` sets its text) and children (strings become text nodes). */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  function fmtMs(ms) {
    const value = Number(ms) || 0;
    return `${value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString("en-US")} ms`;
  }

  /** Only http(s) links: a citation URL must never run script. */
  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
  }

  /** Pretty JSON when `text` parses as JSON, else the text itself. */
  function pretty(text) {
    if (typeof text !== "string") return JSON.stringify(text, null, 2);
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return text;
    }
  }

  function attrText(value) {
    return Array.isArray(value) ? value.join(", ") : String(value);
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  function parseJson(text) {
    try {
      return text ? JSON.parse(text) : null;
    } catch {
      return null;
    }
  }

  function errorDetail(body, fallback) {
    const detail = body && body.detail !== undefined ? body.detail : fallback;
    return typeof detail === "string" ? detail : JSON.stringify(detail);
  }

  /** fetch with the API key; a non-2xx answer throws ApiError carrying the server's `detail`. */
  async function send(path, options = {}) {
    const headers = new Headers(options.headers || {});
    const key = ui.apiKey.value.trim();
    if (key) headers.set("Authorization", `Bearer ${key}`);
    let response;
    try {
      response = await fetch(path, { ...options, headers });
    } catch (err) {
      throw new ApiError(0, `cannot reach the server (${err.message})`);
    }
    if (!response.ok) {
      const text = await response.text().catch(() => "");
      throw new ApiError(response.status, errorDetail(parseJson(text), text || response.statusText));
    }
    return response;
  }

  /** The JSON body of a 2xx answer (null when there is none). */
  async function jsonBody(response) {
    let text;
    try {
      text = await response.text();
    } catch (err) {
      throw new ApiError(0, `the answer was cut off (${err.message})`);
    }
    return parseJson(text);
  }

  async function api(path, options = {}) {
    return jsonBody(await send(path, options));
  }

  const sessionPath = (suffix = "") => `/v1/sessions/${encodeURIComponent(state.session)}${suffix}`;

  // ---- status, errors, busy ------------------------------------------------------------

  function showError(err) {
    const status = err instanceof ApiError && err.status ? `Error ${err.status}: ` : "Error: ";
    ui.error.textContent = status + (err.message || String(err));
    ui.error.hidden = false;
  }

  function clearError() {
    ui.error.hidden = true;
    ui.error.textContent = "";
  }

  function hint(text) {
    ui.hint.textContent = text;
  }

  function setBusy(busy) {
    state.busy = busy;
    document.body.classList.toggle("busy", busy);
    for (const control of [ui.textInput, ui.send, ui.fileInput, ui.newSession, ui.voiceSelect]) {
      control.disabled = busy;
    }
    ui.ptt.disabled = busy || !state.mic;
    ui.fileSend.disabled = busy || !ui.fileInput.files.length;
    ui.status.textContent = busy ? "thinking…" : "";
  }

  // ---- sessions and voices -------------------------------------------------------------

  function randomSessionId() {
    const bytes = crypto.getRandomValues(new Uint8Array(6));
    return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  }

  function sessionFromHash() {
    const found = /(?:^#|&)session=([^&]*)/.exec(location.hash);
    if (!found) return null;
    try {
      const id = decodeURIComponent(found[1]);
      return SESSION_RE.test(id) ? id : null;
    } catch {
      return null;
    }
  }

  function useSession(id) {
    state.session = id;
    state.views = [];
    ui.sessionId.textContent = id;
    history.replaceState(null, "", `#session=${encodeURIComponent(id)}`);
    stopStreamedAudio();  // a turn still streaming into the old session goes on unseen and unheard
    for (const audio of ui.turns.querySelectorAll("audio")) URL.revokeObjectURL(audio.src);
    ui.turns.replaceChildren();
    ui.empty.hidden = false;
    setCurrentVoice(null);
    clearError();
    hint("");
  }

  function voiceText(id) {
    if (!id) return "default voice";
    const voice = state.voices.get(id);
    return voice && voice.description ? `${id} — ${voice.description}` : id;
  }

  function voiceLabel(id, attrs = {}) {
    return el("span", { ...attrs, "data-voice-id": id || "" }, voiceText(id));
  }

  function setCurrentVoice(id) {
    ui.currentVoice.setAttribute("data-voice-id", id || "");
    ui.currentVoice.textContent = ui.currentVoice.title = voiceText(id);
  }

  function refreshVoiceLabels() {
    for (const node of document.querySelectorAll("[data-voice-id]")) {
      node.textContent = voiceText(node.getAttribute("data-voice-id"));
    }
    ui.currentVoice.title = ui.currentVoice.textContent;
  }

  /** The voice library, for descriptions and the voice picker; a server without one is fine. */
  async function loadVoices() {
    let list = [];
    try {
      const body = await api("/v1/voices");
      list = Array.isArray(body) ? body : (body && body.voices) || [];
      state.voicesLoaded = true;
    } catch {
      state.voicesLoaded = false;
    }
    state.voices = new Map(list.map((voice) => [voice.id, voice]));
    const chosen = ui.voiceSelect.value;
    ui.voiceSelect.replaceChildren(
      el("option", { value: "keep" }, "the session's voice"),
      el("option", { value: "" }, "the default voice"),
      ...list.map((voice) => el("option", { value: voice.id, title: voice.description }, voice.name || voice.id)),
    );
    ui.voiceSelect.value = state.voices.has(chosen) || chosen === "" ? chosen : "keep";
    ui.voicePick.hidden = list.length === 0;
    refreshVoiceLabels();
  }

  /** Re-render the turns an existing session already has (a reload with #session=ID). */
  async function loadSession() {
    const session = state.session;
    let found;
    try {
      found = await api(sessionPath());
    } catch (err) {
      if (err.status !== 404) showError(err);
      return;
    }
    if (session !== state.session) return;
    const shown = new Set(state.views.map((view) => view.turn));
    for (const turn of found.turns || []) if (!shown.has(turn.turn)) addTurn(turn, { autoplay: false });
    setCurrentVoice(found.voice);
    await refreshTraces();
  }

  // ---- turns ---------------------------------------------------------------------------

  function voiceOption() {
    const value = ui.voiceSelect.value;
    return ui.voicePick.hidden || value === "keep" ? null : value;
  }

  /** Ask for the turn as a stream; an older server answers JSON, and the page waits for it. */
  async function runTurn(init, source) {
    if (state.busy) return false;
    clearError();
    hint("");
    setBusy(true);
    const session = state.session;
    let live = null;
    try {
      const headers = new Headers(init.headers || {});
      headers.set("Accept", EVENT_STREAM);
      const response = await send(sessionPath("/turns"), { method: "POST", ...init, headers });
      const type = response.headers.get("Content-Type") || "";
      let result;
      if (type.startsWith(EVENT_STREAM) && response.body) {
        live = pendingTurn(source, session);
        result = await readTurnStream(response, live);
      } else {
        result = await jsonBody(response);
      }
      if (session !== state.session) return true;
      if (live) live.node.remove();
      // Chunks already played (or playing): the turn's player stays for replay, without autoplay.
      const streamed = Boolean(live && live.player.heard && live.player.context.state === "running");
      if (live && !streamed) live.player.stop();
      const card = addTurn(result, { autoplay: !streamed, source });
      if (live) live.player.show(card);
      setCurrentVoice(result.voice);
      if (!state.voicesLoaded) loadVoices();
      refreshTraces();
      return true;
    } catch (err) {
      if (live) {
        live.player.stop();  // the turn was not kept: its answer stops too
        live.node.remove();
      }
      showError(err);
      if (session === state.session) await showFailedTurn();
      return false;
    } finally {
      setBusy(false);
    }
  }

  // ---- the streamed turn ---------------------------------------------------------------

  /** Server-sent events from a fetch body: {event, data} for each event, as it completes. */
  async function* sseEvents(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let done = false;
    try {
      while (!done) {
        let chunk;
        try {
          chunk = await reader.read();
        } catch (err) {
          throw new ApiError(0, `the answer was cut off (${err.message})`);
        }
        done = chunk.done;
        buffer += done ? decoder.decode() : decoder.decode(chunk.value, { stream: true });
        // Lines end in \n, \r\n or \r; a \r last in a chunk waits: the next chunk may start with \n.
        const held = !done && buffer.endsWith("\r");
        let text = (held ? buffer.slice(0, -1) : buffer).replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = text.indexOf("\n\n")) >= 0) {  // a blank line ends an event
          const event = parseEvent(text.slice(0, cut));
          text = text.slice(cut + 2);
          if (event) yield event;
        }
        buffer = held ? `${text}\r` : text;  // the start of an event still on its way
      }
      // An event the stream ended in the middle of is dropped, as EventSource drops it.
    } finally {
      if (!done) reader.cancel().catch(() => { /* closed already */ });  // the page gave up on it
    }
  }

  /** One event's lines: `event: NAME` and `data: ...` (joined by newlines); `:` lines are comments. */
  function parseEvent(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    return data.length ? { event, data: data.join("\n") } : null;
  }

  /** Feed the live card from the stream; the turn's result, or ApiError for an `error` event. */
  async function readTurnStream(response, live) {
    let result = null;
    let failure = null;
    for await (const { event, data } of sseEvents(response.body)) {
      const body = parseJson(data);
      if (body === null || typeof body !== "object") continue;
      if (result || failure) continue;  // read to the end, so the server finishes the turn undisturbed
      if (event === "result") result = body;
      else if (event === "error") {
        failure = new ApiError(Number(body.status) || 0, errorDetail(body, "the turn failed"));
      } else live.on(event, body);
    }
    if (failure) throw failure;
    if (!result) throw new ApiError(0, "the answer was cut off before the turn finished");
    return result;
  }

  /** The card a turn streams into, until its result replaces it. */
  function pendingTurn(source, session) {
    const transcript = el("p", { class: "text muted", "data-testid": "transcript" }, "…");
    const answer = el("p", { class: "text streaming", "data-testid": "answer" });
    const chips = el("ul", { class: "chips", "data-testid": "tool-calls", hidden: true });
    const stage = el("span", { class: "stage muted", "data-testid": "stage" },
      source === "typed" ? "thinking…" : "listening…");
    const node = el("li", {
      class: "turn pending", "data-testid": "pending-turn", "aria-busy": "true", "data-audio-chunks": 0,
      "data-audio-played": 0,
    },
    el("div", { class: "turn-head" },
      el("span", { class: "turn-no" }, "New turn"),
      source ? el("span", { class: "tag" }, source) : null,
      stage),
    el("div", { class: "msg you" }, el("span", { class: "who" }, "You"), transcript),
    el("div", { class: "msg agent" }, el("span", { class: "who" }, "Agent"),
      el("div", { class: "body" }, answer, chips)));
    ui.turns.append(node);
    ui.empty.hidden = true;
    node.scrollIntoView({ block: "end" });

    const player = new StreamPlayer(state.audio, node, () => session === state.session);
    const calls = new Map();
    const chip = (call) => {
      let found = calls.get(call.id);
      if (!found) {
        found = el("li", { class: "chip running", "data-testid": "tool-call", "data-status": "running" });
        calls.set(call.id, found);
        chips.append(found);
        chips.hidden = false;
      }
      return found;
    };
    const handlers = {
      transcript(body) {
        transcript.textContent = body.text || "…";
        transcript.classList.toggle("muted", !body.text);
        stage.textContent = "thinking…";
      },
      tool_call(body) {
        chip(body).textContent = `${body.name} · running`;
        stage.textContent = `calling ${body.name}…`;
      },
      tool_result(body) {
        const node = chip(body);
        const ok = body.status === "ok";
        node.className = `chip${ok ? "" : " failed"}`;
        node.setAttribute("data-status", String(body.status));
        node.title = body.error || "";
        node.textContent = `${body.name} · ${body.status} · ${fmtMs(body.duration_ms)}`;
        stage.textContent = "thinking…";
      },
      text(body) {
        if (typeof body.text !== "string") return;
        answer.append(body.text);
        stage.textContent = "answering…";
      },
      audio(body) {
        if (typeof body.audio_wav_b64 === "string") player.add(body.audio_wav_b64);
      },
    };
    return {
      node,
      player,
      on(event, body) {
        if (session !== state.session || !Object.hasOwn(handlers, event)) return;
        const follow = nearBottom();
        handlers[event](body);
        if (follow) node.scrollIntoView({ block: "end" });
      },
    };
  }

  function nearBottom() {
    const root = document.documentElement;
    return root.scrollHeight - (window.scrollY + window.innerHeight) < 120;
  }

  // ---- streamed audio ------------------------------------------------------------------

  /** Make (or wake) the page's AudioContext; called in a click or key handler, which lets it play. */
  function unlockAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    try {
      if (!state.audio) state.audio = new Context();
      if (state.audio.state === "suspended") state.audio.resume().catch(() => { /* stays silent */ });
    } catch {
      state.audio = null;  // no Web Audio: the answer's <audio> player plays it instead
    }
  }

  function stopStreamedAudio() {
    if (state.player) state.player.stop();
    state.player = null;
  }

  /**
   * Plays a turn's audio chunks in order and back to back: each WAV is decoded (in order, one
   * after the other) and started exactly where the one before it ends on the AudioContext's
   * clock, so there is no gap and no overlap. Counts what it scheduled and what finished in
   * `data-audio-chunks` and `data-audio-played` on the card it shows (the live card, then the
   * turn's card).
   */
  class StreamPlayer {
    constructor(context, node, current) {
      this.context = context;
      this.node = node;
      this.current = current;
      this.queue = Promise.resolve();
      this.nextTime = 0;
      this.sources = new Set();
      this.scheduled = 0;
      this.played = 0;
      this.stopped = !context;
      this.heard = false;  // whether any chunk was given to the speakers
    }

    add(b64) {
      if (this.stopped || !this.current()) return;
      let bytes;
      try {
        bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      } catch {
        return;
      }
      if (state.player !== this) {
        stopStreamedAudio();  // a new answer cuts the one before it short
        state.player = this;
        for (const audio of document.querySelectorAll("audio")) audio.pause();
      }
      this.heard = true;
      this.queue = this.queue
        .then(() => this.context.decodeAudioData(bytes.buffer))
        .then((buffer) => this.schedule(buffer))
        .catch(() => { /* a chunk that cannot be decoded is skipped */ });
    }

    schedule(buffer) {
      if (this.stopped) return;
      const source = this.context.createBufferSource();
      source.buffer = buffer;
      source.connect(this.context.destination);
      const at = Math.max(this.nextTime, this.context.currentTime + AUDIO_LEAD_S);
      source.addEventListener("ended", () => {
        this.sources.delete(source);
        if (this.stopped) return;
        this.played += 1;
        this.count();
      });
      source.start(at);
      this.sources.add(source);
      this.nextTime = at + buffer.duration;
      this.scheduled += 1;
      this.count();
    }

    count() {
      this.node.setAttribute("data-audio-chunks", String(this.scheduled));
      this.node.setAttribute("data-audio-played", String(this.played));
    }

    /** Count on `node` from now on (the turn's card, once the result replaced the live card). */
    show(node) {
      this.node = node;
      this.count();
    }

    stop() {
      this.stopped = true;
      for (const source of this.sources) {
        try {
          source.stop();
        } catch { /* not started yet */ }
      }
      this.sources.clear();
      if (state.player === this) state.player = null;
    }
  }

  /** A turn that failed left the session as it was, but its trace says how far it got and why. */
  async function showFailedTurn() {
    let traces = [];
    try {
      traces = (await api(sessionPath("/traces"))).traces || [];
    } catch {
      return;
    }
    const trace = traces[traces.length - 1];
    if (!trace || trace.status !== "error" || state.knownTraces.has(trace.trace_id)) return;
    state.knownTraces.add(trace.trace_id);
    const timeline = el("section", { class: "timeline", "data-testid": "timeline" }, ...timelineNodes(trace));
    ui.turns.append(el("li", { class: "turn failed", "data-testid": "failed-turn" },
      el("div", { class: "turn-head" },
        el("span", { class: "turn-no" }, `Turn ${trace.turn ?? "?"}`),
        el("span", { class: "tag failed" }, "failed, not kept"),
        el("time", { class: "muted" }, new Date(trace.started_at * 1000).toLocaleTimeString())),
      el("p", { class: "error", "data-testid": "failure" }, trace.error || "the turn failed"),
      timeline));
    ui.empty.hidden = true;
  }

  function sendText(text) {
    const body = { text, speak: ui.speak.checked };
    const voice = voiceOption();
    if (voice !== null) body.voice = voice;
    const init = { headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    return runTurn(init, "typed");
  }

  function sendAudio(blob, filename, source) {
    const form = new FormData();
    form.append("audio", blob, filename);
    form.append("speak", ui.speak.checked ? "true" : "false");
    const voice = voiceOption();
    if (voice !== null) form.append("voice", voice);
    return runTurn({ body: form }, source);
  }

  /** The answer's text, its [n] markers turned into links to the matching citations. */
  function answerNode(answer, citations, key) {
    const ids = new Set(citations.map((c) => String(c.id)));
    const node = el("p", { class: "text", "data-testid": "answer" });
    let last = 0;
    for (const match of answer.matchAll(/\[(\d+)\]/g)) {
      if (!ids.has(match[1])) continue;
      node.append(answer.slice(last, match.index));
      const link = el("a", { href: `#cite-${key}-${match[1]}`, class: "cite", "data-testid": "cite-marker" },
        `[${match[1]}]`);
      node.append(el("sup", {}, link));
      last = match.index + match[0].length;
    }
    node.append(answer.slice(last));
    return node;
  }

  function citationsNode(citations, key) {
    if (!citations.length) return null;
    return el("ol", { class: "citations", "data-testid": "citations" }, citations.map((c) => {
      const url = safeUrl(c.url);
      const title = c.title || c.source;
      return el("li", { id: `cite-${key}-${c.id}`, value: Number(c.id) || null, "data-testid": "citation" },
        url ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, title) : el("strong", {}, title),
        el("span", { class: "muted" }, ` · ${c.source}`),
        c.snippet ? el("q", { class: "snippet" }, c.snippet) : null);
    }));
  }

  function toolChips(calls) {
    if (!calls.length) return null;
    return el("ul", { class: "chips", "data-testid": "tool-calls" }, calls.map((call) => el("li", {
      class: `chip${call.status === "ok" ? "" : " failed"}`, "data-testid": "tool-call", title: call.error || "",
    }, `${call.name} · ${call.status} · ${fmtMs(call.duration_ms)}`)));
  }

  function timingsNode(timings) {
    const parts = TIMINGS.filter(([name]) => timings[name] !== undefined)
      .map(([name, label]) => el("span", { class: "timing", "data-stage": name }, `${label} ${fmtMs(timings[name])}`));
    return el("span", { class: "timings", "data-testid": "timings" }, parts);
  }

  function audioNode(b64) {
    if (!b64) return null;
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const audio = el("audio", { controls: true, preload: "auto", "data-testid": "audio" });
    audio.src = URL.createObjectURL(new Blob([bytes], { type: "audio/wav" }));
    audio.addEventListener("play", () => {
      stopStreamedAudio();
      for (const other of document.querySelectorAll("audio")) if (other !== audio) other.pause();
    });
    return audio;
  }

  function addTurn(turn, { autoplay, source }) {
    const key = `${++state.seq}`;
    const citations = turn.citations || [];
    const audio = audioNode(turn.audio_wav_b64);
    const timeline = el("section", { class: "timeline", "data-testid": "timeline" },
      el("p", { class: "muted small" }, "Loading the timeline…"));
    const when = turn.at ? new Date(turn.at) : new Date();
    const li = el("li", { class: "turn", "data-testid": "turn", "data-turn": turn.turn },
      el("div", { class: "turn-head" },
        el("span", { class: "turn-no" }, `Turn ${turn.turn}`),
        source ? el("span", { class: "tag" }, source) : null,
        el("time", { datetime: when.toISOString(), class: "muted" }, when.toLocaleTimeString())),
      el("div", { class: "msg you" }, el("span", { class: "who" }, "You"),
        el("p", { class: "text", "data-testid": "transcript" }, turn.transcript || "(nothing heard)")),
      el("div", { class: "msg agent" }, el("span", { class: "who" }, "Agent"),
        el("div", { class: "body" },
          answerNode(turn.answer || "", citations, key),
          citationsNode(citations, key),
          toolChips(turn.tool_calls || []),
          audio,
          el("p", { class: "meta" },
            el("span", {}, "Voice: ", voiceLabel(turn.voice, { "data-testid": "voice" })),
            timingsNode(turn.timings_ms || {})))),
      timeline);
    ui.turns.append(li);
    ui.empty.hidden = true;
    state.views.push({ turn: turn.turn, traceId: turn.trace_id || null, timeline, done: false });
    li.scrollIntoView({ block: "end" });
    if (autoplay && audio) audio.play().catch(() => { /* autoplay refused: the controls are there */ });
    return li;
  }

  // ---- timelines -----------------------------------------------------------------------

  /** The trace of a turn: by trace id when the turn gave one, else the last one of its number. */
  function pickTrace(traces, view) {
    if (view.traceId) return traces.find((t) => t.trace_id === view.traceId) || null;
    const same = traces.filter((t) => t.turn === view.turn);
    return same.filter((t) => t.status === "ok").pop() || same.pop() || null;
  }

  async function refreshTraces() {
    const session = state.session;
    const waiting = state.views.filter((view) => !view.done);
    if (!waiting.length) return;
    let traces = [];
    let note = "No trace was kept for this turn.";
    try {
      traces = (await api(sessionPath("/traces"))).traces || [];
    } catch (err) {
      if (err.status !== 404) note = `The timeline is unavailable: ${err.message}`;
    }
    if (session !== state.session) return;
    for (const trace of traces) state.knownTraces.add(trace.trace_id);
    for (const view of waiting) {
      const trace = pickTrace(traces, view);
      view.done = Boolean(trace);
      view.timeline.replaceChildren(...(trace ? timelineNodes(trace) : [el("p", { class: "muted small" }, note)]));
    }
  }

  function flatten(span, depth, rows) {
    rows.push({ span, depth });
    for (const child of span.children || []) flatten(child, depth + 1, rows);
    return rows;
  }

  function timelineNodes(trace) {
    const rows = flatten(trace.root, 0, []);
    const total = Math.max(Number(trace.duration_ms) || 0, ...rows.map(({ span }) => span.start_ms + span.duration_ms), 1);
    const head = el("div", { class: "tl-head" },
      el("strong", {}, "Timeline"),
      el("span", { class: "muted" }, `${rows.length} spans · ${fmtMs(total)} · ${trace.status}`),
      el("code", { class: "muted", title: "trace id" }, trace.trace_id));
    return [head, el("div", { class: "spans" }, rows.map(({ span, depth }) => spanRow(span, depth, total)))];
  }

  function spanRow(span, depth, total) {
    const attributes = span.attributes || {};
    const kind = String(span.name).split(" ")[0];
    const tool = attributes["gen_ai.operation.name"] === "execute_tool" || kind === "execute_tool";
    const failed = span.status === "error";
    const bar = el("span", { class: "span-bar" });
    bar.style.left = `${(100 * Math.max(0, span.start_ms)) / total}%`;
    bar.style.width = `${Math.max(0.4, (100 * span.duration_ms) / total)}%`;
    const name = el("span", { class: "name", title: span.name }, el("span", { class: "span-name" }, span.name),
      failed ? el("span", { class: "badge" }, attributes["error.type"] || "error") : null);
    name.style.paddingLeft = `${depth * 1.1 + 0.2}rem`;
    return el("details", {
      class: `span kind-${kind}${tool ? " tool" : ""}${failed ? " failed" : ""}`,
      "data-testid": "span", "data-span-name": span.name, "data-status": span.status,
    },
    el("summary", {}, name, el("span", { class: "track" }, bar),
      el("span", { class: "dur", "data-testid": "span-duration" }, fmtMs(span.duration_ms))),
    spanDetails(span, attributes, tool));
  }

  function spanDetails(span, attributes, tool) {
    const shown = tool ? new Set([TOOL_ARGUMENTS, TOOL_RESULT]) : new Set();
    const rest = Object.entries(attributes).filter(([key]) => !shown.has(key));
    return el("div", { class: "span-details", "data-testid": "span-details" },
      el("p", { class: "muted" },
        `starts at ${fmtMs(span.start_ms)} · lasts ${fmtMs(span.duration_ms)} · ${span.status}`),
      span.error ? el("p", { class: "span-error" }, span.error) : null,
      tool && attributes[TOOL_ARGUMENTS] !== undefined ? [el("h4", {}, "Arguments"),
        el("pre", { "data-testid": "tool-arguments" }, pretty(attributes[TOOL_ARGUMENTS]))] : null,
      tool && attributes[TOOL_RESULT] !== undefined ? [el("h4", {}, "Result"),
        el("pre", { "data-testid": "tool-result" }, pretty(attributes[TOOL_RESULT]))] : null,
      rest.length ? el("dl", { class: "attributes" },
        rest.map(([key, value]) => [el("dt", {}, key), el("dd", {}, attrText(value))])) : null);
  }

  // ---- push to talk --------------------------------------------------------------------

  const rec = { pressing: false, recorder: null, chunks: [], startedAt: 0, ticker: 0 };

  function stopTracks(stream) {
    for (const track of stream.getTracks()) track.stop();
  }

  async function startRecording() {
    if (state.busy || rec.pressing || rec.recorder) return;
    rec.pressing = true;
    unlockAudio();  // in the press itself: the answer plays after the release, outside any gesture
    clearError();
    hint("");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      rec.pressing = false;
      showError(new Error(`the microphone is unavailable (${err.message})`));
      return;
    }
    if (!rec.pressing) {
      stopTracks(stream);
      hint("Too short: hold the button while you speak.");
      return;
    }
    const type = RECORDING_TYPES.find((t) => MediaRecorder.isTypeSupported(t));
    const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    rec.chunks = [];
    recorder.addEventListener("dataavailable", (event) => {
      if (event.data.size) rec.chunks.push(event.data);
    });
    recorder.addEventListener("stop", () => finishRecording(recorder, stream));
    recorder.start();
    rec.recorder = recorder;
    rec.startedAt = performance.now();
    ui.ptt.classList.add("on");
    ui.pttLabel.textContent = "Release to send";
    ui.recording.hidden = false;
    ui.recTime.textContent = "0.0";
    rec.ticker = setInterval(() => {
      ui.recTime.textContent = ((performance.now() - rec.startedAt) / 1000).toFixed(1);
    }, 100);
  }

  function stopRecording() {
    if (!rec.pressing) return;
    rec.pressing = false;
    if (rec.recorder && rec.recorder.state !== "inactive") rec.recorder.stop();
  }

  function finishRecording(recorder, stream) {
    stopTracks(stream);
    clearInterval(rec.ticker);
    rec.recorder = null;
    ui.ptt.classList.remove("on");
    ui.pttLabel.textContent = "Hold to talk";
    ui.recording.hidden = true;
    if (performance.now() - rec.startedAt < MIN_RECORDING_MS) {
      hint("Too short: hold the button while you speak.");
      return;
    }
    const type = recorder.mimeType || "audio/webm";
    const extension = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
    sendAudio(new Blob(rec.chunks, { type }), `speech.${extension}`, "spoken");
  }

  function setUpPushToTalk() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
      ui.ptt.disabled = true;
      ui.ptt.classList.add("unavailable");
      hint("The microphone needs https or localhost: upload a file or type instead.");
      return false;
    }
    ui.ptt.addEventListener("pointerdown", (event) => {
      if (event.button === 0) startRecording();
    });
    for (const name of ["pointerup", "pointerleave", "pointercancel", "blur"]) {
      ui.ptt.addEventListener(name, stopRecording);
    }
    ui.ptt.addEventListener("contextmenu", (event) => event.preventDefault());
    ui.ptt.addEventListener("keydown", (event) => {
      if (event.code !== "Space") return;
      event.preventDefault();
      if (!event.repeat) startRecording();
    });
    ui.ptt.addEventListener("keyup", (event) => {
      if (event.code !== "Space") return;
      event.preventDefault();
      stopRecording();
    });
    return true;
  }

  // ---- wiring --------------------------------------------------------------------------

  function start() {
    ui.apiKey.value = localStorage.getItem(KEY_STORE) || "";
    let keyTimer = 0;
    ui.apiKey.addEventListener("input", () => {
      localStorage.setItem(KEY_STORE, ui.apiKey.value.trim());
      clearTimeout(keyTimer);
      keyTimer = setTimeout(() => {  // once typing pauses, use the new key
        loadVoices();
        if (!state.views.length) loadSession();
      }, 400);
    });
    ui.newSession.addEventListener("click", () => {
      useSession(randomSessionId());
      ui.textInput.focus();
    });
    ui.textForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      unlockAudio();
      const text = ui.textInput.value;
      if (!text.trim()) {
        hint("Type a question first.");
        return;
      }
      if (await sendText(text)) ui.textInput.value = "";
      ui.textInput.focus();
    });
    ui.fileInput.addEventListener("change", () => {
      ui.fileSend.disabled = state.busy || !ui.fileInput.files.length;
    });
    ui.fileForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const file = ui.fileInput.files[0];
      if (!file) return;
      unlockAudio();
      if (await sendAudio(file, file.name || "audio", `file: ${file.name}`)) ui.fileInput.value = "";
      ui.fileSend.disabled = state.busy || !ui.fileInput.files.length;
    });
    state.mic = setUpPushToTalk();
    const fromHash = sessionFromHash();
    useSession(fromHash || randomSessionId());
    loadVoices();
    if (fromHash) loadSession();
    document.body.dataset.ready = "true";
  }

  start();
})();
