// The voicegraph playground: talk to the agent, read its answers and see each turn's spans.
// Plain browser JavaScript modules (./js), no build step; this one wires the page up.
//
// A turn over HTTP streams (Accept: text/event-stream): a live card shows the transcript, the
// tool calls and the answer as they come, and the spoken answer plays chunk by chunk through
// Web Audio; the `result` event then replaces the live card with the turn's card. Hands-free
// mode talks over /v1/realtime instead, the microphone always on (js/handsfree.js).

import { ui } from "./js/dom.js";
import { setUpHandsFree } from "./js/handsfree.js";
import { hint } from "./js/notice.js";
import { setUpPushToTalk } from "./js/ptt.js";
import { loadSession, randomSessionId, sessionFromHash, useSession } from "./js/session.js";
import { KEY_STORE, state } from "./js/state.js";
import { unlockAudio } from "./js/stream-player.js";
import { sendAudio, sendText } from "./js/turn.js";
import { loadVoices } from "./js/voices.js";

function watchApiKey() {
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
}

function setUpComposer() {
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
}

function start() {
  watchApiKey();
  setUpComposer();
  state.mic = setUpPushToTalk();
  state.realtime = setUpHandsFree();
  const fromHash = sessionFromHash();
  useSession(fromHash || randomSessionId());
  loadVoices();
  if (fromHash) loadSession();
  document.body.dataset.ready = "true";
}

start();
