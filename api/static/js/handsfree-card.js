// A hands-free turn's card: what the user said, the tool calls, the answer, what was played of
// it, how the response ended, and a timeline of when each of that happened.

import { el, fmtMs, nearBottom, showCard } from "./dom.js";

export class HandsFreeCard {
  constructor() {
    this.t0 = performance.now();
    this.times = {};
    this.transcript = el("p", { class: "text muted", "data-testid": "transcript" }, "…");
    this.answer = el("p", { class: "text", "data-testid": "answer" });
    this.chips = el("ul", { class: "chips", "data-testid": "tool-calls", hidden: true });
    this.failure = el("p", { class: "error", "data-testid": "failure", hidden: true });
    this.stageNode = el("span", { class: "stage muted", "data-testid": "stage" }, "listening…");
    this.status = el("span", { class: "tag", "data-testid": "response-status", hidden: true });
    this.audio = el("span", { "data-testid": "audio-played" });
    this.latency = el("span", { "data-testid": "latency" });
    this.timeline = el("ol", { class: "hf-timeline", "data-testid": "hf-timeline" });
    this.calls = new Map();
    this.node = el("li", {
      class: "turn pending", "data-testid": "handsfree-turn", "data-status": "listening", "aria-busy": "true",
      "data-audio-chunks": 0, "data-audio-played": 0, "data-audio-ms": 0,
    },
    el("div", { class: "turn-head" },
      el("span", { class: "turn-no" }, "Hands-free turn"),
      el("time", { class: "muted" }, new Date().toLocaleTimeString()),
      this.status,
      this.stageNode),
    el("div", { class: "msg you" }, el("span", { class: "who" }, "You"), this.transcript),
    el("div", { class: "msg agent" }, el("span", { class: "who" }, "Agent"),
      el("div", { class: "body" }, this.answer, this.chips, this.failure,
        el("p", { class: "meta" }, this.audio, this.latency))),
    el("section", { class: "timeline" }, el("div", { class: "tl-head" }, el("strong", {}, "Timeline")), this.timeline));
    showCard(this.node);
  }

  /** Keep the page at its end while the card grows, if that is where the user is reading. */
  update(change) {
    const follow = nearBottom();
    change();
    if (follow) this.node.scrollIntoView({ block: "end" });
  }

  /** A moment of the turn, timed from when the user started speaking (or the card was made). */
  mark(event, label) {
    const at = performance.now() - this.t0;
    this.times[event] = this.times[event] ?? at;
    this.update(() => this.timeline.append(el("li", { "data-event": event },
      el("span", { class: "at" }, `+${fmtMs(at)}`), ` ${label}`)));
  }

  stage(text, status) {
    this.stageNode.textContent = text;
    if (status) this.node.setAttribute("data-status", status);
  }

  hear(delta) {
    this.update(() => {
      if (this.transcript.classList.contains("muted")) this.transcript.textContent = "";
      this.transcript.classList.remove("muted");
      this.transcript.append(delta);
    });
  }

  heard(transcript) {
    this.transcript.textContent = transcript || "(nothing heard)";
    this.transcript.classList.toggle("muted", !transcript);
    this.mark("transcribed", "transcribed");
  }

  toolCalled(item) {
    const chip = el("li", { class: "chip running", "data-testid": "tool-call", "data-status": "running",
      "data-name": item.name },
    `${item.name} `, el("code", { "data-testid": "tool-arguments" }, item.arguments || "{}"),
    el("span", { class: "tool-state" }, " · running"));
    this.calls.set(item.id, chip);
    this.update(() => {
      this.chips.append(chip);
      this.chips.hidden = false;
    });
    this.stage(`calling ${item.name}…`, "calling");
    this.mark("tool_call", `called ${item.name}`);
  }

  toolFinished(itemId, ok, error) {
    const chip = this.calls.get(itemId);
    if (!chip) return;
    chip.className = `chip${ok ? "" : " failed"}`;
    chip.setAttribute("data-status", ok ? "ok" : "error");
    if (error) chip.title = error;
    chip.querySelector(".tool-state").textContent = ok ? " · completed" : " · failed";
  }

  answerDelta(delta) {
    this.update(() => this.answer.append(delta));
    this.stage("answering…", "answering");
  }

  /** The whole answer as the server closes it: what the deltas told, made exact. */
  answerDone(text) {
    if (typeof text === "string") this.answer.textContent = text;
  }

  showAudio(track) {
    this.node.setAttribute("data-audio-chunks", String(track.chunks));
    this.node.setAttribute("data-audio-played", String(track.played));
    this.node.setAttribute("data-audio-ms", String(Math.round(track.heardMs)));
    this.audio.textContent = `audio: ${fmtMs(track.heardMs)} heard of ${fmtMs(track.scheduledMs)}`;
  }

  firstAudio() {
    this.mark("first_audio", "first audio");
    if (this.times.speech_stopped !== undefined) {
      const wait = this.times.first_audio - this.times.speech_stopped;
      this.latency.textContent = ` · first audio ${fmtMs(wait)} after you stopped`;
    }
  }

  /** The answer's playback stopped after `ms` of its audio, `why` (the user spoke over it, …). */
  interrupted(ms, why) {
    this.node.setAttribute("data-interrupted-ms", String(ms));
    this.mark("interrupted", `${why}: playback stopped at ${fmtMs(ms)}`);
  }

  truncated(ms) {
    this.node.setAttribute("data-truncated-ms", String(ms));
    this.mark("truncated", `the server keeps the answer up to ${fmtMs(ms)}`);
  }

  /** How the response ended: completed, cancelled, failed (with why), or closed with the page. */
  done(status, detail) {
    const text = String(status);
    this.node.classList.remove("pending");
    this.node.removeAttribute("aria-busy");
    this.node.setAttribute("data-response-status", text);
    this.stage("", text);
    this.status.textContent = detail ? `${text}: ${detail}` : text;
    this.status.className = text === "completed" ? "tag" : "tag failed";
    this.status.hidden = false;
    this.mark("response_done", `response ${text}`);
  }

  fail(message) {
    this.failure.textContent = message;
    this.failure.hidden = false;
  }
}
