"""The playground in headless Chromium on the embedded default model: a streamed chat with its
usage, a returning turn served from the conversation's KV cache, and Stop cancelling the answer
on the server (its slot freed)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from tests.support import RunningServer

MODEL = "qwen2.5-coder-0.5b"
USAGE = re.compile(r"prompt (\d+) tokens \((\d+) cached\) · answer (\d+) tokens · (\w+)")


def open_playground(page: Any, server: RunningServer) -> None:
    page.goto(server.base + "/#playground")
    page.locator(f'#model option[value="{MODEL}"]').wait_for(state="attached")
    page.select_option("#model", MODEL)


def ask(page: Any, text: str) -> None:
    page.fill("#message", text)
    page.press("#message", "Enter")


def last_answer(page: Any) -> Any:
    return page.locator(".turn.assistant").last


def busy_slots(server: RunningServer) -> float:
    text = httpx.get(server.base + "/metrics").text
    found = re.search(rf'^gateway_slots_busy\{{model="{MODEL}"\}} (\S+)$', text, re.M)
    assert found, text[:2000]
    return float(found.group(1))


def test_a_chat_streams_shows_its_usage_and_the_next_turn_reuses_the_cache(
        page: Any, default_server: RunningServer) -> None:
    open_playground(page, default_server)
    page.fill("#system", "You are a terse assistant.")
    page.fill("#temperature", "0")
    page.fill("#max-tokens", "48")
    ask(page, "Write a Python function that adds two numbers.")
    answer = last_answer(page)
    # streamed: text shows while the answer is still being written
    page.wait_for_function("""() => {
        const t = [...document.querySelectorAll('.turn.assistant')].pop();
        return t && t.getAttribute('aria-busy') === 'true' && t.querySelector('.text').textContent.length > 0;
    }""", timeout=60_000)
    page.locator('.turn.assistant[aria-busy="false"]').wait_for()
    first = USAGE.search(answer.locator(".usage").inner_text())
    assert first, answer.inner_text()
    assert "def " in answer.locator(".text").inner_text()
    assert int(first.group(3)) <= 48 and first.group(4) in ("stop", "length")
    ask(page, "Now make it subtract.")
    second_turn = page.locator(".turn.assistant").nth(1)
    second_turn.locator(".usage").filter(has_text=USAGE).wait_for()
    second = USAGE.search(second_turn.locator(".usage").inner_text())
    assert second
    # the conversation came back: its first turn's prompt and answer were not computed again
    assert int(second.group(1)) > int(first.group(1)) + int(first.group(3))
    assert int(second.group(2)) >= int(first.group(1))
    assert page.locator(".turn.user").count() == 2
    assert not page.problems, page.problems


def test_stop_cancels_the_answer_and_the_server_frees_its_slot(
        page: Any, default_server: RunningServer) -> None:
    open_playground(page, default_server)
    page.fill("#max-tokens", "1500")
    ask(page, "Count from 1 to 1000, one number per line.")
    page.wait_for_function("""() => {
        const t = [...document.querySelectorAll('.turn.assistant')].pop();
        return t && t.querySelector('.text').textContent.length > 30;
    }""", timeout=60_000)
    assert busy_slots(default_server) >= 1
    assert page.locator("#stop").is_enabled()
    page.click("#stop")
    page.locator('.turn.assistant[aria-busy="false"]').wait_for()
    assert last_answer(page).get_attribute("data-finish") == "stopped"
    assert last_answer(page).locator(".usage").inner_text() == "stopped"
    deadline = time.monotonic() + 15
    while busy_slots(default_server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert busy_slots(default_server) == 0
    # what was written is kept, and the chat goes on
    assert len(last_answer(page).locator(".text").inner_text()) > 30
    assert page.locator("#send").is_enabled() and not page.locator("#stop").is_enabled()
    assert not page.problems, page.problems


def test_the_stream_reader_takes_every_line_ending_and_chunking(page: Any,
                                                                default_server: RunningServer) -> None:
    """The page's own SSE reader, run in the browser on a stream whose frames end in CRLF, CR or
    LF, cut at every byte (a CRLF split across reads too), the last without its blank line."""
    page.goto(default_server.base + "/")
    got = page.evaluate("""async () => {
        const { events } = await import("/ui/api.js");
        const text = 'data: {"n":1}\\r\\n\\r\\ndata: {"n":2}\\r\\rdata: {"n":3}\\n\\n'
            + ': a comment\\r\\n\\r\\ndata: {"n":4}';
        const bytes = new TextEncoder().encode(text);
        const body = new ReadableStream({ start(c) {
            for (const b of bytes) c.enqueue(new Uint8Array([b]));
            c.close();
        } });
        const seen = [];
        for await (const item of events(new Response(body))) seen.push(item.n);
        return seen;
    }""")
    assert got == [1, 2, 3, 4]
