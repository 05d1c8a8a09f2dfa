"""llama-cpp-python's server as a benchmark peer, on machines where llama.cpp's extra CPU buffer
types fault (AMX inside a VM): `python -m bench.llama_cpp_python_peer --no-extra-buffers ARGS...`
starts `llama_cpp.server` with them off, as the gateway's engines run there. llama-cpp-python has
no setting for it, so its model parameters are changed at their one source before it loads.
Benchmark-only: the gateway never imports this.
"""

from __future__ import annotations

import runpy
import sys

import llama_cpp.llama_cpp as bindings


def main() -> None:
    args = sys.argv[1:]
    if "--no-extra-buffers" in args:
        args.remove("--no-extra-buffers")
        default_params = bindings.llama_model_default_params

        def without_extra_buffers():  # type: ignore[no-untyped-def]
            params = default_params()
            params.use_extra_bufts = False
            return params

        bindings.llama_model_default_params = without_extra_buffers
    sys.argv = ["llama_cpp.server", *args]
    runpy.run_module("llama_cpp.server", run_name="__main__")


if __name__ == "__main__":
    main()
