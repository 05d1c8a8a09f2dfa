"""`gateway status`: a live table of a running gateway, read from its /health and /metrics.

Models (state or load progress, replicas, slots busy of total, waiting, tokens/s, TTFT p50 by
class, conversations held), each replica (where it runs, its planned memory, restarts, prompt
tokens computed) and each GPU (memory, load, temperature, power), refreshed in place; `--once` prints one snapshot and exits. A client of the HTTP API only: it imports
neither the engine nor the web layer.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

_SAMPLE = re.compile(r'^(\w+)\{([^}]*)\} (\S+)$')


@dataclass
class Snapshot:
    at: float
    health: dict[str, Any]
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def metric(self, name: str, **labels: str) -> float:
        return sum(v for n, l, v in self.samples
                   if n == name and all(l.get(k) == val for k, val in labels.items()))


def fetch(url: str, api_key: str | None) -> Snapshot:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    health = httpx.get(url + "/health", headers=headers, timeout=10).json()
    metrics = httpx.get(url + "/metrics", headers=headers, timeout=10)
    if metrics.status_code == 401:
        raise SystemExit("gateway status: this gateway needs an API key: pass --api-key KEY")
    text = metrics.text
    samples = []
    for line in text.splitlines():
        found = _SAMPLE.match(line)
        if found:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', found.group(2)))
            samples.append((found.group(1), labels, float(found.group(3))))
    return Snapshot(time.monotonic(), health, samples)


def _ttft_p50(now: Snapshot, model: str, kind: str) -> str:
    """The median from the histogram's buckets (its upper bound), or '-' with no samples."""
    count = now.metric("gateway_time_to_first_token_seconds_count", model=model, **{"class": kind})
    if not count:
        return "-"
    buckets = sorted((float(l["le"]), v) for n, l, v in now.samples
                     if n == "gateway_time_to_first_token_seconds_bucket"
                     and l.get("model") == model and l.get("class") == kind and l["le"] != "+Inf")
    for bound, cumulative in buckets:
        if cumulative >= count / 2:
            return f"<= {bound:g} s"
    return f"> {buckets[-1][0]:g} s" if buckets else "-"


def render(now: Snapshot, before: Snapshot | None) -> Group:
    models = Table(title=f"gateway: {now.health.get('status')}")
    for column in ("model", "state", "replicas", "slots busy", "waiting", "tokens/s",
                   "TTFT p50 ongoing", "TTFT p50 new", "conversations (slots/RAM/disk)",
                   "sleeps in"):
        models.add_column(column)
    replicas = Table(title="replicas")
    for column in ("model", "#", "state", "device", "GPUs", "memory", "restarts",
                   "prompt tokens computed"):
        replicas.add_column(column)
    for model, state in (now.health.get("models") or {}).items():
        rate = "-"
        if before is not None and now.at > before.at:
            made = (now.metric("gateway_tokens_total", model=model, kind="generated")
                    - before.metric("gateway_tokens_total", model=model, kind="generated"))
            rate = f"{made / (now.at - before.at):.1f}"
        busy, slots = now.metric("gateway_slots_busy", model=model), now.metric("gateway_slots",
                                                                                model=model)
        shown = str(state["state"])
        if "load_progress" in state:
            shown += f" {state['load_progress']:g}%"
        held = "/".join(f"{now.metric('gateway_conversations', model=model, where=w):g}"
                        for w in ("resident", "ram", "disk"))
        models.add_row(model, shown, str(len(state["replicas"])),
                       f"{busy:g} / {slots:g}", str(state["waiting"]), rate,
                       _ttft_p50(now, model, "ongoing"), _ttft_p50(now, model, "new"), held,
                       _sleeps_in(state))
        for i, replica in enumerate(state["replicas"]):
            memory = replica.get("memory_bytes") or 0
            replicas.add_row(model, str(i), str(replica["state"]), str(replica.get("device", "-")),
                             ",".join(map(str, replica.get("gpus") or [])) or "-",
                             f"{memory / (1 << 30):.1f} GiB" if memory else "-",
                             str(replica.get("restarts", 0)),
                             str(replica.get("prompt_tokens_computed", 0)))
    return Group(models, replicas, _gpus(now.health.get("gpus") or []))


def _sleeps_in(state: dict[str, Any]) -> str:
    """How long until an idle model with `keep_alive_s` goes to sleep."""
    keep = state.get("keep_alive_s")
    if keep is None or state["state"] != "ready":
        return "-"
    return f"{max(0.0, keep - state.get('idle_s', 0.0)):.0f} s"


def _gpus(readings: list[dict[str, Any]]) -> Table:
    table = Table(title="GPUs" if readings else "GPUs: none read (CPU, or no driver tool)")
    for column in ("#", "name", "memory", "load", "temperature", "power"):
        table.add_column(column)
    for gpu in readings:
        def shown(key: str, unit: str) -> str:
            value = gpu.get(key)
            return f"{value:.0f}{unit}" if value is not None else "-"
        table.add_row(str(gpu["index"]), str(gpu["name"]),
                      f"{gpu['memory_used'] / (1 << 30):.1f} / {gpu['memory_total'] / (1 << 30):.1f} GiB",
                      shown("utilization", " %"), shown("temperature_c", " °C"),
                      shown("power_w", " W"))
    return table


def run(url: str, once: bool, interval_s: float, api_key: str | None) -> None:
    console = Console()
    url = url.rstrip("/").removesuffix("/v1")
    before = fetch(url, api_key)
    if once:
        console.print(render(before, None))
        return
    with Live(render(before, None), console=console, refresh_per_second=4) as live:
        while True:
            time.sleep(interval_s)
            now = fetch(url, api_key)
            live.update(render(now, before))
            before = now
