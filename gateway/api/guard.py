"""The door: who may talk to the server, from where, and as whom. A pure ASGI middleware in front of
every route (unknown ones included), so nothing reaches a handler that this has not let through.

- DNS rebinding: a `Host` must be a name the server answers to: an IP address, a localhost name,
  the bind address or `[server] allowed_hosts`.
- Browsers: a request carrying an `Origin` must come from the same origin or one of
  `[server] cors_origins`; CORS headers (and preflight answers) only for those. POST bodies must be
  `application/json`: a cross-site page cannot send that without a preflight.
- Keys: with API keys, every route but /health and the page's files needs a key (/health
  tells a caller without one its status only; the page asks for one before it reads anything); /admin needs an admin key, or, with none configured, a loopback
  client.
- Identity: the client is its key's hash, or its address when keys are off; handlers read it as
  `scope["gateway.client"]` (sessions are scoped to it), `scope["gateway.admin"]` and
  `scope["gateway.trusted"]` (a key holder, or anyone when keys are off).
- Fairness: at most `max_requests_per_client` generation requests in flight per client.
Refusals are errors in the shape of the route's protocol. Keys (a bearer token, or Anthropic's
`x-api-key`) are never logged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar.utils import normalize_path

from gateway.api.errors import error_of
from gateway.errors import Failure, GatewayError, ServiceFailure
from gateway.frontend.error_frames import error_body
from gateway.keys import KeyRing

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/health"})
PAGE_PATHS = frozenset({"/", "/ui"})  # and /ui/{file}: the page, which holds no data


def is_open(path: str) -> bool:
    """Whether a caller without a key may have this path (when keys are on)."""
    return path in OPEN_PATHS or path in PAGE_PATHS or path.startswith("/ui/")

# the routes that take a JSON body and generate: JSON only, counted against the client's share
GENERATION_PATHS = frozenset({"/v1/chat/completions", "/chat/completions", "/v1/completions",
                              "/completions", "/infill", "/completion", "/v1/embeddings",
                              "/embeddings", "/v1/responses", "/responses", "/v1/messages",
                              "/api/chat", "/api/generate", "/api/embed", "/api/embeddings"})
JSON_PATHS = GENERATION_PATHS | {"/tokenize", "/detokenize", "/apply-template",
                                 "/v1/messages/count_tokens",
                                 "/api/show"}  # POST bodies: JSON only
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
ALLOWED_HEADERS = ("Authorization, Content-Type, X-Session-ID, OpenAI-Organization, OpenAI-Project, "
                   "X-Api-Key, Anthropic-Version, Anthropic-Beta")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address in LOCAL_NAMES


def host_name(host: str) -> str:
    """`name:port` or `[v6]:port` to the bare lower-case name."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


@dataclass
class AccessPolicy:
    bind_host: str
    allowed_hosts: frozenset[str]
    cors_origins: frozenset[str]
    api_keys: KeyRing
    admin_keys: KeyRing
    max_requests_per_client: int
    in_flight: dict[str, int] = field(default_factory=dict)

    def host_allowed(self, host: str | None) -> bool:
        if host is None:
            return True  # HTTP/1.0 without Host: not a browser
        name = host_name(host)
        return (_is_ip(name) or name in LOCAL_NAMES or name.endswith(".localhost")
                or name == self.bind_host.lower() or name in self.allowed_hosts
                or "*" in self.allowed_hosts)

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        if origin in self.cors_origins or "*" in self.cors_origins:
            return True
        scheme, _, rest = origin.partition("://")
        return scheme in ("http", "https") and host is not None and rest.lower() == host.lower()


def _refusal(error: GatewayError, path: str, headers: list[tuple[bytes, bytes]] | None = None
             ) -> tuple[int, bytes, list]:
    """A refused request as (status, body, headers): rendered as every error is, in the shape of
    the protocol `path` speaks."""
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    return error.status, msgspec.json.encode(error_body(path, error)), [*extra, *(headers or [])]


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *headers]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app: App, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        # every rule reads the path the router will route (`//admin/x/` reaches /admin/x)
        path = normalize_path(scope["path"])
        refusal, cors = self._check(scope, headers, path)
        if refusal is not None:
            await _respond(send, *_refusal(refusal, scope["path"]))
            return
        cors_headers = [(b"access-control-allow-origin", cors.encode("latin-1")),
                        (b"vary", b"Origin")] if cors else []
        if scope["method"] == "OPTIONS" and cors:
            await send({"type": "http.response.start", "status": 204, "headers": [
                *cors_headers, (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                (b"access-control-max-age", b"600")]})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and cors_headers:
                message["headers"] = [*message.get("headers", []), *cors_headers]
            await send(message)

        client = scope["gateway.client"]
        counted = path in GENERATION_PATHS and scope["method"] == "POST"
        limit = self.policy.max_requests_per_client
        if counted:
            if limit and self.policy.in_flight.get(client, 0) >= limit:
                await _respond(send, *_refusal(ServiceFailure(
                    Failure.CLIENT_QUOTA, f"This client already has {limit} requests in flight; "
                    "wait for one to end"), scope["path"], cors_headers))
                return
            self.policy.in_flight[client] = self.policy.in_flight.get(client, 0) + 1
        try:
            await self.app(scope, receive, send_with_cors)
        finally:
            if counted:
                left = self.policy.in_flight[client] - 1
                if left:
                    self.policy.in_flight[client] = left
                else:
                    del self.policy.in_flight[client]

    def _check(self, scope: Scope, headers: dict[str, str], path: str
               ) -> tuple[GatewayError | None, str | None]:
        """(a refusal, or None) and the origin to send CORS headers to, if any."""
        policy = self.policy
        host = headers.get("host")
        if not policy.host_allowed(host):
            return error_of(403, f"Host `{host}` is not one this server answers to; add it to "
                          "[server] allowed_hosts", "invalid_request_error",
                          "host_not_allowed"), None
        origin = headers.get("origin")
        cors = None
        if origin is not None:
            if not policy.origin_allowed(origin, host):
                return error_of(403, f"Requests from the web origin `{origin}` are not allowed; add "
                              "it to [server] cors_origins", "invalid_request_error",
                              "origin_not_allowed"), None
            cors = origin if origin in policy.cors_origins or "*" in policy.cors_origins else None
        if scope["method"] == "OPTIONS":
            return None, cors
        if scope["method"] == "POST" and path in JSON_PATHS:
            media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if media != "application/json":
                return error_of(415, "Send the body as JSON with `Content-Type: application/json`",
                              "invalid_request_error", "unsupported_media_type"), cors
        address = (scope.get("client") or ("", 0))[0]
        bearer = headers.get("authorization", "")
        scheme, _, token = bearer.partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        token = token or headers.get("x-api-key", "").strip()  # Anthropic's clients send this
        api_id = policy.api_keys.match(token) if token else None
        admin_id = policy.admin_keys.match(token) if token else None
        if path.startswith("/admin"):
            admin = admin_id is not None if policy.admin_keys else is_loopback(address)
            if not admin:
                why = ("an admin key" if policy.admin_keys
                       else "a client on this machine (set [server] admin_keys to allow others)")
                return error_of(403 if not policy.admin_keys else 401,
                              f"The admin routes need {why}", "invalid_request_error",
                              "admin_required"), cors
        if policy.api_keys and not is_open(path) and api_id is None and admin_id is None:
            return error_of(401, "Incorrect API key provided", "invalid_request_error",
                          "invalid_api_key"), cors
        identity = api_id or admin_id
        scope["gateway.client"] = f"key:{identity}" if identity else f"addr:{address}"
        scope["gateway.trusted"] = not policy.api_keys or identity is not None
        scope["gateway.admin"] = (admin_id is not None if policy.admin_keys
                                  else is_loopback(address) and (not policy.api_keys or
                                                                 api_id is not None))
        return None, cors
