// The card an HTTP turn streams into (server-sent events), until its result replaces it.

import { el, fmtMs, nearBottom, showCard } from "./dom.js";
import { state } from "./state.js";
import { StreamPlayer } from "./stream-player.js";

/** The card a turn streams into, until its result replaces it. */
export function pendingTurn(source, session) {
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
  showCard(node);

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
