"""The browser page: `GET /` and `GET /ui/{file}`, the package's static files (`gateway.ui`).

Open to every caller the guard lets through (the page holds no data: it asks for a key and then
reads the API as any client does), with headers that keep it to itself: its own scripts only,
connections to this server only, never framed by another site."""

from __future__ import annotations

from litestar import Response, get

from gateway import ui
from gateway.errors import NotFound

PAGE_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _file(name: str) -> Response[bytes]:
    found = ui.asset(name)
    if found is None:
        raise NotFound(f"The page has no file `{name}`")
    body, media_type = found
    return Response(body, media_type=media_type, headers=PAGE_HEADERS)


@get(["/", "/ui", "/ui/"], sync_to_thread=False)
def page() -> Response[bytes]:
    return _file(ui.INDEX)


@get("/ui/{name:str}", sync_to_thread=False)
def page_file(name: str) -> Response[bytes]:
    return _file(name)


UI_ROUTES = [page, page_file]
