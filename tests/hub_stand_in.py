"""A local HTTP server that answers like the Hugging Face hub for file downloads (HF_ENDPOINT)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@contextmanager
def hub_serving(files: dict[str, Path]) -> Iterator[tuple[str, list[str]]]:
    """Serve {"org/repo/file.gguf": path}; yields the endpoint and a log of requested paths."""
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _file(self) -> Path | None:
            requests.append(f"{self.command} {self.path}")
            # /{org}/{repo}/resolve/{revision}/{filename}
            parts = self.path.split("?")[0].strip("/").split("/")
            if len(parts) < 5 or parts[2] != "resolve":
                return None
            return files.get(f"{parts[0]}/{parts[1]}/{'/'.join(parts[4:])}")

        def _headers(self, path: Path, status: int = 200, start: int = 0) -> None:
            data = path.read_bytes()
            self.send_response(status)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()

        def _not_found(self) -> None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_HEAD(self) -> None:
            path = self._file()
            if path is None:
                self._not_found()
                return
            self._headers(path)

        def do_GET(self) -> None:
            path = self._file()
            if path is None:
                self._not_found()
                return
            start = 0
            if self.headers.get("Range", "").startswith("bytes="):
                start = int(self.headers["Range"][6:].split("-")[0] or 0)
            self._headers(path, 206 if start else 200, start)
            self.wfile.write(path.read_bytes()[start:])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
