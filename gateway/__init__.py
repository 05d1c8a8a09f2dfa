"""gateway: an OpenAI-compatible inference gateway for home GPU rigs, on llama.cpp."""

__version__ = "0.1.0"
