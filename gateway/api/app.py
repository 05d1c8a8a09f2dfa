"""The app factory: a litestar app around a loaded `ModelRegistry`, behind the `Guard`. No globals."""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import State

from gateway.api.anthropic_routes import ANTHROPIC_ROUTES
from gateway.api.errors import EXCEPTION_HANDLERS
from gateway.api.guard import App, Guard, AccessPolicy
from gateway.api.native_routes import NATIVE_ROUTES
from gateway.api.ollama_routes import OLLAMA_ROUTES
from gateway.api.routes import ROUTES
from gateway.api.ui_routes import UI_ROUTES
from gateway.config import Config
from gateway.keys import KeyRing, gather_keys
from gateway.fleet.registry import ModelRegistry
from gateway.frontend.endpoints.responses_api import ResponseStore


def policy_for(config: Config, bind_host: str) -> AccessPolicy:
    """The door's rules from the config; raises `KeySourceError` for a key file or variable that
    cannot be read."""
    server = config.server
    return AccessPolicy(
        bind_host=bind_host,
        allowed_hosts=frozenset(h.lower() for h in server.allowed_hosts),
        cors_origins=frozenset(o.rstrip("/") for o in server.cors_origins),
        api_keys=KeyRing(gather_keys(server.api_keys, server.api_keys_file, server.api_keys_env)),
        admin_keys=KeyRing(gather_keys(server.admin_keys, server.admin_keys_file,
                                       server.admin_keys_env)),
        max_requests_per_client=server.max_requests_per_client,
    )


def create_app(config: Config, registry: ModelRegistry, policy: AccessPolicy) -> App:
    """The app; its startup starts the models' engine processes, its shutdown stops them."""

    async def start_models() -> None:
        registry.start()

    async def stop_models() -> None:
        await registry.close()

    app = Litestar(
        route_handlers=[*ROUTES, *NATIVE_ROUTES, *ANTHROPIC_ROUTES, *OLLAMA_ROUTES, *UI_ROUTES],
        on_startup=[start_models],
        on_shutdown=[stop_models],
        state=State({"registry": registry, "config": config, "responses": ResponseStore()}),
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        debug=False,
        logging_config=None,
    )
    return Guard(app, policy)  # type: ignore[arg-type]
