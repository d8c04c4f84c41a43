"""Helpers shared by the benchmark scripts (run them as ``python benchmarks/<name>.py``, which puts this folder on the path)."""

from __future__ import annotations

import time
from typing import Callable

import torch


def time_training(model: torch.nn.Module, step: Callable[[torch.nn.Module], torch.Tensor], steps: int,
                  lr: float = 1e-4, warmup: int = 3) -> float:
    """Seconds per AdamW training step of ``model`` with loss ``step(model)``, averaged after ``warmup`` steps."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for i in range(steps + warmup):
        if i == warmup:
            start = time.perf_counter()
        loss = step(model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps
