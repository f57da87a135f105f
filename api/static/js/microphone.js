// The microphone, captured continuously for hands-free mode and handed on as pcm16 24 kHz
// chunks of CHUNK_MS (base64), the Realtime protocol's input audio.

import { floatToPcm16Base64, Resampler, WIRE_RATE } from "./pcm.js";

const CHUNK_MS = 100;
const WORKLET = new URL("./pcm-worklet.js", import.meta.url);
const FALLBACK_FRAMES = 4096;
const CONSTRAINTS = {
  // Echo cancellation keeps the answer playing from the speakers from being heard as the user.
  audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
};

/**
 * Open the microphone on `context` and call `onChunk(base64)` every CHUNK_MS of audio, until
 * the returned `stop()`. An AudioWorklet taps it where there is one, else a ScriptProcessor.
 */
export async function openMicrophone(context, onChunk) {
  const stream = await navigator.mediaDevices.getUserMedia(CONSTRAINTS);
  const resampler = new Resampler(context.sampleRate, WIRE_RATE);
  const chunker = new Chunker(WIRE_RATE * CHUNK_MS / 1000, onChunk);
  let tap = null;
  let source;
  try {
    tap = await openTap(context, (samples) => chunker.push(resampler.push(samples)));
    source = context.createMediaStreamSource(stream);
    source.connect(tap.node);
  } catch (err) {
    if (tap) tap.close();
    stopTracks(stream);
    throw err;
  }
  return {
    stop() {
      source.disconnect();
      tap.close();
      stopTracks(stream);
    },
  };
}

export function stopTracks(stream) {
  for (const track of stream.getTracks()) track.stop();
}

/** A node that calls `onSamples(Float32Array)` with the mono audio it is fed. */
async function openTap(context, onSamples) {
  // Nodes only run while the destination pulls them: both taps feed it, silenced.
  const mute = context.createGain();
  mute.gain.value = 0;
  mute.connect(context.destination);
  let node;
  if (context.audioWorklet && window.AudioWorkletNode) {
    await context.audioWorklet.addModule(WORKLET);
    node = new AudioWorkletNode(context, "pcm-capture", { numberOfInputs: 1, numberOfOutputs: 1 });
    node.port.onmessage = (event) => onSamples(event.data);
  } else {
    node = context.createScriptProcessor(FALLBACK_FRAMES, 1, 1);
    node.onaudioprocess = (event) => onSamples(new Float32Array(event.inputBuffer.getChannelData(0)));
  }
  node.connect(mute);
  return {
    node,
    close() {
      node.disconnect();
      mute.disconnect();
      if (node.port) node.port.onmessage = null;
      else node.onaudioprocess = null;
    },
  };
}

/** Gathers samples into chunks of `size` and hands each on as base64 pcm16. */
class Chunker {
  constructor(size, onChunk) {
    this.buffer = new Float32Array(size);
    this.filled = 0;
    this.onChunk = onChunk;
  }

  push(samples) {
    let offset = 0;
    while (offset < samples.length) {
      const taken = Math.min(samples.length - offset, this.buffer.length - this.filled);
      this.buffer.set(samples.subarray(offset, offset + taken), this.filled);
      this.filled += taken;
      offset += taken;
      if (this.filled === this.buffer.length) {
        this.onChunk(floatToPcm16Base64(this.buffer));
        this.filled = 0;
      }
    }
  }
}
