// The page's elements and small helpers for building nodes. Server text only ever reaches the
// page as text (textContent, text nodes, attributes), never as HTML.

const $ = (id) => document.getElementById(id);

export const ui = {
  sessionId: $("session-id"), newSession: $("new-session"), currentVoice: $("current-voice"), apiKey: $("api-key"),
  turns: $("turns"), empty: $("empty"), ptt: $("ptt"), pttLabel: $("ptt-label"), recording: $("recording"),
  recTime: $("rec-time"), textForm: $("text-form"), textInput: $("text-input"), send: $("send"),
  fileForm: $("file-form"), fileInput: $("file-input"), fileSend: $("file-send"), speak: $("speak"),
  voicePick: $("voice-pick"), voiceSelect: $("voice-select"), status: $("status"), error: $("error"),
  hint: $("ptt-hint"), handsFree: $("handsfree"), handsFreeLabel: $("handsfree-label"),
  handsFreeState: $("handsfree-state"),
};

/** An element with attributes (`text` sets its text) and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

export function fmtMs(ms) {
  const value = Number(ms) || 0;
  return `${value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString("en-US")} ms`;
}

/** Only http(s) links: a citation URL must never run script. */
export function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

/** Pretty JSON when `text` parses as JSON, else the text itself. */
export function pretty(text) {
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function attrText(value) {
  return Array.isArray(value) ? value.join(", ") : String(value);
}

/** Whether the page is scrolled to (nearly) its end, so new content should keep it there. */
export function nearBottom() {
  const root = document.documentElement;
  return root.scrollHeight - (window.scrollY + window.innerHeight) < 120;
}

/** Append `node` to the conversation and bring it into view. */
export function showCard(node) {
  ui.turns.append(node);
  ui.empty.hidden = true;
  node.scrollIntoView({ block: "end" });
}
