// Plays the answer's audio in hands-free mode: pcm16 deltas scheduled back to back on the
// AudioContext's clock (no gap, no overlap), all stopped at once when the user speaks over it.

import { WIRE_RATE } from "./pcm.js";

const LEAD_S = 0.05;  // the first chunk starts this far ahead, so its start is not clipped

/** One assistant item's audio: what was scheduled and what was heard of it, in chunks and ms. */
export class AudioTrack {
  constructor(itemId, onChange) {
    this.itemId = itemId;
    this.onChange = onChange;
    this.chunks = 0;
    this.played = 0;  // chunks played to their end
    this.scheduledMs = 0;
    this.heardMs = 0;
  }

  scheduled(ms) {
    this.chunks += 1;
    this.scheduledMs += ms;
    this.onChange(this);
  }

  heard(ms, whole) {
    if (whole) this.played += 1;
    this.heardMs += ms;
    this.onChange(this);
  }
}

export class PcmPlayer {
  constructor(context) {
    this.context = context;
    this.nextTime = 0;
    this.chunks = new Set();  // {source, track, at, duration, cut} not yet ended
  }

  /** Play `samples` (24 kHz) for `track`, right after what is already scheduled. */
  play(samples, track) {
    const buffer = this.context.createBuffer(1, samples.length, WIRE_RATE);
    buffer.copyToChannel(samples, 0);
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    const at = Math.max(this.nextTime, this.context.currentTime + LEAD_S);
    const chunk = { source, track, at, duration: buffer.duration, cut: false };
    source.addEventListener("ended", () => {
      this.chunks.delete(chunk);
      if (!chunk.cut) track.heard(chunk.duration * 1000, true);
    });
    source.start(at);
    this.chunks.add(chunk);
    this.nextTime = at + buffer.duration;
    track.scheduled(buffer.duration * 1000);
  }

  /**
   * Stop all playback now. Each track is credited with what was heard of it (by the clock, less
   * the output's latency: what had not reached the speakers was not heard); returns the track
   * that was still playing, or null when all of it had been heard.
   */
  stop() {
    const now = this.context.currentTime - (this.context.outputLatency || 0);
    let playing = null;
    for (const chunk of this.chunks) {
      chunk.cut = true;  // its `ended` comes later, and must not count it again
      const heard = Math.min(Math.max(now - chunk.at, 0), chunk.duration);
      if (heard > 0) chunk.track.heard(heard * 1000, heard === chunk.duration);
      if (heard < chunk.duration) playing = chunk.track;
      try {
        chunk.source.stop();
      } catch { /* not started yet */ }
    }
    this.chunks.clear();
    this.nextTime = 0;
    return playing;
  }
}
