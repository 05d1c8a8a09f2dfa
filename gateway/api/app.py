"""The app factory: builds a litestar app around a loaded `ModelRegistry`. No globals."""

from __future__ import annotations

from litestar import Litestar, Request
from litestar.datastructures import State

from gateway.api.errors import EXCEPTION_HANDLERS
from gateway.api.routes import ROUTES
from gateway.config import Config
from gateway.errors import AuthenticationFailed
from gateway.serving.model_registry import ModelRegistry

OPEN_PATHS = {"/health"}


def _auth_hook(keys: frozenset[str]):  # type: ignore[no-untyped-def]
    async def check_key(request: Request) -> None:
        if not keys or request.url.path in OPEN_PATHS:
            return  # no keys configured: any bearer (or none) is accepted
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in keys:
            raise AuthenticationFailed("Incorrect API key provided")

    return check_key


def create_app(config: Config, registry: ModelRegistry) -> Litestar:
    """The app; its startup starts the models' engine processes, its shutdown stops them."""

    async def start_models() -> None:
        registry.start()

    async def stop_models() -> None:
        await registry.close()

    return Litestar(
        route_handlers=ROUTES,
        on_startup=[start_models],
        on_shutdown=[stop_models],
        state=State({"registry": registry, "config": config}),
        before_request=_auth_hook(frozenset(config.server.api_keys)),
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        debug=False,
        logging_config=None,
    )
