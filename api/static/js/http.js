// Calls to the /v1 API, with the API key the user typed in.

import { ui } from "./dom.js";
import { state } from "./state.js";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export function parseJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

export function errorDetail(body, fallback) {
  const detail = body && body.detail !== undefined ? body.detail : fallback;
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

export function apiKey() {
  return ui.apiKey.value.trim();
}

/** fetch with the API key; a non-2xx answer throws ApiError carrying the server's `detail`. */
export async function send(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = apiKey();
  if (key) headers.set("Authorization", `Bearer ${key}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (err) {
    throw new ApiError(0, `cannot reach the server (${err.message})`);
  }
  if (!response.ok) {
    const text = await response.text().catch(() => "");
    throw new ApiError(response.status, errorDetail(parseJson(text), text || response.statusText));
  }
  return response;
}

/** The JSON body of a 2xx answer (null when there is none). */
export async function jsonBody(response) {
  let text;
  try {
    text = await response.text();
  } catch (err) {
    throw new ApiError(0, `the answer was cut off (${err.message})`);
  }
  return parseJson(text);
}

export async function api(path, options = {}) {
  return jsonBody(await send(path, options));
}

export const sessionPath = (suffix = "") => `/v1/sessions/${encodeURIComponent(state.session)}${suffix}`;
