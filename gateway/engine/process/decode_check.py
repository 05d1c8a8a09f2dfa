"""Can llama.cpp decode with this model on this machine? `python -m gateway.engine.process.decode_check PATH
[--no-extra-buffers]` loads the model, runs the engine's warm-up decode and exits 0; a backend that
faults dies by its signal. Run it in a child process: the fault must not take the caller with it.
Used by the test suite to learn, before any engine test, whether the CPU needs llama.cpp's extra
buffer types off (the gateway's engines find out for themselves in their warm-up).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from gateway.engine.llama_backend import LlamaContext, LlamaModel


def check(path: Path, extra_buffers: bool) -> None:
    model = LlamaModel(path, extra_buffers=extra_buffers)
    ctx = LlamaContext(model, n_ctx_seq=64, n_seq=1, n_batch=16, threads=0)
    ctx.warm_up()
    ctx.close()
    model.close()


def decodes(path: Path, extra_buffers: bool, timeout: float = 120) -> tuple[bool, str]:
    """Run `check` in a child process: (it worked, what it said when it did not)."""
    command = [sys.executable, "-m", "gateway.engine.process.decode_check", str(path)]
    if not extra_buffers:
        command.append("--no-extra-buffers")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"the decode check did not finish in {timeout:g} s"
    tail = " | ".join(done.stderr.strip().splitlines()[-6:])
    return done.returncode == 0, f"exit status {done.returncode}: {tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--no-extra-buffers", action="store_true")
    args = parser.parse_args()
    check(args.path, extra_buffers=not args.no_extra_buffers)


if __name__ == "__main__":
    main()
