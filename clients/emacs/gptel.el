;;; gptel.el --- gptel on the gateway: put in your init file.
;; Chat through the OpenAI-compatible route, streamed.
(require 'gptel)
(setq gptel-backend
      (gptel-make-openai "Gateway"
        :host "127.0.0.1:8000"
        :protocol "http"
        :endpoint "/v1/chat/completions"
        :stream t
        :key "none"                    ; with [server] api_keys set: your key
        :models '(qwen2.5-coder-0.5b)))
(setq gptel-model 'qwen2.5-coder-0.5b)

;; Libraries written for OpenAI's gpt-3.5-turbo need only the base URL: configs/default.toml
;; gives the chat model that name as an alias, e.g.
;;   (setq chatgpt-shell-api-url-base "http://127.0.0.1:8000")
;;   (setq org-ai-openai-chat-endpoint "http://127.0.0.1:8000/v1/chat/completions")
