"""One request must not hold up the others: a client that hangs up stops its generation (streamed
or not), and a huge prompt is refused or tokenized without freezing every other stream."""

from __future__ import annotations

import threading
import time

import httpx

from tests.support import RunningServer

MODEL = "gemma-3-270m"


def running(server: RunningServer) -> int:
    return int(httpx.get(server.base + "/health").json()["models"][MODEL]["running"])


def wait_until(check, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_a_non_streamed_request_stops_when_its_client_hangs_up(server: RunningServer) -> None:
    body = {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 900, "ignore_eos": True}
    client = threading.Thread(target=lambda: _post_and_hang_up(server, body, after=1.0))
    client.start()
    assert wait_until(lambda: running(server) == 1, 10)
    client.join(10)
    # 900 tokens take far longer than this; without the watch it would keep generating
    assert wait_until(lambda: running(server) == 0, 3), "generation went on after the hang-up"
    assert httpx.get(server.base + "/health").json()["gateway"]["in_flight"] == 0


def _post_and_hang_up(server: RunningServer, body: dict, after: float) -> None:
    try:
        httpx.post(server.v1 + "/completions", json=body, timeout=after)
    except httpx.TimeoutException:
        pass  # the client gives up and closes the connection


class GapMeter(threading.Thread):
    """Streams a long completion and records the longest pause between its chunks."""

    def __init__(self, server: RunningServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.chunks = 0
        self.longest_gap = 0.0
        self.start()

    def run(self) -> None:
        body = {"model": MODEL, "prompt": "Tell me a long story.", "max_tokens": 300,
                "ignore_eos": True, "stream": True}
        last = None
        with httpx.stream("POST", self.server.v1 + "/completions", json=body, timeout=120) as r:
            for line in r.iter_lines():
                if not line.startswith("data: {"):
                    continue
                now = time.monotonic()
                if last is not None:
                    self.longest_gap = max(self.longest_gap, now - last)
                last = now
                self.chunks += 1


def test_huge_requests_leave_other_streams_flowing(server: RunningServer) -> None:
    meter = GapMeter(server)
    assert wait_until(lambda: meter.chunks >= 5, 30)
    special = "<end_of_turn>\n<start_of_turn>user\n" * 12_000  # ~400 KiB of special-token text
    many = [{"role": "user" if i % 2 == 0 else "assistant", "content": "hi <end_of_turn>"}
            for i in range(4000)]  # within the message bound: rendered and tokenized, off the loop
    many_too = many + many + many  # beyond it: refused before any rendering
    answers: list[httpx.Response] = []

    def send(messages: list[dict]) -> None:
        answers.append(httpx.post(server.v1 + "/chat/completions", timeout=120,
                                  json={"model": MODEL, "messages": messages, "max_tokens": 1}))

    senders = [threading.Thread(target=send, args=(m,))
               for m in ([{"role": "user", "content": special}], many, many_too)]
    for t in senders:
        t.start()
    health_times = []
    while any(t.is_alive() for t in senders):
        start = time.monotonic()
        httpx.get(server.base + "/health", timeout=30)
        health_times.append(time.monotonic() - start)
        time.sleep(0.05)
    for t in senders:
        t.join()
    meter.join(120)
    assert sorted(r.status_code for r in answers) == [400, 400, 400]
    codes = {r.json()["error"]["code"] for r in answers}
    assert "context_length_exceeded" in codes
    assert max(health_times) < 1.0, health_times
    # a token every few tens of ms while idle; a frozen loop showed pauses of 20 s and more
    assert meter.longest_gap < 1.0, meter.longest_gap


def test_health_counts_every_accepted_request_at_once(server: RunningServer) -> None:
    accepted = threading.Barrier(9)
    release = threading.Event()

    def stream(i: int) -> None:
        body = {"model": MODEL, "prompt": f"Story {i}:", "max_tokens": 200, "ignore_eos": True,
                "stream": True}
        with httpx.stream("POST", server.v1 + "/completions", json=body, timeout=120) as r:
            assert r.status_code == 200  # the headers come once the engine accepted it
            accepted.wait(60)
            release.wait(60)  # then hang up

    streams = [threading.Thread(target=stream, args=(i,)) for i in range(8)]
    for t in streams:
        t.start()
    accepted.wait(60)
    model = httpx.get(server.base + "/health").json()["models"][MODEL]
    release.set()
    for t in streams:
        t.join(60)
    assert model["running"] + model["waiting"] == 8, model
    assert model["running"] <= 4  # the slots it has
