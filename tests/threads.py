"""llama.cpp threads of every model the tests load, in this process or a subprocess.

``FOGGEN_TEST_THREADS``, by default the cores shared out among pytest-xdist's workers (2 cores,
2 workers: 1 each). Two threads per model on a core each worker also needs is the slow case:
llama.cpp's threads meet at a barrier after every operation, and one of them descheduled
stalls both (measured: tests/test_families.py took 10 min with 2 threads, 2 min with 1, on a
busy machine)."""

from __future__ import annotations

import os


def _default() -> int:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, (os.cpu_count() or 1) // max(1, workers))


TEST_THREADS = int(os.environ.get("FOGGEN_TEST_THREADS") or _default())
# torch, OpenMP and BLAS in the tests' processes: as many threads as llama.cpp's (read when torch
# or numpy's BLAS first starts; an explicit setting of the environment wins)
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, str(TEST_THREADS))
