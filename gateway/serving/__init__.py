"""Serving: OpenAI wire requests in, validated engine requests out, engine events back to wire chunks.

Imports the engine, never the web framework.
"""
