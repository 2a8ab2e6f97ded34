#!/usr/bin/env python3
"""Run every notebook under strict nbval the way other machines would: other CPU kernels, other thread counts.

A stored output is right only if it is right on every CPU a learner may have (Intel with AVX-512, AMD
Zen 4, Apple Silicon, ...) and with any number of threads, because floating-point sums round differently
there. This machine can imitate some of that by narrowing PyTorch's, oneDNN's and MKL's kernels and by
changing the thread count:

    python tests/portability.py            # all three variants, one after the other
    python tests/portability.py avx2-1     # (b) AVX2 kernels, 1 thread: the one CI runs

Variants: ``default`` (this machine as it is), ``avx2-1`` (AVX2 kernels, 1 thread), ``threads-4``
(4 threads). Each runs with an empty ``GPTBOOK_CACHE``. Extra arguments go to pytest. Exit code: 0 when
every variant passed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
VARIANTS = {
    "default": {},
    "avx2-1": {**AVX2, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    "threads-4": {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"},
}


def run_variant(name: str, pytest_args: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="gptbook-cache-") as cache:
        env = {**os.environ, **VARIANTS[name], "GPTBOOK_CACHE": cache,
               "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # the project's own plugin only, as setup_course.py test
        print(f"[portability] {name}: {' '.join(f'{k}={v}' for k, v in VARIANTS[name].items()) or 'as is'}",
              flush=True)
        command = [sys.executable, "-m", "pytest", "notebooks", "-p", "nbval", "-p", "no:cacheprovider", *pytest_args]
        return subprocess.run(command, cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    names = [a for a in argv if a in VARIANTS] or list(VARIANTS)
    rest = [a for a in argv if a not in VARIANTS]
    failed = [name for name in names if run_variant(name, rest) != 0]
    print(f"[portability] passed: {', '.join(n for n in names if n not in failed) or 'none'}"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
