// Hands-free mode's toggle: while it is on, a Conversation (js/conversation.js) keeps the
// microphone open to /v1/realtime, and the other ways to talk wait.

import { Conversation } from "./conversation.js";
import { ui } from "./dom.js";
import { apiKey } from "./http.js";
import { clearError, hint, refreshControls, showError } from "./notice.js";
import { state } from "./state.js";
import { unlockAudio } from "./stream-player.js";
import { voiceOption } from "./voices.js";

let current = null;  // the open (or opening) conversation

/** Wire the toggle; false when the page cannot: it needs WebSocket, the microphone and Web Audio. */
export function setUpHandsFree() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!window.WebSocket || !Context || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    ui.handsFree.disabled = true;
    ui.handsFree.title = "Hands-free needs the microphone (https or localhost) and Web Audio.";
    return false;
  }
  ui.handsFree.addEventListener("click", () => (current ? current.close() : start()));
  return true;
}

function start() {
  if (state.busy) return;
  unlockAudio();  // in the click: the answers play later, outside any gesture
  clearError();
  hint("");
  if (!state.audio) {
    showError(new Error("hands-free needs Web Audio, which would not start"));
    return;
  }
  const conversation = new Conversation({
    context: state.audio,
    session: state.session,
    key: apiKey(),
    voice: voiceOption(),
    onState: (text) => {
      ui.handsFreeState.textContent = text;
    },
    onClose: (err) => {
      if (current === conversation) current = null;
      show(false);
      if (err) showError(err);
    },
  });
  current = conversation;
  show(true);
  conversation.open();
}

function show(on) {
  state.handsFree = on;
  ui.handsFree.classList.toggle("on", on);
  ui.handsFree.setAttribute("aria-pressed", String(on));
  ui.handsFreeLabel.textContent = on ? "Stop hands-free" : "Hands-free";
  ui.handsFreeState.textContent = on ? "connecting…" : "";
  ui.handsFreeState.hidden = !on;
  refreshControls();
}
