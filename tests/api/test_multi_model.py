"""Two models resident at once in their own engine processes; a crash of one; admin; shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support import RunningServer, model_block, model_status, running_server, wait_for_state
from tests.tiny_model import write_tiny_gguf

GEMMA = "gemma-3-270m"
TINY = "tiny"


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny.gguf")


def two_models_config(gemma_path: Path, tiny_path: Path) -> str:
    return (model_block(GEMMA, gemma_path, n_ctx=512, parallel=2, chat_template="gemma", threads=1)
            + model_block(TINY, tiny_path, aliases=["second"], n_ctx=1536, parallel=2, threads=1))


@pytest.fixture(scope="module")
def two(gemma_path: Path, tiny_path: Path, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[RunningServer]:
    with running_server(two_models_config(gemma_path, tiny_path), tmp_path_factory.mktemp("two")) as s:
        yield s


def engine_pid(server: RunningServer, model: str) -> int:
    return int(model_status(server, model)["replicas"][0]["pid"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def stream_lines(server: RunningServer, model: str, max_tokens: int, out: list[str]) -> None:
    body = {"model": model, "prompt": "Once upon a time", "max_tokens": max_tokens, "stream": True,
            "ignore_eos": True}
    with httpx.stream("POST", server.v1 + "/completions", json=body, timeout=120) as r:
        for line in r.iter_lines():
            if line:
                out.append(line)


def stream_under_way(server: RunningServer, model: str, max_tokens: int, lines: list[str],
                     at_least: int) -> threading.Thread:
    """A streamed completion in the background, returned once `at_least` lines have arrived."""
    thread = threading.Thread(target=stream_lines, args=(server, model, max_tokens, lines))
    thread.start()
    deadline = time.monotonic() + 30
    while len(lines) < at_least:
        assert time.monotonic() < deadline, "the stream did not get under way"
        time.sleep(0.01)
    return thread


def test_both_models_listed_with_state_and_placement(two: RunningServer) -> None:
    data = httpx.get(two.v1 + "/models").json()["data"]
    assert [m["id"] for m in data] == [GEMMA, TINY]
    for card in data:
        assert card["status"]["state"] == "ready"
        replica = card["status"]["replicas"][0]
        assert replica["device"] == "cpu" and replica["pid"] > 0
    assert engine_pid(two, GEMMA) != engine_pid(two, TINY) != os.getpid()


def test_both_models_answer_concurrently(two: RunningServer) -> None:
    outs: dict[str, list[str]] = {GEMMA: [], TINY: []}
    threads = [threading.Thread(target=stream_lines, args=(two, m, 30, outs[m])) for m in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for model, lines in outs.items():
        assert lines[-1] == "data: [DONE]", model
        final = json.loads(lines[-2][6:])
        assert final["model"] == model and final["choices"][0]["finish_reason"] == "length"


def test_second_model_uses_the_template_from_its_gguf(two: RunningServer) -> None:
    client = openai.OpenAI(base_url=two.v1, api_key="x", max_retries=0)
    reply = client.chat.completions.create(model="second", max_tokens=5,
                                           messages=[{"role": "user", "content": "abc"}])
    assert reply.model == TINY
    # <|im_start|>user\nabc<|im_end|>\n<|im_start|>assistant\n with BOS: the template was applied
    assert reply.usage is not None and reply.usage.prompt_tokens >= 8


def test_kill_9_of_one_engine_fails_its_stream_cleanly_and_it_comes_back(two: RunningServer) -> None:
    victim = engine_pid(two, GEMMA)
    survivor = engine_pid(two, TINY)
    restarts = model_status(two, GEMMA)["replicas"][0]["restarts"]
    gemma_lines: list[str] = []
    tiny_lines: list[str] = []
    gemma_stream = stream_under_way(two, GEMMA, 400, gemma_lines, at_least=5)
    tiny_stream = threading.Thread(target=stream_lines, args=(two, TINY, 1000, tiny_lines))
    tiny_stream.start()
    os.kill(victim, signal.SIGKILL)
    gemma_stream.join(60)
    tiny_stream.join(120)
    # the killed model's stream: one clean error frame, then [DONE]
    assert gemma_lines[-1] == "data: [DONE]"
    error = json.loads(gemma_lines[-2][6:])["error"]
    assert error["code"] == "engine_restarting" and "restart" in error["message"]
    assert len(gemma_lines) < 400  # it was cut mid-stream
    # the other model streamed on to its end
    assert json.loads(tiny_lines[-2][6:])["choices"][0]["finish_reason"] == "length"
    assert engine_pid(two, TINY) == survivor
    # the killed one comes back, in a new process, and answers
    wait_for_state(two, GEMMA, "ready")
    status = model_status(two, GEMMA)
    assert status["replicas"][0]["pid"] != victim
    assert status["replicas"][0]["restarts"] == restarts + 1
    r = httpx.post(two.v1 + "/completions", json={"model": GEMMA, "prompt": "x", "max_tokens": 3})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3


def test_unload_and_load_through_admin(two: RunningServer) -> None:
    pid = engine_pid(two, TINY)
    r = httpx.post(f"{two.base}/admin/models/{TINY}/unload", timeout=30)
    assert r.status_code == 200 and r.json()["state"] == "unloaded"
    assert not alive(pid)
    r = httpx.post(two.v1 + "/completions", json={"model": TINY, "prompt": "x", "max_tokens": 2})
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_unloaded"
    assert f"/admin/models/{TINY}/load" in r.json()["error"]["message"]  # not "retry shortly"
    assert "retry-after" in r.headers
    # the other model is untouched
    assert httpx.post(two.v1 + "/completions", json={"model": GEMMA, "prompt": "x", "max_tokens": 2}
                      ).status_code == 200
    assert httpx.post(f"{two.base}/admin/models/{TINY}/load").status_code == 200
    wait_for_state(two, TINY, "ready")
    assert httpx.post(two.v1 + "/completions", json={"model": TINY, "prompt": "x", "max_tokens": 2}
                      ).status_code == 200
    assert httpx.post(f"{two.base}/admin/models/nope/load").status_code == 404


def test_sigterm_drains_and_leaves_no_engine_behind(gemma_path: Path, tiny_path: Path,
                                                   tmp_path: Path) -> None:
    with running_server(two_models_config(gemma_path, tiny_path), tmp_path) as server:
        pids = [engine_pid(server, GEMMA), engine_pid(server, TINY)]
        lines: list[str] = []
        stream = stream_under_way(server, GEMMA, 40, lines, at_least=3)
        server.process.send_signal(signal.SIGTERM)
        stream.join(60)
        server.process.wait(30)
    # the stream in progress was allowed to finish
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[-2][6:])["choices"][0]["finish_reason"] == "length"
    assert not any(alive(p) for p in pids)


def test_engines_die_with_a_killed_gateway(gemma_path: Path, tiny_path: Path, tmp_path: Path) -> None:
    with running_server(two_models_config(gemma_path, tiny_path), tmp_path) as server:
        pids = [engine_pid(server, GEMMA), engine_pid(server, TINY)]
        server.process.kill()
        server.process.wait(30)
        deadline = time.monotonic() + 15
        while any(alive(p) for p in pids):
            assert time.monotonic() < deadline, "an engine process was orphaned"
            time.sleep(0.1)


def test_plan_command_on_a_declared_rig(gemma_path: Path, tiny_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[server]\nreserved_gpus = [4]\n" + two_models_config(gemma_path, tiny_path))
    out = subprocess.run([sys.executable, "-m", "gateway", "plan", "--config", str(config),
                          "--gpus", "5x12GiB"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert GEMMA in out.stdout and TINY in out.stdout and "(reserved)" in out.stdout
    too_small = subprocess.run([sys.executable, "-m", "gateway", "plan", "--config", str(config),
                                "--gpus", "1x0.01GiB"], capture_output=True, text=True, timeout=60)
    assert too_small.returncode != 0
    assert "do not fit" in too_small.stderr and GEMMA in too_small.stderr


def test_models_command_lists_the_config(gemma_path: Path, tiny_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(two_models_config(gemma_path, tiny_path))
    out = subprocess.run([sys.executable, "-m", "gateway", "models", "--config", str(config)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[1].startswith(GEMMA) and lines[2].startswith(TINY) and "second" in lines[2]
    bad = tmp_path / "bad.toml"
    bad.write_text(two_models_config(gemma_path, tiny_path).replace("parallel = 2", "paralel = 2", 1))
    out = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "paralel" in out.stderr


def test_a_model_that_cannot_load_fails_alone_and_says_why(gemma_path: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf at all")
    config = (model_block("broken", broken) +
              model_block(GEMMA, gemma_path, n_ctx=256, parallel=1, chat_template="gemma", threads=1))
    with running_server(config, tmp_path / "srv", healthy=False) as server:
        assert model_status(server, "broken")["state"] == "failed"
        assert httpx.get(server.base + "/health").status_code == 503
        r = httpx.post(server.v1 + "/completions", json={"model": "broken", "prompt": "x"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "model_failed"
        assert "broken.gguf" in r.json()["error"]["message"]
        ok = httpx.post(server.v1 + "/completions", json={"model": GEMMA, "prompt": "x", "max_tokens": 2})
        assert ok.status_code == 200
        # fixed on disk, loaded again through admin
        broken.write_bytes(gemma_path.read_bytes())
        assert httpx.post(f"{server.base}/admin/models/broken/load").status_code == 200
        wait_for_state(server, "broken", "ready")


def engine_children(server: RunningServer) -> set[int]:
    """The live engine processes the gateway started."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server.process.pid and fields[0] != "Z":
            if b"gateway.engine.process.worker" in Path(stat.parent, "cmdline").read_bytes():
                children.add(int(stat.parent.name))
    return children


def test_load_racing_an_unload_keeps_its_engine_and_orphans_none(two: RunningServer) -> None:
    for _ in range(3):
        def post(action: str) -> None:
            httpx.post(f"{two.base}/admin/models/{TINY}/{action}", timeout=60)

        unload = threading.Thread(target=post, args=("unload",))
        unload.start()
        time.sleep(0.05)  # the unload is stopping the engine when the load comes in
        post("load")
        unload.join(60)
        wait_for_state(two, TINY, "ready")
        live = engine_children(two)
        known = {engine_pid(two, GEMMA), engine_pid(two, TINY)}
        assert live == known, (live, known)
    assert httpx.post(two.v1 + "/completions", json={"model": TINY, "prompt": "x", "max_tokens": 2}
                      ).status_code == 200


def test_plan_lists_a_model_it_cannot_read_as_unknown_and_exits_3(
        gemma_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(model_block("gone", tmp_path / "nfs-not-mounted" / "m.gguf")
                      + model_block(GEMMA, gemma_path, n_ctx=512, parallel=2))
    out = subprocess.run([sys.executable, "-m", "gateway", "plan", "--config", str(config),
                          "--gpus", "2x12GiB"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert "unknown" in rows["gone"] and "nfs-not-mounted" in rows["gone"]
    assert "gpu" in rows[GEMMA]  # the rest was planned
    assert "gone" in out.stderr


def test_models_command_names_a_hub_source(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[[models]]\nid = "hubbed"\nsource = { hf = "org/repo:model.gguf" }\n')
    out = subprocess.run([sys.executable, "-m", "gateway", "models", "--config", str(config)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "hf:org/repo:model.gguf" in out.stdout
    assert "None" not in out.stdout


def test_a_stream_past_the_drain_timeout_ends_with_an_error_frame(gemma_path: Path,
                                                                  tmp_path: Path) -> None:
    config = "[server]\ndrain_timeout_s = 1\n" + model_block(GEMMA, gemma_path, n_ctx=2048,
                                                             parallel=1, threads=1)
    with running_server(config, tmp_path) as server:
        lines: list[str] = []
        stream = stream_under_way(server, GEMMA, 1500, lines, at_least=3)
        stopped_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        stream.join(30)
        server.process.wait(30)
        assert time.monotonic() - stopped_at < 10
    assert lines[-1] == "data: [DONE]"
    error = json.loads(lines[-2][6:])["error"]
    assert error["code"] == "shutting_down" and error["type"] == "server_error"
    assert len(lines) < 1000  # it was cut at the drain, not finished
