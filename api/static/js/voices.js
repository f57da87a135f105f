// The voice library: descriptions for voice labels, and the "Answer in" picker.

import { el, ui } from "./dom.js";
import { api } from "./http.js";
import { state } from "./state.js";

export function voiceText(id) {
  if (!id) return "default voice";
  const voice = state.voices.get(id);
  return voice && voice.description ? `${id} — ${voice.description}` : id;
}

export function voiceLabel(id, attrs = {}) {
  return el("span", { ...attrs, "data-voice-id": id || "" }, voiceText(id));
}

export function setCurrentVoice(id) {
  ui.currentVoice.setAttribute("data-voice-id", id || "");
  ui.currentVoice.textContent = ui.currentVoice.title = voiceText(id);
}

function refreshVoiceLabels() {
  for (const node of document.querySelectorAll("[data-voice-id]")) {
    node.textContent = voiceText(node.getAttribute("data-voice-id"));
  }
  ui.currentVoice.title = ui.currentVoice.textContent;
}

/** The voice library, for descriptions and the voice picker; a server without one is fine. */
export async function loadVoices() {
  let list = [];
  try {
    const body = await api("/v1/voices");
    list = Array.isArray(body) ? body : (body && body.voices) || [];
    state.voicesLoaded = true;
  } catch {
    state.voicesLoaded = false;
  }
  state.voices = new Map(list.map((voice) => [voice.id, voice]));
  const chosen = ui.voiceSelect.value;
  ui.voiceSelect.replaceChildren(
    el("option", { value: "keep" }, "the session's voice"),
    el("option", { value: "" }, "the default voice"),
    ...list.map((voice) => el("option", { value: voice.id, title: voice.description }, voice.name || voice.id)),
  );
  ui.voiceSelect.value = state.voices.has(chosen) || chosen === "" ? chosen : "keep";
  ui.voicePick.hidden = list.length === 0;
  refreshVoiceLabels();
}

/** The voice the next answer asks for: null keeps the session's, "" is the default voice. */
export function voiceOption() {
  const value = ui.voiceSelect.value;
  return ui.voicePick.hidden || value === "keep" ? null : value;
}
