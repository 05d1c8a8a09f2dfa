"""A small chat client: keeps the history, names the conversation so the gateway reuses its KV cache.

    python clients/chat.py [--base-url http://127.0.0.1:8000/v1] [--model default]
"""

import argparse
import uuid

from openai import OpenAI


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="default")
    parser.add_argument("--api-key", default="local")
    args = parser.parse_args()
    client = OpenAI(base_url=args.base_url, api_key=args.api_key)
    conversation = str(uuid.uuid4())
    history = []
    while True:
        try:
            text = input("> ")
        except EOFError:
            break
        history.append({"role": "user", "content": text})
        stream = client.chat.completions.create(
            model=args.model, messages=history, stream=True, prompt_cache_key=conversation,
            stream_options={"include_usage": True})
        reply = ""
        for chunk in stream:
            if chunk.choices:
                piece = chunk.choices[0].delta.content or ""
                reply += piece
                print(piece, end="", flush=True)
            elif chunk.usage:
                cached = chunk.usage.prompt_tokens_details.cached_tokens
                print(f"\n[{chunk.usage.prompt_tokens} prompt tokens, {cached} from cache]")
        history.append({"role": "assistant", "content": reply})


if __name__ == "__main__":
    main()
