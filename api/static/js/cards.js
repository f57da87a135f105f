// A finished turn's card: what was heard, the answer with its citations, tool calls, audio.

import { el, fmtMs, safeUrl, showCard } from "./dom.js";
import { state } from "./state.js";
import { stopStreamedAudio } from "./stream-player.js";
import { voiceLabel } from "./voices.js";

const TIMINGS = [["asr", "ASR"], ["plan", "plan"], ["act", "tools"], ["speak", "speak"],
  ["first_audio", "first audio"], ["total", "total"]];

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

/** How a spoken turn was said: the cue the planner read, then the figures behind it. */
function howSaidNode(p) {
  if (!p) return null;
  const figures = [
    p.pitch_hz != null ? `pitch ${Math.round(p.pitch_hz)} Hz` + (p.pitch_end === "rising" ? ", rising" : "") : null,
    p.rate_wps != null ? `${p.rate_wps.toFixed(1)} words/s` : null,
    p.loudness_dbfs != null ? `${Math.round(p.loudness_dbfs)} dBFS` : null,
    p.pauses ? `${p.pauses} pause${p.pauses > 1 ? "s" : ""}` : null,
  ].filter(Boolean).join(" · ");
  const delivery = p.delivery ? " · reply slowed to match" : "";
  return el("p", { class: "how-said muted small", "data-testid": "how-said", title: "how it was said" },
    `${p.cue || "said as usual"} — ${figures}${delivery}`);
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

export function addTurn(turn, { autoplay, source }) {
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
      el("p", { class: "text", "data-testid": "transcript" }, turn.transcript || "(nothing heard)"),
      howSaidNode(turn.paralinguistics)),
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
  state.views.push({ turn: turn.turn, traceId: turn.trace_id || null, timeline, done: false });
  showCard(li);
  if (autoplay && audio) audio.play().catch(() => { /* autoplay refused: the controls are there */ });
  return li;
}
