"""Placement: which GPUs each model replica runs on, decided before anything loads.

`plan` is the pure packing of footprints onto GPUs; `footprint` reads a model's needs from its GGUF
header; `gpus` finds the GPUs (NVML, or the config's); `planner` ties them to a config, placing the
models whose files are here at the start and the others when they arrive.
"""
