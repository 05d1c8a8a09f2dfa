#!/usr/bin/env sh
# Stream a chat completion with curl. Usage: clients/stream.sh "your question" [base_url]
BASE=${2:-http://127.0.0.1:8000/v1}
curl -N "$BASE/chat/completions" -H 'Content-Type: application/json' \
  -H "X-Session-ID: ${SESSION:-curl-demo}" \
  -d "{\"model\": \"default\", \"stream\": true, \"messages\": [{\"role\": \"user\", \"content\": \"$1\"}]}"
