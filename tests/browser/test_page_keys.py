"""The page on a gateway with keys, in headless Chromium: it asks for a key and keeps it in the
tab's session storage only, a refused key is said so, admin actions show only for an admin key
(and work), and one key's chat is never on another key's page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import RunningServer, model_block, running_server

MODEL = "gemma-3-270m"


@pytest.fixture(scope="module")
def keyed(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = ('[server]\napi_keys = ["alice-key", "bob-key"]\nadmin_keys = ["root-key"]\n'
              + model_block(MODEL, gemma_path, n_ctx=512, parallel=2, chat_template="gemma",
                            threads=2))
    with running_server(config, tmp_path_factory.mktemp("keyed-page")) as server:
        yield server


def enter_key(page: Any, key: str) -> None:
    page.locator("#key-form").wait_for()
    page.fill("#key-input", key)
    page.press("#key-input", "Enter")


def ready_card(page: Any) -> Any:
    card = page.locator(f'.card.model[data-model="{MODEL}"]')
    card.locator('.badge.state[data-state="ready"]').wait_for()
    return card


def test_the_page_asks_for_a_key_and_keeps_it_in_the_session_only(
        page: Any, keyed: RunningServer) -> None:
    page.goto(keyed.base + "/")
    enter_key(page, "wrong-key")
    page.locator("#key-error").filter(has_text="refused").wait_for()
    assert page.locator(".card.model").count() == 0  # nothing shown without a key
    enter_key(page, "alice-key")
    card = ready_card(page)
    assert page.locator("#key-form").is_hidden()
    assert page.evaluate("sessionStorage.getItem('gateway.api_key')") == "alice-key"
    assert page.evaluate("localStorage.length") == 0 and "alice-key" not in page.content()
    assert card.locator(".actions").count() == 0  # a user's key: no admin actions
    page.reload()  # the same tab keeps it
    ready_card(page)
    assert page.locator("#key-form").is_hidden()
    assert not page.problems, page.problems


def test_an_admin_key_gets_the_admin_actions_and_they_work(page: Any, keyed: RunningServer) -> None:
    page.goto(keyed.base + "/")
    enter_key(page, "root-key")
    card = ready_card(page)
    assert card.locator("button.load").is_disabled()
    card.locator("button.unload").click()
    card.locator('.badge.state[data-state="sleeping"], .badge.state[data-state="unloaded"]'
                 ).wait_for(timeout=60_000)
    card.locator("button.load").click()
    ready_card(page)
    assert page.locator("#status-error").inner_text() == ""
    assert not page.problems, page.problems


def test_forgetting_the_key_ends_its_chat_and_the_next_key_sees_none_of_it(
        page: Any, keyed: RunningServer) -> None:
    page.goto(keyed.base + "/#playground")
    enter_key(page, "alice-key")
    page.locator(f'#model option[value="{MODEL}"]').wait_for(state="attached")
    page.fill("#temperature", "0")
    page.fill("#max-tokens", "12")
    page.fill("#message", "My locker code is 4711.")
    page.press("#message", "Enter")
    page.locator('.turn.assistant[aria-busy="false"]').wait_for()
    said = page.locator(".turn.assistant .text").inner_text()
    assert said and page.locator(".turn").count() == 2
    page.click("#forget-key")
    page.locator("#key-form").wait_for()
    assert page.evaluate("sessionStorage.getItem('gateway.api_key')") is None
    assert page.locator(".turn").count() == 0 and page.locator(".card.model").count() == 0
    enter_key(page, "bob-key")
    page.click("#tab-status")
    ready_card(page)
    text = page.locator("body").inner_text()
    assert "4711" not in text and said.strip() not in text
    assert page.locator("#forget-key").is_visible()
    assert not page.problems, page.problems
