// Status, errors and hints under the composer; which controls can be used right now.

import { ui } from "./dom.js";
import { ApiError } from "./http.js";
import { state } from "./state.js";

export function showError(err) {
  const status = err instanceof ApiError && err.status ? `Error ${err.status}: ` : "Error: ";
  ui.error.textContent = status + (err.message || String(err));
  ui.error.hidden = false;
}

export function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = "";
}

export function hint(text) {
  ui.hint.textContent = text;
}

export function setBusy(busy) {
  state.busy = busy;
  document.body.classList.toggle("busy", busy);
  ui.status.textContent = busy ? "thinking…" : "";
  refreshControls();
}

/** One way to talk at a time: an HTTP turn and the hands-free connection each lock the other out. */
export function refreshControls() {
  const locked = state.busy || state.handsFree;
  for (const control of [ui.textInput, ui.send, ui.fileInput, ui.newSession, ui.voiceSelect]) {
    control.disabled = locked;
  }
  ui.ptt.disabled = locked || !state.mic;
  ui.fileSend.disabled = locked || !ui.fileInput.files.length;
  ui.handsFree.disabled = state.busy || !state.realtime;
}
