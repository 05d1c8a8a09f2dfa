"""One access-log line per request: id, model, class, how it ended, tokens, queue wait, TTFT,
duration; never the prompt text or the API key."""

from __future__ import annotations

import re
import time

import httpx

from tests.support import RunningServer

MODEL = "gemma-3-270m"


def access_lines(server: RunningServer) -> list[str]:
    return [line for line in server.log().splitlines() if "gateway.access" in line]


def wait_for_lines(server: RunningServer, count: int) -> list[str]:
    deadline = time.monotonic() + 10
    while len(lines := access_lines(server)) < count:
        assert time.monotonic() < deadline, lines
        time.sleep(0.05)
    return lines


def test_each_request_leaves_one_line_without_its_text_or_key(server: RunningServer) -> None:
    before = len(access_lines(server))
    secret, key = "PLUM-ORCHID-7731 is the secret", "sk-do-not-log-me-42"
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": MODEL, "max_tokens": 3, "prompt_cache_key": "access-log-test",
            "messages": [{"role": "user", "content": secret}]}
    httpx.post(server.v1 + "/chat/completions", json=body, headers=headers,
               timeout=60).raise_for_status()
    body["messages"] = [*body["messages"], {"role": "assistant", "content": "ok"},  # type: ignore[list-item]
                        {"role": "user", "content": "again"}]
    httpx.post(server.v1 + "/chat/completions", json=body, headers=headers,
               timeout=60).raise_for_status()
    first, second = wait_for_lines(server, before + 2)[before:before + 2]
    for line in (first, second):
        assert f"model={MODEL}" in line and "status=length" in line and "completion=3" in line
        assert re.search(r"queue_wait=\d+\.\d{3}", line) and re.search(r"ttft=\d+\.\d{3}", line)
        assert re.search(r"duration=\d+\.\d{3}", line)
    assert "class=new" in first and "class=ongoing" in second
    assert int(re.search(r"cached=(\d+)", second).group(1)) > 0  # type: ignore[union-attr]
    log = server.log()
    assert "PLUM-ORCHID" not in log and key not in log
