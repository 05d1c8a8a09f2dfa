"""The web layer: litestar routes, SSE framing, OpenAI-shaped errors. The only litestar importer.

`schemas` is plain msgspec and may be imported by the serving layer; nothing else here may.
"""
