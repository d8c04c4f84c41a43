"""Which instruction set computed the stored outputs, and which other one the tests validate them under.

PyTorch dispatches its CPU kernels by instruction set (``torch.backends.cpu.get_cpu_capability()``: ``AVX512``,
``AVX2`` or ``DEFAULT`` on x86-64, ``DEFAULT`` or ``SVE256`` on ARM), and a trained result depends on that choice.
``tools.nbexec`` records, in each notebook's metadata, the capability its outputs were computed under. CI then
re-runs the notebooks under a capability that **none** of them was stored under, so that every CI run proves the
stored results hold on another instruction set, whatever machine stored them:

* stored under AVX-512 (on an AVX-512 machine or elsewhere): validate under AVX2;
* stored under AVX2 on an AVX2 machine: validate under ATen's portable ``default`` kernels;
* in general: the most capable set this machine runs that no notebook was stored under.

Notebooks re-stored on different machines record different capabilities. With ``ANNOTATED_VALIDATE_ISA=1`` (what
``.ci/run`` sets) the choice is made per notebook instead: the conftest starts each notebook's kernel under the most
capable set this machine runs that *that* notebook was not stored under (``notebook_validation_env``), so one
notebook stored under AVX2 does not push every other one onto the slow portable kernels.

Usage::

    python -m tools.isa stored           # each chapter's recorded capability
    python -m tools.isa validation-env   # e.g. ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2
    python -m tools.isa plan             # per notebook: stored under, validated under (ANNOTATED_VALIDATE_ISA=1)
    env $(python -m tools.isa validation-env) bash tools/test.sh
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from tools.nbexport import chapter_notebooks


METADATA_KEY = "annotated"
RECORD_KEY = "outputs_computed_under"

# What a kernel needs in its environment to run under a capability: ATen's own switch, and oneMKL's for the BLAS
# calls (ATen's ``default`` leaves oneMKL at its own choice, as ``ATEN_CPU_CAPABILITY=default`` alone does).
CAPABILITY_ENV: dict[str, dict[str, str]] = {
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "MKL_ENABLE_INSTRUCTIONS": "AVX512"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default"},
}
# From the most capable down; a machine runs its own capability and every one after it.
X86_CAPABILITIES = ("avx512", "avx2", "default")
# Every variable some capability sets, so that a run can clear them all before setting its own.
ISA_VARIABLES = tuple(sorted({name for env in CAPABILITY_ENV.values() for name in env}))


def torch_capability(env: Mapping[str, str] | None = None) -> str:
    """The capability PyTorch dispatches to in a fresh process with ``env`` (default: this process's), lower case."""
    probe = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env=dict(os.environ if env is None else env))
    return ran.stdout.strip().lower()


def native_capability() -> str:
    """The capability PyTorch picks on this machine when nothing in the environment forces one."""
    env = {key: value for key, value in os.environ.items() if key not in ISA_VARIABLES}
    return torch_capability(env)


def runnable_capabilities(native: str) -> list[str]:
    """The capabilities a machine whose best is ``native`` can run, most capable first."""
    if native in X86_CAPABILITIES:
        return list(X86_CAPABILITIES[X86_CAPABILITIES.index(native):])
    return [native, "default"] if native != "default" else ["default"]


def validation_capability(native: str, stored: Iterable[str]) -> str:
    """The most capable set this machine runs that differs from every capability the outputs were stored under."""
    stored = set(stored)
    for capability in runnable_capabilities(native):
        if capability not in stored:
            return capability
    raise ValueError(
        f"every capability this machine runs ({', '.join(runnable_capabilities(native))}) was used to store some "
        f"notebook (stored under: {', '.join(sorted(stored))}); re-store them on one capability"
    )


def validation_env(capability: str) -> dict[str, str]:
    """The environment that makes kernels run under ``capability``."""
    if capability not in CAPABILITY_ENV:
        raise ValueError(f"no environment known for capability {capability!r}; known: {', '.join(CAPABILITY_ENV)}")
    return dict(CAPABILITY_ENV[capability])


def execution_record(capability: str) -> dict[str, str]:
    """What ``tools.nbexec`` stores in a notebook's metadata about the machine that computed its outputs."""
    import torch

    return {"cpu_capability": capability, "machine": platform.machine(), "torch": torch.__version__}


def stored_capability(notebook: Mapping, name: str = "notebook") -> str:
    """The capability a notebook's outputs were computed under, from its metadata."""
    record = notebook.get("metadata", {}).get(METADATA_KEY, {}).get(RECORD_KEY, {})
    capability = record.get("cpu_capability")
    if not isinstance(capability, str) or not capability:
        raise ValueError(
            f"{name} does not record the CPU capability its outputs were computed under "
            f"(metadata.{METADATA_KEY}.{RECORD_KEY}.cpu_capability); re-store it with `python -m tools.nbexec {name}`"
        )
    return capability


def stored_capabilities(paths: Iterable[Path]) -> dict[Path, str]:
    return {path: stored_capability(json.loads(path.read_text(encoding="utf-8")), str(path)) for path in paths}


PER_NOTEBOOK_SWITCH = "ANNOTATED_VALIDATE_ISA"


def notebook_validation_env(path: Path, native: str) -> dict[str, str]:
    """The environment a notebook's kernel is validated under: a capability it was not stored under."""
    stored = stored_capability(json.loads(Path(path).read_text(encoding="utf-8")), str(path))
    return validation_env(validation_capability(native, [stored]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("stored", "validation-env", "plan"))
    args = parser.parse_args(argv)
    stored = stored_capabilities(chapter_notebooks())
    if args.command == "stored":
        for path, capability in stored.items():
            print(f"{path}: {capability}")
        return 0
    native = native_capability()
    if args.command == "plan":
        for path, capability in stored.items():
            print(f"{path}: stored under {capability}, validated under {validation_capability(native, [capability])}")
        return 0
    chosen = validation_capability(native, stored.values())
    print(" ".join(f"{key}={value}" for key, value in validation_env(chosen).items()))
    print(f"stored under {', '.join(sorted(set(stored.values())))}; this machine runs up to {native}; "
          f"validating under {chosen}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
