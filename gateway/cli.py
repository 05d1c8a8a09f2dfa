"""The `gateway` command: `serve` starts the server, `models` lists what a config would serve."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys

from gateway.config import Config, ConfigError, load_config
from gateway.model_source import ModelSourceError
from gateway.placement.plan import PlacementError, parse_inventory
from gateway.placement.planner import plan_config, plan_table, planner_for
from gateway.progress import ProgressBar

DEFAULT_CONFIG = "configs/default.toml"


def _load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        sys.exit(f"gateway: {exc}")


def cmd_models(args: argparse.Namespace) -> None:
    config = _load(args.config)
    print(f"{'id':<28} {'aliases':<28} {'source':<40} {'n_ctx':>6} {'parallel':>8}")
    for m in config.models:
        source = m.source.path or (f"package:{m.source.package}" if m.source.package
                                   else f"parts:{m.source.parts[0]}+{len(m.source.parts) - 1}"
                                   if m.source.parts else f"hf:{m.source.hf}")
        print(f"{m.id:<28} {','.join(m.aliases):<28} {source:<40} {str(m.context.n_ctx):>6} {str(m.context.parallel):>8}")


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from gateway.api.app import create_app, policy_for
    from gateway.api.guard import is_loopback
    from gateway.keys import KeySourceError
    from gateway.fleet.registry import ModelRegistry

    config = _load(args.config)
    host = args.host or config.server.host
    port = config.server.port if args.port is None else args.port
    try:
        policy = policy_for(config, host)
    except KeySourceError as exc:
        sys.exit(f"gateway: {exc}")
    if not is_loopback(host) and not policy.api_keys:
        warning = (f"gateway: WARNING: binding {host} with no API keys: anyone who can reach "
                   f"port {port} can use every model. Set [server] api_keys (or api_keys_file / "
                   "api_keys_env).")
        if not args.allow_insecure:
            sys.exit(warning + " Refusing to start; pass --allow-insecure to start anyway.")
        print(warning, file=sys.stderr, flush=True)
    planner = planner_for(config)
    try:
        planner.plan_available()  # models still to download are placed when they arrive
    except (PlacementError, ModelSourceError) as exc:
        sys.exit(f"gateway: {exc}")
    bars: dict[str, ProgressBar] = {}

    def progress(name: str, fraction: float) -> None:
        bar = bars.get(name)
        if bar is None or (bar.done and fraction < 1.0):  # loaded again: woken, restarted
            bar = bars[name] = ProgressBar(f"loading {name}")
        bar.update(fraction)

    registry = ModelRegistry.from_config(config, planner, progress)
    app = create_app(config, registry, policy)
    print(f"gateway: serving {', '.join(registry.names())} on http://{host}:{port}/v1 "
          "(models load in the background; GET /health says when they are ready)", flush=True)
    drain_s = config.server.drain_timeout_s

    class DrainingServer(uvicorn.Server):
        """On SIGINT/SIGTERM, streams in progress get `drain_timeout_s` to finish; those still
        running then end with an error frame and [DONE], not a cut connection."""

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            loop = asyncio.get_running_loop()
            timer = loop.call_later(drain_s, registry.end_in_flight,
                                    "The server is shutting down; retry shortly")
            try:
                await super().shutdown(sockets)
            finally:
                timer.cancel()

    server = DrainingServer(uvicorn.Config(
        app, host=host, port=port, log_level=args.log_level,
        # past the drain, streams end themselves; this only bounds what refuses to
        timeout_graceful_shutdown=int(drain_s) + 5))
    server.run()


def cmd_status(args: argparse.Namespace) -> None:
    from gateway.status_view import run

    try:
        run(args.url, args.once, args.interval, args.api_key)
    except KeyboardInterrupt:
        pass


def cmd_plan(args: argparse.Namespace) -> None:
    config = _load(args.config)
    try:
        gpus = parse_inventory(args.gpus) if args.gpus else None
    except ValueError as exc:
        sys.exit(f"gateway: {exc}")
    try:
        planner = plan_config(config, gpus)
    except (PlacementError, ModelSourceError) as exc:
        sys.exit(f"gateway: {exc}")
    print(f"GPUs: {planner.source}")
    print(plan_table(config, planner.placements, planner.gpus, planner.unknown, planner.sleeping,
                     planner.fitted))
    if planner.unknown:
        print(f"gateway: {len(planner.unknown)} model(s) could not be read now and were not "
              "placed: " + ", ".join(planner.unknown), file=sys.stderr)
        sys.exit(3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the OpenAI-compatible server")
    serve.add_argument("--config", default=DEFAULT_CONFIG, help=f"TOML config (default {DEFAULT_CONFIG})")
    serve.add_argument("--host", default=None, help="address to bind (default from config: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default from config: 8000)")
    serve.add_argument("--allow-insecure", action="store_true",
                       help="start on a non-loopback address even with no API keys")
    serve.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=cmd_serve)
    plan = sub.add_parser("plan", help="print where each model would run, loading nothing")
    plan.add_argument("--config", default=DEFAULT_CONFIG)
    plan.add_argument("--gpus", default=None, help="plan for these GPUs instead, e.g. 5x12GiB")
    plan.set_defaults(func=cmd_plan)
    status = sub.add_parser("status", help="a live view of a running gateway")
    status.add_argument("--url", default="http://127.0.0.1:8000")
    status.add_argument("--once", action="store_true", help="print one snapshot and exit")
    status.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    status.add_argument("--api-key", default=None, help="when the gateway has API keys")
    status.set_defaults(func=cmd_status)
    models = sub.add_parser("models", help="list the models a config would serve")
    models.add_argument("--config", default=DEFAULT_CONFIG)
    models.set_defaults(func=cmd_models)
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, getattr(args, "log_level", "warning").upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("gateway.access").setLevel(logging.INFO)  # one line a request, always
    logging.getLogger("gateway.models").setLevel(logging.INFO)  # loads, sleeps and wakes
    args.func(args)
