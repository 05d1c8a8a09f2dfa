"""The web layer: litestar routes per protocol, SSE framing, error rendering, the Host/Origin and
key guard. The only litestar importer; calls the frontend, never the engine.
"""
