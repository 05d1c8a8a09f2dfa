"""`GET /metrics`: Prometheus text that moves as requests run; TTFT lands in the right class."""

from __future__ import annotations

import re

import httpx

from tests.support import RunningServer

MODEL = "gemma-3-270m"


def scrape(server: RunningServer) -> dict[str, float]:
    r = httpx.get(server.base + "/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    values = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def get(values: dict[str, float], name: str, **labels: str) -> float:
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for k, v in values.items()
               if re.match(rf"{name}(\{{|$)", k) and all(w in k for w in wanted))


def test_metrics_move_as_requests_run(server: RunningServer) -> None:
    before = scrape(server)
    body = {"model": MODEL, "max_tokens": 4, "prompt_cache_key": "metrics-test",
            "messages": [{"role": "user", "content": "Hello there, metrics."}]}
    httpx.post(server.v1 + "/chat/completions", json=body, timeout=60).raise_for_status()
    body["messages"] = [*body["messages"], {"role": "assistant", "content": "hi"},  # type: ignore[list-item]
                        {"role": "user", "content": "again"}]
    httpx.post(server.v1 + "/chat/completions", json=body, timeout=60).raise_for_status()
    after = scrape(server)

    def delta(name: str, **labels: str) -> float:
        return get(after, name, **labels) - get(before, name, **labels)

    assert delta("gateway_requests_total", model=MODEL, route="chat", status="length") == 2
    assert delta("gateway_time_to_first_token_seconds_count", model=MODEL, **{"class": "new"}) == 1
    assert delta("gateway_time_to_first_token_seconds_count", model=MODEL,
                 **{"class": "ongoing"}) == 1
    assert delta("gateway_queue_wait_seconds_count", model=MODEL) == 2
    assert delta("gateway_inter_token_latency_seconds_count", model=MODEL) >= 4
    assert delta("gateway_tokens_total", model=MODEL, kind="generated") == 8
    assert delta("gateway_tokens_total", model=MODEL, kind="cached") > 0
    assert get(after, "gateway_slots", model=MODEL) == 4
    assert get(after, "gateway_engine_prompt_tokens_computed_total", model=MODEL) > 0
