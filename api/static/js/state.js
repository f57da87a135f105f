// What the page knows, shared by its modules.

export const KEY_STORE = "voicegraph.apiKey";

export const state = {
  session: "",
  busy: false,  // an HTTP turn is running
  handsFree: false,  // the hands-free connection is open (or opening)
  mic: false,  // whether push-to-talk can record
  realtime: false,  // whether hands-free mode can run
  voices: new Map(),
  voicesLoaded: false,
  views: [],  // the turn cards shown, waiting for (or showing) their timelines
  seq: 0,
  knownTraces: new Set(),
  audio: null,  // the page's AudioContext, made in a click or key handler
  player: null,  // the StreamPlayer now playing a streamed answer
};
