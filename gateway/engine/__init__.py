"""The engine: one resident llama.cpp model, its sequence slots and KV (`kv/`), the pure scheduler,
the batch step, and the engine process (`process/`); all its settings in `settings`.

Never imports the layers above. Only `llama_backend` imports `llama_cpp`, and it imports nothing
else of the gateway.
"""
