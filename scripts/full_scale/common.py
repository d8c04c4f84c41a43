"""What every chapter's full-scale command shares: its command line and the results JSON it writes.

Each chapter has one module here, ``scripts/full_scale/<chapter>.py``, run as
``python -m scripts.full_scale.<chapter>`` (or ``accelerate launch -m scripts.full_scale.<chapter>`` on several
GPUs). It runs the chapter's ``ANNOTATED_SCALE=full`` code path end to end: the paper's data, model size and
hyperparameters, progress bars, safetensors checkpoints under ``--out`` that a second call resumes from, and at the
end ``results.json`` (metric, steps, wall time, hardware) in ``--out`` and, unless ``--smoke``, in
``results/full_scale/<chapter>.json`` where the chapter shows it.

``--smoke`` is for CI: the same code path for one or two optimisation steps and one evaluation, on whatever the
loaders return (the tests hand them local stand-ins in the real formats, so only the download is replaced).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO_ROOT / "results" / "full_scale"


def parser(chapter: str, description: str) -> argparse.ArgumentParser:
    """The command line every chapter's full-scale command accepts (chapters may add their own options)."""
    result = argparse.ArgumentParser(prog=f"python -m scripts.full_scale.{chapter}", description=description)
    result.add_argument("--out", type=Path, default=Path("checkpoints") / "full_scale" / chapter,
                        help="checkpoints and results.json go here; a second call resumes from the latest checkpoint")
    result.add_argument("--smoke", action="store_true",
                        help="CI: the full-scale code path for one or two steps and one evaluation")
    return result


def hardware() -> dict[str, Any]:
    """What the run ran on, for the results JSON."""
    description: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
    }
    return description


class Stopwatch:
    """Wall time since creation, in seconds."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start


def first_pairs(data: dict[str, tuple], num_train: int, num_test: int) -> dict[str, tuple]:
    """The first ``num_train`` training and ``num_test`` test pairs of a ``{"train": columns, "test": columns}`` split."""
    return {"train": tuple(column[:num_train] for column in data["train"]),
            "test": tuple(column[:num_test] for column in data["test"])}


def is_main_process() -> bool:
    """False on every process but the first of an ``accelerate launch`` (only the first writes results)."""
    from accelerate import PartialState

    return PartialState().is_main_process


def write_results(chapter: str, out: Path, *, metrics: dict[str, float], steps: int, wall_seconds: float,
                  settings: dict[str, Any], smoke: bool) -> dict[str, Any]:
    """Write ``results.json`` to ``out`` (and to ``results/full_scale/<chapter>.json`` for a real run)."""
    if not metrics:
        raise ValueError("a full-scale run must report at least one metric")
    record = {
        "chapter": chapter,
        "command": f"python -m scripts.full_scale.{chapter}" + (" --smoke" if smoke else ""),
        "smoke": smoke,
        "metrics": {name: float(value) for name, value in metrics.items()},
        "steps": int(steps),
        "wall_seconds": round(float(wall_seconds), 1),
        "hardware": hardware(),
        "settings": settings,
    }
    text = json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(text, encoding="utf-8")
    if not smoke:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / f"{chapter}.json").write_text(text, encoding="utf-8")
    return record
