"""The page's status view in headless Chromium, against `gateway serve` on the shipped config
(the embedded default model): the model ready with its slots and replicas, the GPU section,
the chart, live updates, and a layout that holds together."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import status_view
from tests.support import RunningServer, model_block, running_server
from tests.unit.test_gpus import ROCM_SMI

MODEL = "qwen2.5-coder-0.5b"


def model_card(page: Any) -> Any:
    return page.locator(f'.card.model[data-model="{MODEL}"]')


def test_the_status_view_shows_the_default_model_ready(page: Any,
                                                       default_server: RunningServer) -> None:
    page.goto(default_server.base + "/")
    assert page.title() == "gateway"
    card = model_card(page)
    card.locator('.badge.state[data-state="ready"]').wait_for()
    assert page.locator("#overall").inner_text() == "ok"
    # a rate once two polls were seen
    card.locator('dd[data-field="tokens/s"]').filter(has_text=re.compile(r"^\d+\.\d$")).wait_for()
    fields = {k: card.locator(f'dd[data-field="{k}"]').inner_text()
              for k in ("replicas", "slots busy", "waiting", "conversations", "tokens/s")}
    health = httpx.get(default_server.base + "/health").json()["models"][MODEL]
    slots = re.search(rf'^gateway_slots\{{model="{MODEL}"\}} (\S+)$',
                      httpx.get(default_server.base + "/metrics").text, re.M)
    assert fields["replicas"] == str(len(health["replicas"]))
    assert slots and fields["slots busy"] == f"0 / {float(slots.group(1)):g}", fields
    assert fields["waiting"] == "0"
    assert "in slots" in fields["conversations"] and "on disk" in fields["conversations"]
    assert re.fullmatch(r"\d+\.\d", fields["tokens/s"]), fields
    replica = card.locator(".replica").first.inner_text()
    assert "ready on cpu" in replica and health["replicas"][0]["kv"] in replica
    # no GPU on a CPU machine: said, not an empty box
    gpus = page.locator("#gpus")
    assert gpus.locator(".card.gpu").count() == len(httpx.get(default_server.base + "/health")
                                                   .json()["gpus"])
    if not gpus.locator(".card.gpu").count():
        assert "No GPU read" in gpus.inner_text()
    assert not page.problems, page.problems


def test_the_status_view_follows_the_server_live(page: Any, default_server: RunningServer) -> None:
    """A request served while the page is open shows up on it without a reload: its replica's
    prompt tokens computed go up by the request's, and the chart gets points."""
    page.goto(default_server.base + "/")
    card = model_card(page)
    card.locator('.badge.state[data-state="ready"]').wait_for()
    computed = re.compile(r"(\d+) prompt tokens computed")
    before = int(computed.search(card.locator(".replica").first.inner_text()).group(1))
    served = httpx.post(default_server.v1 + "/chat/completions", timeout=120, json={
        "model": MODEL, "messages": [{"role": "user", "content": f"Say hi to {time.time()}."}],
        "max_tokens": 4})
    assert served.status_code == 200
    after = before + served.json()["usage"]["prompt_tokens"] - served.json()["usage"][
        "prompt_tokens_details"]["cached_tokens"]
    assert after > before
    card.locator(".replica").filter(has_text=f"{after} prompt tokens computed").wait_for(
        timeout=20_000)
    # the chart has the answer's tokens among its points
    page.wait_for_function("Number(document.querySelector('#chart').dataset.peakRate) > 0",
                           timeout=20_000)
    assert int(page.locator("#chart").get_attribute("data-points")) >= 1
    # TTFT p50 for new conversations, as `gateway status` reads it from the same histogram
    snapshot = status_view.fetch(default_server.base, None)
    cli = status_view._ttft_p50(snapshot, MODEL, "new")
    assert cli.startswith("<=")
    card.locator('dd[data-field="TTFT p50 new"]').filter(
        has_text=cli.replace("<=", "≤")).wait_for(timeout=20_000)
    assert not page.problems, page.problems


def test_the_status_layout_renders(page: Any, default_server: RunningServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The layout, not pixels: a screenshot is taken; the header runs across the top, the model
    card and the chart are on screen with room, nothing overflows the window sideways, and the
    same holds on a phone-sized window."""
    page.goto(default_server.base + "/")
    model_card(page).locator('.badge.state[data-state="ready"]').wait_for()
    shot = tmp_path / "status.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        header = page.locator("header").bounding_box()
        card = model_card(page).bounding_box()
        chart = page.locator("#chart").bounding_box()
        assert header["y"] == 0 and header["width"] >= width - 1
        assert card["y"] >= header["y"] + header["height"] and card["height"] > 100
        assert card["x"] >= 0 and card["x"] + card["width"] <= width
        assert chart["width"] > 0.5 * min(width, 1200) - 100 and chart["height"] > 40
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert not page.problems, page.problems


@pytest.fixture(scope="module")
def with_gpus(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[RunningServer]:
    """A server whose driver tool reports two Radeons (a stand-in `rocm-smi` on PATH, printing
    what rocm-smi prints); the model itself is placed on the CPU (GPUs as declared: none)."""
    workdir = tmp_path_factory.mktemp("page-gpus")
    tools = workdir / "bin"
    tools.mkdir()
    tool = tools / "rocm-smi"
    tool.write_text(f"#!/bin/sh\ncat <<'JSON'\n{ROCM_SMI}\nJSON\n")
    tool.chmod(0o755)
    config = '[server]\ngpu_discovery = "declared"\n' + model_block(
        "gemma-3-270m", gemma_path, n_ctx=512, parallel=1, chat_template="gemma", threads=2)
    env = {"PATH": f"{tools}:{os.environ['PATH']}"}
    with running_server(config, workdir, env=env) as server:
        yield server


def test_each_gpu_shows_its_memory_bar_load_temperature_and_power(
        page: Any, with_gpus: RunningServer) -> None:
    page.goto(with_gpus.base + "/")
    cards = page.locator("#gpus .card.gpu")
    cards.nth(1).wait_for()
    assert cards.count() == 2
    first = cards.nth(0)
    assert "Radeon RX 7900 XTX" in first.locator("h3").inner_text()
    fields = {k: first.locator(f'dd[data-field="{k}"]').inner_text()
              for k in ("memory", "load", "temperature", "power")}
    assert fields == {"memory": "1.0 / 24.0 GiB", "load": "17 %", "temperature": "45 °C",
                      "power": "61 W"}
    bar = first.locator(".meter > span").bounding_box()
    track = first.locator(".meter").bounding_box()
    assert abs(bar["width"] / track["width"] - 1073741824 / 25753026560) < 0.02
    assert "Radeon RX 6600" in cards.nth(1).inner_text()
    assert not page.problems, page.problems


def test_a_failed_model_shows_its_reason_and_an_idle_one_when_it_sleeps(
        page: Any, gemma_path: Path, tmp_path: Path) -> None:
    """Two models: one whose engine dies at its first decode (failpoint), one that sleeps after
    an idle minute: the first is `failed` with the reason the gateway gives, the overall state
    `unavailable`; the second `ready`, counting down to its sleep; the page goes on working."""
    config = (model_block("sick", gemma_path, n_ctx=256, parallel=1, threads=1)
              + model_block("sleepy", gemma_path, n_ctx=256, parallel=1, threads=1,
                            keep_alive_s=60))
    env = {"GATEWAY_FAILPOINTS": "engine.decode@sick=segfault"}
    with running_server(config, tmp_path, env=env, healthy=False, timeout=90) as server:
        page.goto(server.base + "/")
        sick = page.locator('.card.model[data-model="sick"]')
        sick.locator('.badge.state[data-state="failed"]').wait_for(timeout=90_000)
        reason = httpx.get(server.base + "/health").json()["models"]["sick"]["error"]
        assert "SIGSEGV" in reason
        assert sick.locator(".failure").text_content() == reason
        assert page.locator("#overall").inner_text() == "unavailable"
        sleepy = page.locator('.card.model[data-model="sleepy"]')
        sleepy.locator('.badge.state[data-state="ready"]').wait_for()
        left = sleepy.locator('dd[data-field="sleeps in"]')
        left.filter(has_text=re.compile(r"^\d+ s$")).wait_for()
        assert 0 < int(left.inner_text().split()[0]) <= 60
        assert not page.problems, page.problems


def test_a_loading_model_shows_its_percent(page: Any, gemma_path: Path, tmp_path: Path) -> None:
    """A model asleep until asked, whose load is slow (failpoint `engine.load=slow`, about 6 s):
    Load on its card (a browser on this machine is an admin without admin keys), then the card
    shows `loading N%` with its bar growing, then `ready`."""
    config = model_block("slowpoke", gemma_path, n_ctx=256, parallel=1, threads=1,
                         load_at_start=False)
    env = {"GATEWAY_FAILPOINTS": "engine.load=slow"}
    with running_server(config, tmp_path, env=env) as server:
        page.goto(server.base + "/")
        card = page.locator('.card.model[data-model="slowpoke"]')
        card.locator('.badge.state[data-state="sleeping"]').wait_for()
        card.locator("button.load").click()
        badge = card.locator('.badge.state[data-state="loading"]')
        badge.filter(has_text=re.compile(r"^loading [1-9]\d*(\.\d)?%$")).wait_for(timeout=30_000)
        first = float(badge.inner_text().split()[1].rstrip("%"))
        assert card.locator(".meter > span").bounding_box()["width"] > 0
        badge.filter(has_text=re.compile(r"^loading \d+(\.\d)?%$")).filter(
            has_not_text=f"loading {first:g}%").wait_for(timeout=30_000)
        assert float(badge.inner_text().split()[1].rstrip("%")) > first
        card.locator('.badge.state[data-state="ready"]').wait_for(timeout=60_000)
        assert not page.problems, page.problems
