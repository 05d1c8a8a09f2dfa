// The playground: chat with a model, streamed, with a system prompt, temperature and max tokens;
// Stop cancels the answer on the server (the request is aborted, the gateway frees its slot).
// One conversation is one `prompt_cache_key`, so each returning turn reuses its KV cache: the
// usage line under each answer shows how many prompt tokens came from it.

import { events, postJson, errorMessage, NeedsKey } from "./api.js";
import { el } from "./dom.js";

export class Playground {
  constructor(root, onNeedsKey) {
    this.model = root.querySelector("#model");
    this.system = root.querySelector("#system");
    this.temperature = root.querySelector("#temperature");
    this.maxTokens = root.querySelector("#max-tokens");
    this.transcript = root.querySelector("#transcript");
    this.message = root.querySelector("#message");
    this.send = root.querySelector("#send");
    this.stop = root.querySelector("#stop");
    this.error = root.querySelector("#chat-error");
    this.onNeedsKey = onNeedsKey;
    this.messages = [];
    this.controller = null;
    this.newChat();
    root.querySelector("#composer").addEventListener("submit", (e) => { e.preventDefault(); this.ask(); });
    this.message.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.ask(); }
    });
    this.stop.addEventListener("click", () => this.controller && this.controller.abort());
    root.querySelector("#new-chat").addEventListener("click", () => this.newChat());
    this.model.addEventListener("change", () => this.newChat());
  }

  newChat() {
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.send.disabled = false;
    this.stop.disabled = true;
    this.messages = [];
    this.cacheKey = `playground-${crypto.randomUUID()}`;
    this.transcript.replaceChildren();
    this.error.textContent = "";
  }

  follow() { // keep the newest text in view
    this.transcript.scrollTop = this.transcript.scrollHeight;
  }

  // The models the caller may use, from /v1/models; keeps the one picked if it is still there.
  setModels(ids) {
    const picked = this.model.value;
    const same = ids.length === this.model.options.length
      && ids.every((id, i) => this.model.options[i].value === id);
    if (same) return;
    this.model.replaceChildren(...ids.map((id) => el("option", { value: id }, id)));
    if (ids.includes(picked)) this.model.value = picked;
    else if (picked) this.newChat(); // its model is gone: so is the conversation
  }

  async ask() {
    const text = this.message.value.trim();
    if (!text || this.controller || !this.model.value) return;
    this.message.value = "";
    this.error.textContent = "";
    // this turn's conversation: a new chat started while it streams is not its to change
    const messages = this.messages;
    messages.push({ role: "user", content: text });
    this.transcript.append(el("div", { class: "turn user" }, el("div", { class: "text" }, text)));
    const reasoning = el("div", { class: "reasoning" });
    const answer = el("div", { class: "text" });
    const usage = el("div", { class: "usage" }, "…");
    const turn = el("div", { class: "turn assistant", "aria-busy": "true" }, reasoning, answer, usage);
    this.transcript.append(turn);
    this.follow();

    const system = this.system.value.trim();
    const body = {
      model: this.model.value,
      messages: system ? [{ role: "system", content: system }, ...messages] : [...messages],
      stream: true,
      stream_options: { include_usage: true },
      temperature: Number(this.temperature.value),
      max_tokens: Math.max(1, Math.floor(Number(this.maxTokens.value) || 1)),
      prompt_cache_key: this.cacheKey,
    };
    const controller = new AbortController();
    this.controller = controller;
    this.send.disabled = true;
    this.stop.disabled = false;
    let finish = null;
    try {
      const response = await postJson("/v1/chat/completions", body, controller.signal);
      if (!response.ok) {
        throw new Error(errorMessage(await response.json().catch(() => null), response.status));
      }
      for await (const chunk of events(response)) {
        if (chunk.error) throw new Error(errorMessage(chunk, 500));
        for (const choice of chunk.choices || []) {
          const delta = choice.delta || {};
          if (delta.reasoning_content) reasoning.append(delta.reasoning_content);
          if (delta.content) answer.append(delta.content);
          if (delta.content || delta.reasoning_content) this.follow();
          if (choice.finish_reason) finish = choice.finish_reason;
        }
        if (chunk.usage) usage.textContent = usageLine(chunk.usage, finish);
      }
      if (!finish) throw new Error("The answer ended before it was finished (the connection closed)");
    } catch (e) {
      if (e.name === "AbortError") {
        finish = "stopped";
        usage.textContent = "stopped";
      } else if (e instanceof NeedsKey) {
        this.onNeedsKey(e.message);
        usage.textContent = "";
      } else {
        this.error.textContent = String(e.message || e);
        usage.textContent = "";
      }
    } finally {
      if (this.controller === controller) { // not a turn of a chat since replaced
        this.controller = null;
        this.send.disabled = false;
        this.stop.disabled = true;
      }
      turn.setAttribute("aria-busy", "false");
      turn.dataset.finish = finish || "";
    }
    const said = answer.textContent;
    if (said) messages.push({ role: "assistant", content: said });
    else messages.pop(); // nothing came back: the question is not part of the conversation
  }
}

function usageLine(usage, finish) {
  const cached = (usage.prompt_tokens_details && usage.prompt_tokens_details.cached_tokens) || 0;
  return `prompt ${usage.prompt_tokens} tokens (${cached} cached) · answer ${usage.completion_tokens} tokens`
    + (finish ? ` · ${finish}` : "");
}
