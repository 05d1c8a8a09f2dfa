"""The browser page: static files (HTML, CSS, JavaScript modules; no build step, no CDN: the rig
may have no internet), read from the package. The page is a client of the HTTP API like any
other: it reads /health and /metrics, and chats through /v1/chat/completions."""

from __future__ import annotations

from importlib import resources

MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
               ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
INDEX = "index.html"


def asset(name: str) -> tuple[bytes, str] | None:
    """The file `name` of the page and its media type; None for anything else (no paths: a name
    with a slash or a leading dot is never a file of the page)."""
    suffix = name[name.rfind("."):] if "." in name else ""
    if "/" in name or "\\" in name or name.startswith(".") or suffix not in MEDIA_TYPES:
        return None
    path = resources.files(__package__).joinpath("static", name)
    if not path.is_file():
        return None
    return path.read_bytes(), MEDIA_TYPES[suffix]
