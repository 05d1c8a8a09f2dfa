// The page's way to the gateway: its API key (this tab's session storage only), JSON calls, the
// Prometheus text of /metrics, and the server-sent events of a streamed answer.

const KEY = "gateway.api_key";
const TIMEOUT_MS = 8000; // a status read that takes longer is a gateway that does not answer

export class NeedsKey extends Error {}

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

// The message of an error body in any of the gateway's shapes (OpenAI's first).
export function errorMessage(body, status) {
  const error = body && (body.error || body);
  if (error && typeof error.message === "string") return error.message;
  if (error && typeof error === "string") return error;
  return `HTTP ${status}`;
}

async function checked(response) {
  if (response.status === 401) throw new NeedsKey(errorMessage(await safeJson(response), 401));
  return response;
}

async function safeJson(response) {
  try { return await response.json(); } catch { return null; }
}

export async function getJson(path) {
  const response = await checked(await fetch(path, {
    headers: headers(), cache: "no-store", signal: AbortSignal.timeout(TIMEOUT_MS),
  }));
  return { status: response.status, body: await safeJson(response) };
}

export async function postJson(path, body, signal) {
  return checked(await fetch(path, {
    method: "POST", headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body), signal,
  }));
}

// /metrics as [name, labels, value] samples.
export async function getMetrics() {
  const response = await checked(await fetch("/metrics", {
    headers: headers(), cache: "no-store", signal: AbortSignal.timeout(TIMEOUT_MS),
  }));
  if (!response.ok) return [];
  const samples = [];
  for (const line of (await response.text()).split("\n")) {
    const found = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!found) continue;
    const labels = {};
    for (const [, k, v] of (found[2] || "").matchAll(/(\w+)="([^"]*)"/g)) labels[k] = v;
    samples.push([found[1], labels, Number(found[3])]);
  }
  return samples;
}

export function metric(samples, name, labels = {}) {
  let sum = 0;
  for (const [n, l, v] of samples) {
    if (n === name && Object.entries(labels).every(([k, val]) => l[k] === val)) sum += v;
  }
  return sum;
}

// Each `data:` payload of a text/event-stream body, parsed, until `[DONE]` or the end. Lines may
// end in CRLF, CR or LF (the spec allows all three; a proxy may rewrite them).
export async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", raw = "";
  for (;;) {
    const { value, done } = await reader.read();
    raw += done ? decoder.decode() : decoder.decode(value, { stream: true });
    const whole = !done && raw.endsWith("\r") ? raw.length - 1 : raw.length; // CR, maybe of a CRLF
    buffer += raw.slice(0, whole).replace(/\r\n?/g, "\n");
    raw = raw.slice(whole);
    if (done) buffer += "\n\n"; // a last frame without its blank line
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = frame.split("\n").filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart()).join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      yield JSON.parse(data);
    }
    if (done) return;
  }
}
