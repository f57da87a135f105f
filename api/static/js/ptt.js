// Push to talk: hold the button (or Space) to record with MediaRecorder, release to send.

import { ui } from "./dom.js";
import { stopTracks } from "./microphone.js";
import { clearError, hint, showError } from "./notice.js";
import { state } from "./state.js";
import { unlockAudio } from "./stream-player.js";
import { sendAudio } from "./turn.js";

const MIN_RECORDING_MS = 300;
const RECORDING_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];

const rec = { pressing: false, recorder: null, chunks: [], startedAt: 0, ticker: 0 };

async function startRecording() {
  if (state.busy || state.handsFree || rec.pressing || rec.recorder) return;
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

/** Wire the button; false when the page cannot use the microphone (it needs https or localhost). */
export function setUpPushToTalk() {
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
