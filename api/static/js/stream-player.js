// The page's AudioContext, and the player a streamed HTTP turn's answer plays through.

import { state } from "./state.js";

const AUDIO_LEAD_S = 0.05;  // the first chunk starts this far ahead, so its start is not clipped

/** Make (or wake) the page's AudioContext; called in a click or key handler, which lets it play. */
export function unlockAudio() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  try {
    if (!state.audio) state.audio = new Context();
    if (state.audio.state === "suspended") state.audio.resume().catch(() => { /* stays silent */ });
  } catch {
    state.audio = null;  // no Web Audio: the answer's <audio> player plays it instead
  }
}

export function stopStreamedAudio() {
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
export class StreamPlayer {
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
