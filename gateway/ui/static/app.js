// The page: two views (status, playground), the API key when the gateway has keys, and one loop
// that reads /health, /metrics and /v1/models every POLL_MS and feeds them (never two reads at
// once: a key entered wakes the loop instead of starting another).

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
  history.replaceState(null, "", name === "status" ? location.pathname : "#playground");
}

function askForKey(why) {
  $("#key-form").hidden = false;
  $("#forget-key").hidden = true;
  $("#key-error").textContent = apiKey() ? `The key was refused: ${why}` : "";
  $("#key-input").focus();
}

// One read of the gateway: what it says, or why there is nothing to show.
async function read() {
  try {
    const health = await getJson("/health");
    const [samples, models] = await Promise.all([getMetrics(), getJson("/v1/models")]);
    return { health: health.body, samples, models: (models.body && models.body.data) || [] };
  } catch (e) {
    return { failure: e };
  }
}

function show(state, status, playground) {
  const overall = $("#overall");
  if (state.failure) {
    status.clear();
    if (state.failure instanceof NeedsKey) {
      overall.textContent = "needs a key";
      overall.dataset.state = "connecting";
      askForKey(state.failure.message);
    } else {
      overall.textContent = "offline";
      overall.dataset.state = "offline";
      status.error.textContent = `The gateway does not answer: ${state.failure.message || state.failure}`;
    }
    return;
  }
  $("#key-form").hidden = true;
  $("#forget-key").hidden = !apiKey();
  overall.textContent = state.health.status;
  overall.dataset.state = state.health.status;
  status.error.textContent = "";
  status.show(state.health, state.samples, performance.now() / 1000);
  playground.setModels(state.models.map((m) => m.id));
}

function start() {
  const status = new StatusView($("#status-view"));
  const playground = new Playground($("#playground-view"), askForKey);
  let again = false, resolveSleep = () => {};
  const wake = () => { again = true; resolveSleep(); }; // read now (or right after this read)
  $("#tab-status").addEventListener("click", () => showTab("status"));
  $("#tab-playground").addEventListener("click", () => showTab("playground"));
  showTab(location.hash === "#playground" ? "playground" : "status");
  const useKey = (key) => {
    if (key !== apiKey()) playground.newChat(); // one key's chat never goes on under another
    setApiKey(key);
    status.clear();
    wake();
  };
  $("#key-entry").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("#key-input").value.trim();
    $("#key-input").value = "";
    useKey(key);
  });
  $("#forget-key").addEventListener("click", () => useKey(""));
  (async () => {
    for (;;) {
      const state = await read();
      try {
        show(state, status, playground);
      } catch (e) {
        console.error("the page could not show the gateway's state:", e); // a bug of the page
      }
      if (!again) {
        await new Promise((resolve) => {
          resolveSleep = resolve;
          setTimeout(resolve, POLL_MS);
        });
      }
      again = false;
    }
  })();
}

start();
