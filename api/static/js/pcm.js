// Audio as the Realtime protocol carries it: pcm16 mono at 24 kHz, little-endian, base64.

export const WIRE_RATE = 24000;

/**
 * Resamples a stream of chunks from one rate to another by linear interpolation, carrying its
 * place (and the last sample) from chunk to chunk so the joins are seamless. No anti-alias
 * filter: what is above 12 kHz in speech is too faint to matter to the server's VAD and ASR.
 */
export class Resampler {
  constructor(from, to) {
    this.step = from / to;  // input samples per output sample
    this.at = 0;  // where the next output sample falls, in input samples from this chunk's start
    this.last = 0;  // the previous chunk's last sample, at position -1
  }

  push(input) {
    const n = input.length;
    if (!n) return new Float32Array(0);
    const out = new Float32Array(Math.max(0, Math.floor((n - 1 - this.at) / this.step) + 1));
    let at = this.at;
    for (let k = 0; k < out.length; k += 1, at += this.step) {
      const i = Math.floor(at);
      const a = i < 0 ? this.last : input[i];
      const b = i + 1 < n ? input[i + 1] : a;
      out[k] = a + (b - a) * (at - i);
    }
    this.at = at - n;
    this.last = input[n - 1];
    return out;
  }
}

/** Float samples (-1..1) as base64 pcm16 little-endian. */
export function floatToPcm16Base64(samples) {
  const view = new DataView(new ArrayBuffer(samples.length * 2));
  for (let i = 0; i < samples.length; i += 1) {
    const clipped = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(i * 2, Math.round(clipped * 32767), true);
  }
  const bytes = new Uint8Array(view.buffer);
  let binary = "";
  const STRIDE = 0x8000;  // String.fromCharCode takes its arguments on the stack: a slice at a time
  for (let i = 0; i < bytes.length; i += STRIDE) {
    binary += String.fromCharCode(...bytes.subarray(i, i + STRIDE));
  }
  return btoa(binary);
}

/** Base64 pcm16 little-endian as float samples; null when it is not base64. */
export function pcm16Base64ToFloat(b64) {
  let binary;
  try {
    binary = atob(b64);
  } catch {
    return null;
  }
  const samples = new Float32Array(binary.length >> 1);
  for (let i = 0; i < samples.length; i += 1) {
    const value = binary.charCodeAt(2 * i) | (binary.charCodeAt(2 * i + 1) << 8);
    samples[i] = (value >= 0x8000 ? value - 0x10000 : value) / 32768;
  }
  return samples;
}
