// The page: two views (status, playground), the API key when the gateway has keys, and the poll
// of /health, /metrics and /v1/models every POLL_MS that feeds them.

import { apiKey, setApiKey, getJson, getMetrics, NeedsKey } from "./api.js";
import { StatusView } from "./status.js";
import { Playground } from "./playground.js";

const POLL_MS = 2000;

const $ = (selector) => document.querySelector(selector);

function showTab(name) {
  for (const tab of ["status", "playground"]) {
    $(`#tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    $(`#${tab}-view`).hidden = tab !== name;
  }
  location.hash = name === "status" ? "" : `#${name}`;
}

function askForKey(why) {
  $("#key-form").hidden = false;
  $("#key-error").textContent = apiKey() ? `The key was refused: ${why}` : "";
  $("#key-input").focus();
}

async function poll(status, playground) {
  const overall = $("#overall");
  try {
    const health = await getJson("/health");
    const [samples, models] = await Promise.all([getMetrics(), getJson("/v1/models")]);
    $("#key-form").hidden = true;
    overall.textContent = health.body.status;
    overall.dataset.state = health.body.status;
    status.error.textContent = "";
    status.show(health.body, samples, performance.now() / 1000);
    playground.setModels(((models.body && models.body.data) || []).map((m) => m.id));
  } catch (e) {
    if (e instanceof NeedsKey) {
      overall.textContent = "needs a key";
      overall.dataset.state = "connecting";
      askForKey(e.message);
    } else {
      overall.textContent = "offline";
      overall.dataset.state = "offline";
      status.error.textContent = `The gateway does not answer: ${e.message || e}`;
    }
  }
}

function start() {
  const status = new StatusView($("#status-view"));
  const playground = new Playground($("#playground-view"), askForKey);
  $("#tab-status").addEventListener("click", () => showTab("status"));
  $("#tab-playground").addEventListener("click", () => showTab("playground"));
  showTab(location.hash === "#playground" ? "playground" : "status");
  $("#key-entry").addEventListener("submit", (e) => {
    e.preventDefault();
    setApiKey($("#key-input").value.trim());
    $("#key-input").value = "";
    poll(status, playground);
  });
  const tick = async () => {
    await poll(status, playground);
    setTimeout(tick, POLL_MS);
  };
  tick();
}

start();
