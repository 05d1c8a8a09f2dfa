"""Shared benchmark plumbing: start the servers under test, stream from them, summarise, print.

Everything binds 127.0.0.1 on a free port; every loop is bounded. Servers are started as child
processes and always stopped.
"""

from __future__ import annotations

import asyncio
import os
import socket
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec

from gateway.engine.process.decode_check import decodes

from gateway.config import load_config
from gateway.engine.llama_backend import LlamaModel
from gateway.model_source import resolve_model_path
from gateway.config import model_entry as model_block

SHIPPED_CONFIG = Path("configs/default.toml")


@dataclass(frozen=True)
class ShippedModel:
    """The first model of a config (the shipped one: the embedded default), assembled where
    `gateway serve` puts it."""

    id: str
    path: Path


def shipped_model(config: Path = SHIPPED_CONFIG) -> ShippedModel:
    loaded = load_config(config)
    model = loaded.models[0]
    return ShippedModel(model.id, resolve_model_path(model, loaded.server.cache_dir))


def embedded_model_path() -> Path:
    """The embedded default's GGUF (Qwen2.5-Coder 0.5B Instruct)."""
    return shipped_model().path


def chat_template_flags(path: Path) -> list[str]:
    """llama-server's template switches for this model: its own Jinja template where the GGUF
    has one (`--jinja`, as the gateway reads it), else the built-in Gemma one (`--no-jinja`:
    with Jinja on, `--chat-template gemma` renders the word "gemma")."""
    if LlamaModel(path, vocab_only=True).chat_template:
        return ["--jinja"]
    return ["--no-jinja", "--chat-template", "gemma"]



def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    base: str
    model: str
    extra: dict[str, object]  # fields this server needs in every request
    pid: int = 0  # its process (a gateway's engines are its children)


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready:\n{log.read_text(errors='replace')[-3000:]}")


@contextmanager
def _process(cmd: list[str], ready_url: str) -> Iterator[int]:
    prefix = os.environ.get("BENCH_GATEWAY_LOG")  # keep the servers' logs: PREFIX-<port>.log
    log = Path(f"{prefix}-{cmd[-1] if 'debug' not in cmd else cmd[-3]}.log" if prefix
               else tempfile.mkstemp(suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(process, ready_url, log)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def gateway_server(model_path: Path, threads: int, parallel: int, n_ctx: int,
                   name: str = "gateway", server: dict[str, object] | None = None,
                   **settings: object) -> Iterator[Server]:
    """`server`: fields of the [server] table (one client sending more than its default share
    of requests at once, say)."""
    port = free_port()
    fields: dict[str, object] = {"n_ctx": n_ctx, "parallel": parallel, "threads": threads,
                                 **settings}  # the GGUF's chat template, else pass one
    config = Path(tempfile.mkstemp(suffix=".toml")[1])
    table = "".join(f"{k} = {v}\n" for k, v in (server or {}).items())
    config.write_text((f"[server]\n{table}\n" if table else "")
                      + model_block("model", model_path, **fields))
    cmd = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)]
    if os.environ.get("BENCH_GATEWAY_LOG"):
        cmd += ["--log-level", "debug"]
    with _process(cmd, f"http://127.0.0.1:{port}/health") as pid:
        yield Server(name, f"http://127.0.0.1:{port}/v1", "model", {"ignore_eos": True}, pid)


@contextmanager
def shipped_gateway(config: Path = SHIPPED_CONFIG) -> Iterator[Server]:
    """`gateway serve` on the shipped config, as a user starts it (the embedded model)."""
    port = free_port()
    model = load_config(config).models[0].id
    cmd = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)]
    with _process(cmd, f"http://127.0.0.1:{port}/health"):
        yield Server("gateway", f"http://127.0.0.1:{port}/v1", model, {"ignore_eos": True})


def _reports_amx() -> bool:
    try:
        return "amx_tile" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def llama_server_binary() -> Path:
    """llama.cpp's own server, built once from the pinned llama-cpp-python's llama.cpp (see
    ../shared/peers/llama-server.sh): native, as pip builds llama-cpp-python, except on a CPU that
    reports AMX (NATIVE=0: the native build faults there in some VMs; its AVX-512 build would
    not run on a CPU without AVX-512)."""
    script = Path(__file__).resolve().parents[2] / "shared" / "peers" / "llama-server.sh"
    env = {**os.environ, "NATIVE": os.environ.get("NATIVE", "0" if _reports_amx() else "1")}
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, check=True)
    return Path(out.stdout.strip().splitlines()[-1])


@contextmanager
def llama_server(model_path: Path, threads: int, parallel: int, n_ctx: int,
                 extra: tuple[str, ...] = ()) -> Iterator[Server]:
    port = free_port()
    cmd = [str(llama_server_binary()), "-m", str(model_path), "-c", str(n_ctx * parallel),
           "-np", str(parallel), "-t", str(threads), *chat_template_flags(model_path),
           *extra, "--host", "127.0.0.1", "--port", str(port)]
    with _process(cmd, f"http://127.0.0.1:{port}/health") as pid:
        yield Server("llama-server", f"http://127.0.0.1:{port}/v1", "model", {"ignore_eos": True},
                     pid)


@contextmanager
def llama_cpp_python_server(model_path: Path, threads: int, n_ctx: int,
                            extra_buffers: bool | None = None) -> Iterator[Server]:
    """llama-cpp-python's server, with llama.cpp's extra CPU buffer types off where they fault
    (see llama_cpp_python_peer; None: find out with the gateway's decode check)."""
    if extra_buffers is None:
        extra_buffers = decodes(model_path, extra_buffers=True)[0]
    port = free_port()
    switch = [] if extra_buffers else ["--no-extra-buffers"]
    cmd = [sys.executable, "-m", "bench.llama_cpp_python_peer", *switch,
           "--model", str(model_path), "--n_ctx", str(n_ctx),
           "--n_threads", str(threads), "--n_threads_batch", str(threads), "--host", "127.0.0.1",
           "--port", str(port), "--interrupt_requests", "False", "--verbose", "False"]
    with _process(cmd, f"http://127.0.0.1:{port}/v1/models"):
        # no ignore_eos there: forbid the end-of-generation tokens instead
        yield Server("llama-cpp-python", f"http://127.0.0.1:{port}/v1", str(model_path),
                     {"logit_bias": {"1": -100, "106": -100}})


@dataclass
class StreamResult:
    ttft: float  # seconds to the first text
    duration: float  # seconds from send to the end of the stream
    tokens: int  # text chunks received (one token each on both servers)
    text: str
    cached_tokens: int | None
    prompt_tokens: int | None
    completion_tokens: int | None = None  # from the usage (speculation may send several a chunk)


async def stream_completion(server: Server, prompt: str, max_tokens: int,
                            extra: dict[str, object] | None = None) -> StreamResult:
    """Stream one completion over a bare socket. The client shares the machine (2 cores) with the
    server under test, so it does as little as it can while the stream runs: it looks for the
    first text, and decodes the whole body once at the end."""
    return await stream_request(server, "/completions", {
        "model": server.model, "prompt": prompt, "max_tokens": max_tokens, "stream": True,
        "temperature": 0, "stream_options": {"include_usage": True}, **server.extra, **(extra or {})})


async def stream_chat(server: Server, messages: list[dict[str, str]], max_tokens: int,
                      extra: dict[str, object] | None = None) -> StreamResult:
    """As `stream_completion`, for a chat (streamed with its usage)."""
    return await stream_request(server, "/chat/completions", {
        "model": server.model, "messages": messages, "max_tokens": max_tokens, "stream": True,
        "temperature": 0, "stream_options": {"include_usage": True}, **server.extra, **(extra or {})})


async def stream_request(server: Server, path: str, fields: dict[str, object]) -> StreamResult:
    body = msgspec.json.encode(fields)
    url = httpx.URL(server.base + path)
    head = (f"POST {url.raw_path.decode()} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(head + body)
    ttft = None
    received = bytearray()
    while True:
        data = await reader.read(65536)
        if not data:
            break
        if ttft is None and _FIRST_TEXT.search(data):
            ttft = time.perf_counter() - start
        received += data
    duration = time.perf_counter() - start
    writer.close()
    header, _, payload = bytes(received).partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    if status != 200:
        raise httpx.HTTPStatusError(f"{status}: {payload[:300]!r}", request=None, response=None)  # type: ignore[arg-type]
    if b"transfer-encoding: chunked" in header.lower():
        payload = _dechunk(payload)
    frames = [f for f in payload.split(b"\n\n") if f.startswith(b"data: {")]
    texts = [_frame_text(f) for f in frames]
    tokens = sum(1 for t in texts if t)
    cached = prompt_tokens = completion = None
    usage = msgspec.json.decode(frames[-1][6:]).get("usage") if frames else None
    if usage:
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        prompt_tokens = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens")
    return StreamResult(ttft if ttft is not None else duration, duration, tokens, "".join(texts), cached,
                        prompt_tokens, completion)


_FIRST_TEXT = re.compile(rb'"(?:text|content)": ?"[^"]')


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return bytes(out)


def _frame_text(frame: bytes) -> str:
    chunk = msgspec.json.decode(frame[6:])
    return "".join(c.get("text") or (c.get("delta") or {}).get("content") or ""
                   for c in chunk.get("choices") or [])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """A process's child processes (a gateway's engines)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n### {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)
