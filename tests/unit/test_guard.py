"""The door, in front of a tiny app that echoes who it thinks the client is: Host and Origin
checks (DNS rebinding, drive-by pages), JSON only, keys, admin from loopback, per-client limits."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from gateway.api.guard import Guard, AccessPolicy
from gateway.keys import KeyRing, key_id


def make_policy(**overrides: object) -> AccessPolicy:
    fields: dict = {"bind_host": "127.0.0.1", "allowed_hosts": frozenset({"rig.local"}),
                    "cors_origins": frozenset({"http://app.example"}), "api_keys": KeyRing([]),
                    "admin_keys": KeyRing([]), "max_requests_per_client": 0}
    return AccessPolicy(**{**fields, **overrides})


async def echo(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["path"] == "/v1/completions":
        await asyncio.sleep(0.2)
    body = json.dumps({"client": scope.get("gateway.client"), "admin": scope.get("gateway.admin")})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body.encode()})


def client(policy: AccessPolicy, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=Guard(echo, policy), client=(address, 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "rig.local",
                                  "192.168.1.20:8000", "app.localhost"])
async def test_hosts_the_server_answers_to(host: str) -> None:
    async with client(make_policy()) as c:
        assert (await c.get("/v1/models", headers={"host": host})).status_code == 200


async def test_a_rebound_host_name_is_refused() -> None:
    async with client(make_policy()) as c:
        r = await c.post("/admin/models/m/unload", headers={"host": "evil.example", **JSON})
    assert r.status_code == 403 and r.json()["error"]["code"] == "host_not_allowed"


async def test_origins() -> None:
    async with client(make_policy()) as c:
        foreign = await c.post("/v1/completions", content=b"{}",
                               headers={"origin": "http://evil.example", **JSON})
        assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "origin_not_allowed"
        same = await c.post("/v1/completions", content=b"{}",
                            headers={"origin": "http://127.0.0.1:8000", **JSON})
        assert same.status_code == 200 and "access-control-allow-origin" not in same.headers
        allowed = await c.post("/v1/completions", content=b"{}",
                               headers={"origin": "http://app.example", **JSON})
        assert allowed.headers["access-control-allow-origin"] == "http://app.example"
        assert (await c.get("/v1/models", headers={"origin": "null"})).status_code == 403


async def test_preflight_answers_only_allowed_origins() -> None:
    async with client(make_policy()) as c:
        ok = await c.options("/v1/chat/completions", headers={
            "origin": "http://app.example", "access-control-request-method": "POST"})
        assert ok.status_code == 204
        assert "Authorization" in ok.headers["access-control-allow-headers"]
        bad = await c.options("/v1/chat/completions", headers={"origin": "http://evil.example"})
        assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
async def test_bodies_must_be_json(content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    async with client(make_policy()) as c:
        r = await c.post("/v1/chat/completions", content=b'{"model": "m"}', headers=headers)
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"


async def test_admin_routes_from_elsewhere_need_an_admin_key() -> None:
    async with client(make_policy(), address="192.168.1.50") as c:
        r = await c.post("/admin/models/m/unload", headers=JSON)
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_required"
        assert (await c.post("/v1/completions", content=b"{}", headers=JSON)).status_code == 200
    async with client(make_policy()) as c:  # loopback, no admin keys: allowed
        assert (await c.post("/admin/models/m/unload", headers=JSON)).status_code == 200
    with_keys = make_policy(api_keys=KeyRing(["user-key"]), admin_keys=KeyRing(["admin-key"]))
    async with client(with_keys) as c:  # admin keys set: even loopback needs one
        user = {"authorization": "Bearer user-key", **JSON}
        assert (await c.post("/admin/models/m/unload", headers=user)).status_code == 401
        admin = {"authorization": "Bearer admin-key", **JSON}
        assert (await c.post("/admin/models/m/unload", headers=admin)).status_code == 200


@pytest.mark.parametrize("path", ["//admin/models/m/unload", "/admin//models/m/unload/",
                                  "///admin/models/m/unload"])
async def test_a_path_the_router_cleans_is_judged_as_cleaned(path: str) -> None:
    """The router merges repeated slashes and drops a trailing one: `//admin/...` reaches the
    admin route, so the door must judge it as /admin/... (it let it through before)."""
    url = "http://127.0.0.1:8000" + path  # whole: httpx reads a bare `//admin` as a host
    async with client(make_policy(), address="192.168.1.50") as c:
        r = await c.post(url, headers=JSON)
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_required"
    with_keys = make_policy(api_keys=KeyRing(["user-key"]), admin_keys=KeyRing(["admin-key"]))
    async with client(with_keys) as c:
        user = {"authorization": "Bearer user-key", **JSON}
        assert (await c.post(url, headers=user)).status_code == 401
    async with client(make_policy()) as c:  # the JSON-only rule too
        r = await c.post("http://127.0.0.1:8000//v1/chat/completions/", content=b"{}",
                         headers={"content-type": "text/plain"})
        assert r.status_code == 415


async def test_keys_name_the_client_and_addresses_do_without_them() -> None:
    async with client(make_policy(api_keys=KeyRing(["alice", "bob"]))) as c:
        assert (await c.get("/v1/models")).status_code == 401
        assert (await c.get("/v1/models", headers={"authorization": "Bearer eve"})).status_code == 401
        assert (await c.get("/health")).status_code == 200
        r = await c.get("/v1/models", headers={"authorization": "Bearer alice"})
        assert r.json()["client"] == f"key:{key_id('alice')}" and "alice" not in r.text
    async with client(make_policy(), address="10.0.0.7") as c:
        assert (await c.get("/v1/models")).json() == {"client": "addr:10.0.0.7", "admin": False}


async def test_one_client_cannot_have_more_than_its_share_in_flight() -> None:
    policy = make_policy(max_requests_per_client=2)
    async with client(policy) as c:
        answers = await asyncio.gather(*(c.post("/v1/completions", content=b"{}", headers=JSON)
                                         for _ in range(3)))
        assert sorted(r.status_code for r in answers) == [200, 200, 429]
        assert policy.in_flight == {}  # every request that ended was counted out
        assert (await c.post("/v1/completions", content=b"{}", headers=JSON)).status_code == 200


async def test_anthropic_clients_key_in_x_api_key_and_are_refused_in_their_shape() -> None:
    async with client(make_policy(api_keys=KeyRing(["alice"]))) as c:
        r = await c.post("/v1/messages", content=b"{}", headers={**JSON, "x-api-key": "alice"})
        assert r.status_code == 200 and r.json()["client"] == f"key:{key_id('alice')}"
        refused = await c.post("/v1/messages", content=b"{}", headers={**JSON, "x-api-key": "eve"})
        assert refused.status_code == 401
        assert refused.json() == {"type": "error", "error": {
            "type": "authentication_error", "message": "Incorrect API key provided"}}
        ollama = await c.get("/api/tags")
        assert ollama.status_code == 401 and ollama.json() == {"error": "Incorrect API key provided"}
        openai_shape = await c.get("/v1/models")
        assert openai_shape.json()["error"]["code"] == "invalid_api_key"
