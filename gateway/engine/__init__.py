"""The engine: one resident llama.cpp model, its sequence slots, sessions and batch step.

Never imports the web layer. Only `llama_backend` imports `llama_cpp`.
"""
