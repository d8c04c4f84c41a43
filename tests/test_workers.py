"""The pytest-xdist workers of ``tools/test.sh`` share the cores instead of each taking all of them (conftest.py)."""

from __future__ import annotations

import os

import pytest
import torch


def test_each_worker_and_its_kernels_use_their_share_of_the_cores():
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2:
        pytest.skip("runs only under two or more pytest-xdist workers (tools/test.sh)")
    share = max(1, (os.cpu_count() or 1) // workers)
    assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == str(share)
    assert torch.get_num_threads() == share
