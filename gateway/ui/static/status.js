// The status view: each model (state, load progress, replicas and their GPUs, slots, waiting,
// conversations held, tokens/s and TTFT p50 by class, sleeps in), each GPU, and a chart of the
// last minutes; what `gateway status` shows, from the same /health and /metrics.

import { metric, postJson, errorMessage } from "./api.js";
import { el, replace } from "./dom.js";

const HISTORY_S = 300;
const GIB = 1 << 30;

export class StatusView {
  constructor(root) {
    this.models = root.querySelector("#models");
    this.gpus = root.querySelector("#gpus");
    this.canvas = root.querySelector("#chart");
    this.error = root.querySelector("#status-error");
    this.actionError = root.querySelector("#action-error"); // kept until the next action
    this.pending = new Set(); // models with an admin action on its way
    this.cards = new Map(); // model -> [what it shows, its card]: a card unchanged is kept
    this.before = null; // the previous snapshot: rates are between two
    this.history = [];
  }

  // One poll's /health body and /metrics samples, at `now` (seconds).
  show(health, samples, now) {
    const before = this.before;
    this.before = { health, samples, now };
    const admin = Boolean(health.caller && health.caller.admin);
    const cards = Object.entries(health.models || {}).map(([id, state]) =>
      this.card(id, state, samples, before, now, admin));
    replace(this.models, ...(cards.length ? cards : [el("p", { class: "hint" }, "No models configured.")]));
    const gpus = health.gpus || [];
    replace(this.gpus, ...(gpus.length ? gpus.map(gpuCard)
      : [el("p", { class: "hint" }, "No GPU read (running on the CPU, or no driver tool found).")]));
    if (before) this.record(samples, before, now);
    this.draw();
  }

  // Nothing shown (no key, or the gateway gone): no stale figures.
  clear() {
    this.models.replaceChildren();
    this.gpus.replaceChildren();
    this.cards.clear();
    this.before = null;
  }

  // A model's card, the one already shown when nothing on it changed (so a click or the focus
  // on its buttons is not lost to a redraw).
  card(id, state, samples, before, now, admin) {
    const fresh = this.modelCard(id, state, samples, before, now, admin);
    const shown = fresh.textContent + JSON.stringify([admin, this.pending.has(id), state.state]);
    const kept = this.cards.get(id);
    if (kept && kept[0] === shown) return kept[1];
    this.cards.set(id, [shown, fresh]);
    return fresh;
  }

  modelCard(id, state, samples, before, now, admin) {
    const shown = state.state + (state.load_progress !== undefined ? ` ${state.load_progress}%` : "");
    const busy = metric(samples, "gateway_slots_busy", { model: id });
    const slots = metric(samples, "gateway_slots", { model: id });
    const held = ["resident", "ram", "disk"].map((w) =>
      metric(samples, "gateway_conversations", { model: id, where: w }));
    const rows = [
      ["replicas", String((state.replicas || []).length)],
      ["slots busy", `${busy} / ${slots}`],
      ["waiting", String(state.waiting ?? 0)],
      ["tokens/s", rate(state, before, now, id)],
      ["TTFT p50 ongoing", ttftP50(samples, id, "ongoing")],
      ["TTFT p50 new", ttftP50(samples, id, "new")],
      ["conversations", `${held[0]} in slots · ${held[1]} in RAM · ${held[2]} on disk`],
      ["sleeps in", sleepsIn(state)],
    ];
    if (state.context) rows.push(["context", `${state.context.n_ctx} tokens × ${state.context.parallel}`]);
    const card = el("article", { class: "card model", "data-model": id },
      el("h3", {}, el("span", { class: "name" }, id),
        el("span", { class: "badge state", "data-state": state.state }, shown)),
      state.load_progress !== undefined ? meter(state.load_progress / 100) : null,
      state.error ? el("p", { class: "error failure" }, state.error) : null,
      definitionList(rows),
      ...(state.replicas || []).map(replicaLine));
    if (admin) card.append(this.actions(id, state));
    return card;
  }

  actions(id, state) {
    const act = (what) => async (event) => {
      this.actionError.textContent = "";
      this.pending.add(id);
      for (const b of event.target.parentElement.querySelectorAll("button")) b.disabled = true;
      try {
        const response = await postJson(`/admin/models/${encodeURIComponent(id)}/${what}`, {});
        if (!response.ok) {
          const why = errorMessage(await response.json().catch(() => null), response.status);
          this.actionError.textContent = `${what} ${id}: ${why}`;
        }
      } catch (e) {
        this.actionError.textContent = `${what} ${id}: ${e.message || e}`;
      } finally {
        this.pending.delete(id);
      }
    };
    const loaded = !["sleeping", "unloaded", "failed"].includes(state.state);
    const busy = this.pending.has(id);
    return el("div", { class: "actions" },
      el("button", { type: "button", class: "load", disabled: loaded || busy ? "" : null,
        onclick: act("load") }, "Load"),
      el("button", { type: "button", class: "unload", disabled: loaded && !busy ? null : "",
        onclick: act("unload") }, "Unload"));
  }

  record(samples, before, now) {
    const dt = now - before.now;
    if (dt <= 0) return;
    const made = generated(this.before.health) - generated(before.health);
    const count = metric(samples, "gateway_time_to_first_token_seconds_count")
      - metric(before.samples, "gateway_time_to_first_token_seconds_count");
    const sum = metric(samples, "gateway_time_to_first_token_seconds_sum")
      - metric(before.samples, "gateway_time_to_first_token_seconds_sum");
    this.history.push({ now, rate: Math.max(0, made / dt), ttft: count > 0 ? sum / count : null });
    while (this.history.length && this.history[0].now < now - HISTORY_S) this.history.shift();
  }

  draw() {
    const canvas = this.canvas;
    const g = canvas.getContext("2d");
    const style = getComputedStyle(document.documentElement);
    const w = canvas.width, h = canvas.height, pad = 24;
    g.clearRect(0, 0, w, h);
    g.strokeStyle = style.getPropertyValue("--line");
    g.strokeRect(pad, 4, w - pad - 4, h - pad - 4);
    const points = this.history;
    canvas.dataset.points = String(points.length); // what it plots, for a reader or a test
    canvas.dataset.peakRate = String(Math.max(0, ...points.map((p) => p.rate)));
    if (!points.length) return;
    const last = points[points.length - 1].now;
    const x = (t) => pad + (w - pad - 4) * (1 - (last - t) / HISTORY_S);
    const series = (key, colour) => {
      const values = points.map((p) => p[key]).filter((v) => v !== null);
      const top = Math.max(1e-9, ...values) * 1.1;
      g.strokeStyle = style.getPropertyValue(colour);
      g.lineWidth = 2;
      g.beginPath();
      let open = false;
      for (const p of points) {
        if (p[key] === null) { open = false; continue; }
        const y = 4 + (h - pad - 8) * (1 - p[key] / top);
        if (open) g.lineTo(x(p.now), y); else g.moveTo(x(p.now), y);
        open = true;
      }
      g.stroke();
      return top / 1.1;
    };
    const topRate = series("rate", "--accent");
    const topTtft = series("ttft", "--warn");
    g.fillStyle = style.getPropertyValue("--muted");
    g.font = "11px system-ui";
    g.fillText(`${topRate.toFixed(1)} tok/s`, pad + 4, 16);
    if (points.some((p) => p.ttft !== null)) g.fillText(`${topTtft.toFixed(2)} s`, w - 70, 16);
    g.fillText("-5 min", pad, h - 8);
    g.fillText("now", w - 30, h - 8);
  }
}

function definitionList(rows) {
  const list = el("dl");
  for (const [k, v] of rows) list.append(el("dt", {}, k), el("dd", { "data-field": k }, v));
  return list;
}

function meter(fraction) {
  const bar = el("span");
  bar.style.width = `${Math.round(Math.min(1, Math.max(0, fraction)) * 100)}%`;
  return el("div", { class: "meter" }, bar);
}

function replicaLine(replica, i) {
  const where = [`#${i} ${replica.state} on ${replica.device || "-"}`];
  if ((replica.gpus || []).length) where.push(`GPUs ${replica.gpus.join(", ")}`);
  if (replica.memory_bytes) where.push(`${(replica.memory_bytes / GIB).toFixed(1)} GiB planned`);
  where.push(`${replica.restarts || 0} restarts`,
    `${replica.prompt_tokens_computed || 0} prompt tokens computed`);
  return el("div", { class: "replica" }, where.join(" · "),
    replica.kv ? el("div", { class: "hint" }, `KV: ${replica.kv}`) : null,
    replica.note ? el("div", { class: "hint note" }, replica.note) : null,
    replica.error ? el("div", { class: "error" }, replica.error) : null);
}

function gpuCard(gpu) {
  const used = gpu.memory_used / GIB, total = gpu.memory_total / GIB;
  const shown = (v, unit) => (v === null || v === undefined ? "-" : `${Math.round(v)}${unit}`);
  return el("article", { class: "card gpu" },
    el("h3", {}, `GPU ${gpu.index}`, el("span", { class: "hint" }, gpu.name)),
    meter(total ? used / total : 0),
    definitionList([
      ["memory", `${used.toFixed(1)} / ${total.toFixed(1)} GiB`],
      ["load", shown(gpu.utilization, " %")],
      ["temperature", shown(gpu.temperature_c, " °C")],
      ["power", shown(gpu.power_w, " W")],
    ]));
}

// Tokens its engines generated so far (live: counted by the engines as they go, not at the end
// of each request), of one model or of all.
function generated(health, model = null) {
  let sum = 0;
  for (const [id, state] of Object.entries(health.models || {})) {
    if (model !== null && id !== model) continue;
    for (const replica of state.replicas || []) sum += replica.tokens_generated || 0;
  }
  return sum;
}

function rate(state, before, now, model) {
  if (!before || now <= before.now) return "-";
  const was = generated(before.health, model);
  const made = (state.replicas || []).reduce((n, r) => n + (r.tokens_generated || 0), 0) - was;
  return (Math.max(0, made) / (now - before.now)).toFixed(1);
}

// The median time to first token from the histogram's buckets (their upper bound).
function ttftP50(samples, model, kind) {
  const count = metric(samples, "gateway_time_to_first_token_seconds_count", { model, class: kind });
  if (!count) return "-";
  const buckets = samples
    .filter(([n, l]) => n === "gateway_time_to_first_token_seconds_bucket" && l.model === model
      && l.class === kind && l.le !== "+Inf")
    .map(([, l, v]) => [Number(l.le), v]).sort((a, b) => a[0] - b[0]);
  for (const [bound, cumulative] of buckets) if (cumulative >= count / 2) return `≤ ${bound} s`;
  return buckets.length ? `> ${buckets[buckets.length - 1][0]} s` : "-";
}

function sleepsIn(state) {
  if (state.keep_alive_s === null || state.keep_alive_s === undefined || state.state !== "ready") return "-";
  return `${Math.max(0, state.keep_alive_s - (state.idle_s || 0)).toFixed(0)} s`;
}
