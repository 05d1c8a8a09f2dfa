"""Prompts: chat templates, fill-in-the-middle layouts, structured output, and the checks every
prompt goes through (`checks`), turning a protocol's body into a `GenerationRequest`."""
