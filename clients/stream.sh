#!/usr/bin/env sh
# Stream a chat completion with curl.
#   clients/stream.sh "your question" [base_url]
# GATEWAY_API_KEY (or OPENAI_API_KEY) is sent as the bearer key when set; SESSION names the
# conversation (X-Session-ID); MODEL picks the model (default: "default").
set -eu
BASE=${2:-http://127.0.0.1:8000/v1}
KEY=${GATEWAY_API_KEY:-${OPENAI_API_KEY:-}}
# the question goes into JSON through a real encoder: quotes, backslashes and newlines are safe
BODY=$(python3 -c 'import json, sys; print(json.dumps({"model": sys.argv[2], "stream": True,
    "messages": [{"role": "user", "content": sys.argv[1]}]}))' "$1" "${MODEL:-default}")
if [ -n "$KEY" ]; then
  exec curl -sN "$BASE/chat/completions" -H 'Content-Type: application/json' \
    -H "Authorization: Bearer $KEY" -H "X-Session-ID: ${SESSION:-curl-demo}" -d "$BODY"
fi
exec curl -sN "$BASE/chat/completions" -H 'Content-Type: application/json' \
  -H "X-Session-ID: ${SESSION:-curl-demo}" -d "$BODY"
