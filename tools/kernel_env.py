"""The environment every notebook kernel runs in, for the executor and for nbval alike.

Stored outputs are only comparable if both runs see the same settings: the embedded (CPU) scale, a fixed hash
seed, a fixed thread count, a fixed figure size and no progress bars (their text is timing, not a result).
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


def apply_kernel_env() -> None:
    """Set the kernel environment in this process, so kernels started from it inherit it."""
    os.environ.update(KERNEL_ENV)
