// Which session the page talks in: from the URL's #session=ID, or a new random one.

import { addTurn } from "./cards.js";
import { ui } from "./dom.js";
import { api, sessionPath } from "./http.js";
import { clearError, hint, showError } from "./notice.js";
import { state } from "./state.js";
import { stopStreamedAudio } from "./stream-player.js";
import { refreshTraces } from "./timeline.js";
import { setCurrentVoice } from "./voices.js";

const SESSION_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function randomSessionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export function sessionFromHash() {
  const found = /(?:^#|&)session=([^&]*)/.exec(location.hash);
  if (!found) return null;
  try {
    const id = decodeURIComponent(found[1]);
    return SESSION_RE.test(id) ? id : null;
  } catch {
    return null;
  }
}

export function useSession(id) {
  state.session = id;
  state.views = [];
  ui.sessionId.textContent = id;
  history.replaceState(null, "", `#session=${encodeURIComponent(id)}`);
  stopStreamedAudio();  // a turn still streaming into the old session goes on unseen and unheard
  for (const audio of ui.turns.querySelectorAll("audio")) URL.revokeObjectURL(audio.src);
  ui.turns.replaceChildren();
  ui.empty.hidden = false;
  setCurrentVoice(null);
  clearError();
  hint("");
}

/** Re-render the turns an existing session already has (a reload with #session=ID). */
export async function loadSession() {
  const session = state.session;
  let found;
  try {
    found = await api(sessionPath());
  } catch (err) {
    if (err.status !== 404) showError(err);
    return;
  }
  if (session !== state.session) return;
  const shown = new Set(state.views.map((view) => view.turn));
  for (const turn of found.turns || []) if (!shown.has(turn.turn)) addTurn(turn, { autoplay: false });
  setCurrentVoice(found.voice);
  await refreshTraces();
}
