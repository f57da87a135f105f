// A turn's trace as a timeline of its spans, each opening to show its attributes.

import { attrText, el, fmtMs, pretty } from "./dom.js";
import { api, sessionPath } from "./http.js";
import { state } from "./state.js";

const TOOL_ARGUMENTS = "gen_ai.tool.call.arguments";
const TOOL_RESULT = "gen_ai.tool.call.result";

/** The trace of a turn: by trace id when the turn gave one, else the last one of its number. */
function pickTrace(traces, view) {
  if (view.traceId) return traces.find((t) => t.trace_id === view.traceId) || null;
  const same = traces.filter((t) => t.turn === view.turn);
  return same.filter((t) => t.status === "ok").pop() || same.pop() || null;
}

export async function refreshTraces() {
  const session = state.session;
  const waiting = state.views.filter((view) => !view.done);
  if (!waiting.length) return;
  let traces = [];
  let note = "No trace was kept for this turn.";
  try {
    traces = (await api(sessionPath("/traces"))).traces || [];
  } catch (err) {
    if (err.status !== 404) note = `The timeline is unavailable: ${err.message}`;
  }
  if (session !== state.session) return;
  for (const trace of traces) state.knownTraces.add(trace.trace_id);
  for (const view of waiting) {
    const trace = pickTrace(traces, view);
    view.done = Boolean(trace);
    view.timeline.replaceChildren(...(trace ? timelineNodes(trace) : [el("p", { class: "muted small" }, note)]));
  }
}

function flatten(span, depth, rows) {
  rows.push({ span, depth });
  for (const child of span.children || []) flatten(child, depth + 1, rows);
  return rows;
}

export function timelineNodes(trace) {
  const rows = flatten(trace.root, 0, []);
  const total = Math.max(Number(trace.duration_ms) || 0, ...rows.map(({ span }) => span.start_ms + span.duration_ms), 1);
  const head = el("div", { class: "tl-head" },
    el("strong", {}, "Timeline"),
    el("span", { class: "muted" }, `${rows.length} spans · ${fmtMs(total)} · ${trace.status}`),
    el("code", { class: "muted", title: "trace id" }, trace.trace_id));
  return [head, el("div", { class: "spans" }, rows.map(({ span, depth }) => spanRow(span, depth, total)))];
}

function spanRow(span, depth, total) {
  const attributes = span.attributes || {};
  const kind = String(span.name).split(" ")[0];
  const tool = attributes["gen_ai.operation.name"] === "execute_tool" || kind === "execute_tool";
  const failed = span.status === "error";
  const bar = el("span", { class: "span-bar" });
  bar.style.left = `${(100 * Math.max(0, span.start_ms)) / total}%`;
  bar.style.width = `${Math.max(0.4, (100 * span.duration_ms) / total)}%`;
  const name = el("span", { class: "name", title: span.name }, el("span", { class: "span-name" }, span.name),
    failed ? el("span", { class: "badge" }, attributes["error.type"] || "error") : null);
  name.style.paddingLeft = `${depth * 1.1 + 0.2}rem`;
  return el("details", {
    class: `span kind-${kind}${tool ? " tool" : ""}${failed ? " failed" : ""}`,
    "data-testid": "span", "data-span-name": span.name, "data-status": span.status,
  },
  el("summary", {}, name, el("span", { class: "track" }, bar),
    el("span", { class: "dur", "data-testid": "span-duration" }, fmtMs(span.duration_ms))),
  spanDetails(span, attributes, tool));
}

function spanDetails(span, attributes, tool) {
  const shown = tool ? new Set([TOOL_ARGUMENTS, TOOL_RESULT]) : new Set();
  const rest = Object.entries(attributes).filter(([key]) => !shown.has(key));
  return el("div", { class: "span-details", "data-testid": "span-details" },
    el("p", { class: "muted" },
      `starts at ${fmtMs(span.start_ms)} · lasts ${fmtMs(span.duration_ms)} · ${span.status}`),
    span.error ? el("p", { class: "span-error" }, span.error) : null,
    tool && attributes[TOOL_ARGUMENTS] !== undefined ? [el("h4", {}, "Arguments"),
      el("pre", { "data-testid": "tool-arguments" }, pretty(attributes[TOOL_ARGUMENTS]))] : null,
    tool && attributes[TOOL_RESULT] !== undefined ? [el("h4", {}, "Result"),
      el("pre", { "data-testid": "tool-result" }, pretty(attributes[TOOL_RESULT]))] : null,
    rest.length ? el("dl", { class: "attributes" },
      rest.map(([key, value]) => [el("dt", {}, key), el("dd", {}, attrText(value))])) : null);
}
