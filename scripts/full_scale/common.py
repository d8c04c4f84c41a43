"""What every chapter's full-scale command shares: its command line and the results JSON it writes.

Each chapter has one module here, ``scripts/full_scale/<chapter>.py``, run as
``python -m scripts.full_scale.<chapter>`` (or ``accelerate launch -m scripts.full_scale.<chapter>`` on several
GPUs). It runs the chapter's ``ANNOTATED_SCALE=full`` code path end to end: the paper's data, model size and
hyperparameters, progress bars, safetensors checkpoints under ``--out`` that a second call resumes from, and at the
end ``results.json`` (metric, steps, wall time, hardware) in ``--out`` and, unless ``--smoke``, in
``results/full_scale/<chapter>.json`` where the chapter shows it.

``--smoke`` is for CI: the same code path for one or two optimisation steps and one evaluation, on whatever the
loaders return (the tests hand them local stand-ins in the real formats, so only the download is replaced).

A download that cannot be made (no network, or ``HF_HUB_OFFLINE=1`` without a cached copy) ends a command with one
line on stderr that names what it tried to reach and what to do, and exit status 1: each command runs its ``main``
through ``run`` and wraps each download in ``reaching``. Any other error keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import time
import urllib.error
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

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


HUB_CACHE_REMEDY = ("run once with network to fill the Hugging Face cache, or copy a cache that holds it to HF_HOME "
                    "and set HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1")
CHECKPOINT_REMEDY = f"pass --checkpoint a local folder in the hub's layout, or {HUB_CACHE_REMEDY}"


class Unreachable(RuntimeError):
    """A download a command needs could not be made; the message says what was tried and what to do instead."""


def hub_dataset(name: str, config: str | None = None) -> str:
    """How a message names a data set on the Hugging Face hub."""
    return f"the data set {name!r}" + (f" (config {config!r})" if config else "") + " on the Hugging Face hub"


def hub_checkpoint(checkpoint: str) -> str:
    """How a message names a checkpoint on the Hugging Face hub."""
    return f"the checkpoint {checkpoint!r} on the Hugging Face hub"


def _network_error_types() -> tuple[type[BaseException], ...]:
    """Errors that mean "could not get there": the builtins and those of the download libraries that are installed."""
    types: list[type[BaseException]] = [ConnectionError, TimeoutError, socket.gaierror, urllib.error.URLError]
    try:  # transformers wraps this one (not found in the cache, hub unreachable or offline) in a plain OSError
        from huggingface_hub.errors import LocalEntryNotFoundError

        types.append(LocalEntryNotFoundError)
    except ImportError:
        pass
    try:
        import requests

        types += [requests.exceptions.ConnectionError, requests.exceptions.Timeout]
    except ImportError:
        pass
    return tuple(types)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions it was raised from or while handling, outermost first."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _why_unreachable(error: BaseException, hub: bool) -> str | None:
    """Why ``error`` means a download failed (one line), or ``None`` if it means something else.

    Only a network error, or an ``OSError`` raised from one (transformers' wrapper), counts: a ``ValueError`` that
    merely happened after a failed look-up is a different problem and keeps its traceback. The reason given is the
    offline switch for the hub when one is set (the libraries then never try the network), else the innermost
    network error (a DNS failure, a refused connection, a timeout).
    """
    if not isinstance(error, OSError):
        return None
    network = [link for link in _chain(error) if isinstance(link, _network_error_types())]
    if not network:
        return None
    from annotated.utils import offline_requested

    offline = offline_requested()
    if hub and offline is not None:
        return f"{offline} is set and HF_HOME={os.environ.get('HF_HOME', '~/.cache/huggingface')} holds no copy"
    innermost = network[-1]
    reason = innermost.reason if isinstance(innermost, urllib.error.URLError) else innermost
    text = " ".join(str(reason).split()) or "no message"  # one line, whatever the library put in its message
    return f"{type(innermost).__name__}: {text[:160]}"


def require_checkpoint(checkpoint: str) -> None:
    """Fetch ``checkpoint``'s config (a few kB) before anything long, so a checkpoint that cannot be reached fails in
    seconds rather than after the data set's download; the chapter's code then reads it from the cache."""
    import transformers

    with reaching(hub_checkpoint(checkpoint), CHECKPOINT_REMEDY):
        transformers.AutoConfig.from_pretrained(checkpoint)


@contextmanager
def reaching(what: str, remedy: str, hub: bool = True) -> Iterator[None]:
    """Turn a failed download inside the block into ``Unreachable("could not reach <what> (<why>); <remedy>")``.

    ``hub``: the download goes through the Hugging Face libraries, which the offline variables switch off.
    """
    try:
        yield
    except Exception as error:
        why = _why_unreachable(error, hub)
        if why is None:
            raise
        raise Unreachable(f"could not reach {what} ({why}); {remedy}") from error


def run(chapter: str, main: Callable[[], Any]) -> None:
    """Run a command's ``main``; an ``Unreachable`` ends the process with its one-line message and exit status 1."""
    try:
        main()
    except Unreachable as error:
        sys.exit(f"python -m scripts.full_scale.{chapter}: {error}")
