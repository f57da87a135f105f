// A hands-free conversation over /v1/realtime (the OpenAI Realtime protocol, GA event names):
// the microphone streams in as input_audio_buffer.append; the server hears when the user
// starts and stops speaking (server VAD), answers each turn and streams the answer's audio,
// which plays as it comes. Speaking over the answer stops it at once (barge-in).

import { HandsFreeCard } from "./handsfree-card.js";
import { openMicrophone } from "./microphone.js";
import { showError } from "./notice.js";
import { pcm16Base64ToFloat } from "./pcm.js";
import { AudioTrack, PcmPlayer } from "./pcm-player.js";

const KEY_PROTOCOL = "openai-insecure-api-key.";  // how a browser, which cannot set headers, sends the key
const SILENCE_MS = 500;

function realtimeUrl(session) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/v1/realtime?session_id=${encodeURIComponent(session)}`;
}

/** A turn of the conversation: the user's speech, then the response that answers it. */
class Turn {
  constructor() {
    this.card = new HandsFreeCard();
    this.responseId = null;
    this.done = false;  // response.done came
    this.status = null;
    this.interrupted = false;  // the user spoke over it: the rest of its audio is not played
    this.track = null;
    this.speechStartMs = NaN;  // where the speech began in the input audio, by the server's clock
  }
}

/**
 * One hands-free connection: the microphone streamed in, the server's events shown on turn
 * cards, the answers played. `onState(text)` hears what it is doing now (listening, hearing
 * you, …); `onClose(err)` that it closed, and why when the user did not close it.
 */
export class Conversation {
  constructor({ context, session, key, voice, onState, onClose }) {
    this.context = context;
    this.session = session;
    this.key = key;
    this.voice = voice;
    this.onState = onState;
    this.onClose = onClose;
    this.player = new PcmPlayer(context);
    this.socket = null;
    this.mic = null;
    this.opened = false;
    this.closed = false;
    this.queued = [];  // audio captured before the socket opened
    this.turns = new Map();  // by user item, response and output item id
    this.listening = null;  // the turn whose speech is being heard
    this.answering = null;  // the turn whose response is running
    this.heard = null;  // the last turn heard and not answered yet
  }

  async open() {
    try {
      this.mic = await openMicrophone(this.context, (audio) => this.sendAudio(audio));
    } catch (err) {
      this.close(new Error(`the microphone is unavailable (${err.message})`));
      return;
    }
    if (this.closed) return this.mic.stop();  // stopped while the browser asked for the microphone
    const protocols = this.key ? ["realtime", KEY_PROTOCOL + this.key] : ["realtime"];
    try {
      this.socket = new WebSocket(realtimeUrl(this.session), protocols);
    } catch (err) {
      this.close(new Error(`cannot open the realtime connection (${err.message})`));
      return;
    }
    this.socket.addEventListener("open", () => this.ready());
    this.socket.addEventListener("message", (message) => this.receive(message.data));
    this.socket.addEventListener("close", (event) => this.lost(event));
  }

  ready() {
    this.opened = true;
    const input = {
      transcription: { model: "whisper" },
      turn_detection: { type: "server_vad", silence_duration_ms: SILENCE_MS },
    };
    const output = { voice: this.voice };
    this.send({ type: "session.update", session: { type: "realtime", audio: { input, output } } });
    for (const event of this.queued) this.send(event);
    this.queued = [];
    this.onState("listening");
  }

  sendAudio(audio) {
    const event = { type: "input_audio_buffer.append", audio };
    if (this.opened) this.send(event);
    else if (!this.closed) this.queued.push(event);
  }

  send(event) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(event));
  }

  /** The socket closed: by the user, or refused or lost, which the page says. */
  lost(event) {
    if (this.closed) return;
    const why = event.reason ? `: ${event.reason}` : "";
    this.close(new Error(this.opened
      ? `the realtime connection closed (code ${event.code}${why})`
      : `the realtime connection was refused (code ${event.code}${why}): is the API key right?`));
  }

  /** Close the socket and the microphone, stop the audio; `err` is why, when it was not the user. */
  close(err) {
    if (this.closed) return;
    this.closed = true;
    if (this.mic) this.mic.stop();
    // Before the socket closes, so that a truncation still reaches the server.
    this.cutPlayback(err ? "the connection closed" : "you turned hands-free off");
    if (this.socket) this.socket.close(1000);
    for (const turn of new Set(this.turns.values())) if (!turn.done) turn.card.done("closed");
    this.onClose(err);
  }

  receive(data) {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (this.closed || !event || typeof event.type !== "string" || !Object.hasOwn(HANDLERS, event.type)) return;
    HANDLERS[event.type](this, event);
  }

  /** Stop the answer playing, if one is (`why`), and tell the server how much of it was heard. */
  cutPlayback(why) {
    const cut = this.player.stop();
    const turn = cut && this.turns.get(cut.itemId);
    if (!turn) return;
    const heardMs = Math.floor(cut.heardMs);
    turn.card.interrupted(heardMs, why);
    // A finished answer the server keeps whole unless told how much was heard; an unfinished
    // one it cancels itself, keeping what it reckons was heard, and refuses to truncate.
    if (turn.done && turn.status === "completed") {
      const truncate = { type: "conversation.item.truncate", item_id: cut.itemId, content_index: 0 };
      this.send({ ...truncate, audio_end_ms: heardMs });
    }
  }

  /** The user started speaking: stop the answer playing, if any (barge-in), and start a turn. */
  speechStarted(event) {
    if (this.answering) this.answering.interrupted = true;  // the server cancels it
    this.cutPlayback("you spoke over it");
    this.listening = new Turn();
    this.listening.speechStartMs = Number(event.audio_start_ms);
    this.turns.set(event.item_id, this.listening);
    this.listening.card.mark("speech_started", "you started speaking");
    this.listening.card.stage("hearing you…", "hearing");
    this.onState("hearing you…");
  }

  speechStopped(event) {
    const turn = this.turns.get(event.item_id);
    if (!turn) return;
    const spoke = Number(event.audio_end_ms) - turn.speechStartMs;
    const length = Number.isFinite(spoke) ? ` (${fmtSeconds(spoke)} of speech)` : "";
    turn.card.mark("speech_stopped", `you stopped${length}`);
    turn.card.stage("thinking…", "thinking");
    if (this.listening === turn) this.listening = null;
    this.onState("thinking…");
  }

  /** The user item's final transcript: a turn to answer, or noise (no words) that is no turn. */
  transcribed(event) {
    const turn = this.turns.get(event.item_id);
    if (!turn) return;
    if (!event.transcript) {
      turn.card.node.remove();
      this.turns.delete(event.item_id);
      this.onState("listening");
      return;
    }
    turn.card.heard(event.transcript);
    this.heard = turn;
  }

  responseCreated(response) {
    const turn = this.heard || new Turn();  // a response to no speech of ours still gets a card
    this.heard = null;
    turn.responseId = response.id;
    this.turns.set(response.id, turn);
    this.answering = turn;
    turn.card.mark("response_created", "response started");
  }

  itemAdded(event) {
    const turn = this.turns.get(event.response_id);
    const item = event.item || {};
    if (!turn) return;
    this.turns.set(item.id, turn);
    if (item.type === "mcp_call") turn.card.toolCalled(item);
  }

  /** A tool call's item, done: it says why the call failed, when it did. */
  itemDone(event) {
    const item = event.item || {};
    const turn = this.turns.get(item.id);
    if (turn && item.type === "mcp_call") turn.card.toolFinished(item.id, !item.error, item.error);
  }

  audioDelta(event) {
    const turn = this.turns.get(event.response_id);
    if (!turn || turn.interrupted) return;
    const samples = pcm16Base64ToFloat(event.delta);
    if (!samples || !samples.length) return;
    if (!turn.track) {
      turn.track = new AudioTrack(event.item_id, (track) => turn.card.showAudio(track));
      turn.card.firstAudio();
      this.onState("answering…");
    }
    this.player.play(samples, turn.track);
  }

  responseDone(response) {
    const turn = this.turns.get(response.id);
    if (!turn) return;
    const details = response.status_details || {};
    turn.done = true;
    turn.status = response.status;
    turn.card.done(response.status, details.reason);
    if (details.error && details.error.message) turn.card.fail(details.error.message);
    if (this.answering === turn) this.answering = null;
    if (!this.listening) this.onState("listening");
  }
}

function fmtSeconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

const answerDelta = (hf, event) => {
  const turn = hf.turns.get(event.response_id);
  if (turn && typeof event.delta === "string") turn.card.answerDelta(event.delta);
};

/** What each server event does to the page; events not named here change nothing shown. */
const HANDLERS = {
  "input_audio_buffer.speech_started": (hf, event) => hf.speechStarted(event),
  "input_audio_buffer.speech_stopped": (hf, event) => hf.speechStopped(event),
  "conversation.item.input_audio_transcription.delta": (hf, event) => {
    const turn = hf.turns.get(event.item_id);
    if (turn && typeof event.delta === "string") turn.card.hear(event.delta);
  },
  "conversation.item.input_audio_transcription.completed": (hf, event) => hf.transcribed(event),
  "response.created": (hf, event) => hf.responseCreated(event.response),
  "response.output_item.added": (hf, event) => hf.itemAdded(event),
  "response.mcp_call.completed": (hf, event) => hf.turns.get(event.item_id)?.card.toolFinished(event.item_id, true),
  "response.mcp_call.failed": (hf, event) => hf.turns.get(event.item_id)?.card.toolFinished(event.item_id, false),
  "response.output_item.done": (hf, event) => hf.itemDone(event),
  "response.output_audio_transcript.delta": answerDelta,
  "response.output_text.delta": answerDelta,
  "response.output_audio_transcript.done": (hf, event) => {
    hf.turns.get(event.response_id)?.card.answerDone(event.transcript);
  },
  "response.output_text.done": (hf, event) => hf.turns.get(event.response_id)?.card.answerDone(event.text),
  "response.output_audio.delta": (hf, event) => hf.audioDelta(event),
  "response.done": (hf, event) => hf.responseDone(event.response || {}),
  "conversation.item.truncated": (hf, event) => hf.turns.get(event.item_id)?.card.truncated(event.audio_end_ms),
  error: (hf, event) => showError(new Error(`realtime: ${(event.error && event.error.message) || "an error"}`)),
};
