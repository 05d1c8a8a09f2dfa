"""Wire types, one module per protocol (OpenAI, OpenAI Responses, llama.cpp): msgspec Structs
and nothing else; no layer below is imported."""
