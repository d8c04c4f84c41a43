"""The environment every notebook kernel runs in, for the executor and for nbval alike.

Stored outputs are only comparable if both runs see the same settings: the embedded (CPU) scale, a fixed hash
seed, a fixed figure size and no progress bars (their text is timing, not a result). The thread count is fixed too
(two), except under several pytest-xdist workers, where each kernel gets its worker's share of the cores: a thread
count changes floating-point sums as an instruction set does, which the stored results' tolerances allow.
"""

from __future__ import annotations

import os
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent

KERNEL_ENV: dict[str, str] = {
    "ANNOTATED_SCALE": "embedded",
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "2",
    "MKL_NUM_THREADS": "2",
    "TQDM_DISABLE": "1",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "MATPLOTLIBRC": str(REPO_ROOT / "tools" / "matplotlibrc"),
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    "CUDA_VISIBLE_DEVICES": "",
}


def kernel_threads() -> int:
    """The threads a kernel gets: the stored outputs' two, or, in one of several pytest-xdist workers
    (``tools/test.sh``), that worker's share of the machine's cores, so that the workers' kernels do not oversubscribe
    the cores between them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        return max(1, (os.cpu_count() or 1) // workers)
    return int(KERNEL_ENV["OMP_NUM_THREADS"])


def apply_kernel_env() -> None:
    """Set the kernel environment in this process, so kernels started from it inherit it."""
    os.environ.update(KERNEL_ENV)
    threads = str(kernel_threads())
    os.environ.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
