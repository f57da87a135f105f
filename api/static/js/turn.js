// A turn over HTTP: POST /v1/sessions/{id}/turns, streamed into a live card when the server
// streams (Accept: text/event-stream), then shown as the turn's card.

import { addTurn } from "./cards.js";
import { el, ui } from "./dom.js";
import { api, ApiError, errorDetail, jsonBody, parseJson, send, sessionPath } from "./http.js";
import { pendingTurn } from "./live-card.js";
import { clearError, hint, setBusy, showError } from "./notice.js";
import { sseEvents } from "./sse.js";
import { state } from "./state.js";
import { refreshTraces, timelineNodes } from "./timeline.js";
import { loadVoices, setCurrentVoice, voiceOption } from "./voices.js";

const EVENT_STREAM = "text/event-stream";

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

export function sendText(text) {
  const body = { text, speak: ui.speak.checked };
  const voice = voiceOption();
  if (voice !== null) body.voice = voice;
  const init = { headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  return runTurn(init, "typed");
}

export function sendAudio(blob, filename, source) {
  const form = new FormData();
  form.append("audio", blob, filename);
  form.append("speak", ui.speak.checked ? "true" : "false");
  const voice = voiceOption();
  if (voice !== null) form.append("voice", voice);
  return runTurn({ body: form }, source);
}
