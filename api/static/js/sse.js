// Server-sent events read from a fetch body (EventSource cannot POST).

import { ApiError } from "./http.js";

/** Server-sent events from a fetch body: {event, data} for each event, as it completes. */
export async function* sseEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let done = false;
  try {
    while (!done) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (err) {
        throw new ApiError(0, `the answer was cut off (${err.message})`);
      }
      done = chunk.done;
      buffer += done ? decoder.decode() : decoder.decode(chunk.value, { stream: true });
      // Lines end in \n, \r\n or \r; a \r last in a chunk waits: the next chunk may start with \n.
      const held = !done && buffer.endsWith("\r");
      let text = (held ? buffer.slice(0, -1) : buffer).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = text.indexOf("\n\n")) >= 0) {  // a blank line ends an event
        const event = parseEvent(text.slice(0, cut));
        text = text.slice(cut + 2);
        if (event) yield event;
      }
      buffer = held ? `${text}\r` : text;  // the start of an event still on its way
    }
    // An event the stream ended in the middle of is dropped, as EventSource drops it.
  } finally {
    if (!done) reader.cancel().catch(() => { /* closed already */ });  // the page gave up on it
  }
}

/** One event's lines: `event: NAME` and `data: ...` (joined by newlines); `:` lines are comments. */
function parseEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { event, data: data.join("\n") } : null;
}
