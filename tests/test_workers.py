"""The pytest-xdist workers of ``tools/test.sh`` share the cores instead of each taking all of them (conftest.py)."""

from __future__ import annotations

import os

import pytest

from tools.kernel_env import KERNEL_ENV, apply_kernel_env, kernel_threads


def test_a_kernel_started_by_a_worker_gets_the_workers_share_of_the_cores():
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2:
        pytest.skip("runs only under two or more pytest-xdist workers (tools/test.sh)")
    apply_kernel_env()  # what the notebook runs and the executor tests do before a kernel starts
    share = max(1, (os.cpu_count() or 1) // workers)
    assert kernel_threads() == share
    assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == str(share)


def test_outside_xdist_a_kernel_gets_the_stored_outputs_thread_count(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert kernel_threads() == int(KERNEL_ENV["OMP_NUM_THREADS"]) == 2
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "1")
    assert kernel_threads() == 2
