" llama.vim: put in your vimrc (or init.vim), before the plugin loads.
" Completions go to /infill on the gateway; its first model answers (the embedded
" Qwen2.5-Coder of configs/default.toml). t_max_prompt_ms is honoured: no first token in time, no suggestion,
" but the prompt computed so far stays cached for the next keystroke.
let g:llama_config = {
    \ 'endpoint':         'http://127.0.0.1:8000/infill',
    \ 'api_key':          '',
    \ 'n_prefix':         256,
    \ 'n_suffix':         64,
    \ 'n_predict':        128,
    \ 't_max_prompt_ms':  500,
    \ 't_max_predict_ms': 1500,
    \ 'ring_n_chunks':    16,
    \ 'ring_chunk_size':  64,
    \ }
