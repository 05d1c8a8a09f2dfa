"""Protocol in, engine request out, events back: one endpoint skeleton (`endpoint`), one event
loop (`event_stream`), prompt building and checks (`prompt/`), tools (`tools/`), and a thin
build-and-render module per endpoint (`endpoints/`). Owns no process; never imports litestar or
the llama backend (a model's vocabulary is a `tokenizer.Vocabulary`)."""
