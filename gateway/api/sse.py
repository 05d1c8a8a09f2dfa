"""Server-sent events framing: compact JSON `data:` frames, comments, and the final `[DONE]`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from gateway.frontend.endpoints.completion_chunks import StreamItem
from gateway.frontend.endpoints.llama_server import NativeStreamItem
from gateway.frontend.event_stream import LoadingNotice, QueueNotice
from gateway.protocol import anthropic, responses

DONE = b"data: [DONE]\n\n"

HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    # Several SDKs and editor plugins read until the socket closes: close it after [DONE].
    "Connection": "close",
}


async def frames(items: AsyncIterator[StreamItem] | AsyncIterator[NativeStreamItem],
                 done: bool = True) -> AsyncIterator[bytes]:
    """`data:` frames, queue and loading notices as comments; `[DONE]` last (OpenAI's streams: llama.cpp's
    own routes end without it, as llama-server's do)."""
    encoder = msgspec.json.Encoder()
    async for item in items:
        if isinstance(item, QueueNotice):
            yield f": queued position={item.position}\n\n".encode()
        elif isinstance(item, LoadingNotice):
            yield f": loading {item.percent:g}%\n\n".encode()
        else:
            yield b"data: " + encoder.encode(item) + b"\n\n"
    if done:
        yield DONE


TypedEvent = responses.StreamEvent | anthropic.StreamEvent


async def typed_events(events: AsyncIterator[TypedEvent | LoadingNotice | QueueNotice]
                       ) -> AsyncIterator[bytes]:
    """The Responses API's and Anthropic's streams: each event named in an `event:` line, then
    its `data:`; notices as comments."""
    encoder = msgspec.json.Encoder()
    async for item in events:
        if isinstance(item, LoadingNotice):
            yield f": loading {item.percent:g}%\n\n".encode()
            continue
        if isinstance(item, QueueNotice):
            yield f": queued position={item.position}\n\n".encode()
            continue
        yield b"event: " + item.type.encode() + b"\ndata: " + encoder.encode(item) + b"\n\n"


async def ndjson_lines(items: AsyncIterator[object]) -> AsyncIterator[bytes]:
    """Ollama's stream: one JSON object per line, no blank lines, no comments (loading and queue
    notices have no place in it: the stream just waits)."""
    encoder = msgspec.json.Encoder()
    async for item in items:
        if not isinstance(item, (QueueNotice, LoadingNotice)):
            yield encoder.encode(item) + b"\n"
