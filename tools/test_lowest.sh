#!/usr/bin/env bash
# The unit tests (tests/, not the notebooks) against the LOWEST versions that pyproject.toml's ranges allow: every
# direct dependency of `dependencies` and of the `[book]` extra installed at its lower bound, in a venv of its own
# (.venv-lowest/, so the pinned .venv of tools/test.sh is left alone). It proves the lower bounds are true, not only
# the pinned set of requirements.txt. Extra arguments go to pytest, e.g. `bash tools/test_lowest.sh -k reformer`.
#
# Not tested here: torch's lower bound. torch is installed exactly at 2.13.0, the CPU build the project's machines
# carry (any looser requirement pulls a multi-GB CUDA build), so `torch>=2.1` is a claim this script cannot check.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${ANNOTATED_LOWEST_VENV:-.venv-lowest}"
PYTHON="${PYTHON:-python3}"
# uv resolves; pinned so that the same inputs give the same environment.
UV_VERSION=0.13.9
# Needed by tests/ but declared by neither list of pyproject.toml (test tools, and the reference implementations
# tests/test_rl_deep.py compares with): installed at requirements.txt's pins, not at lowest versions.
TEST_ONLY=(pytest nbval nbformat nbclient ipykernel stable-baselines3 box2d opencv-python-headless)

pip_install() {
  # pip's own failure fails the script (pipefail); only its noise about absent local package mirrors is dropped.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }
}

# Rebuilt from scratch whenever its inputs change: installing over an old venv would keep versions above the new
# lower bounds (an installer leaves a package alone when it already satisfies the range).
stamp="$VENV/.installed-$(cat pyproject.toml requirements.txt requirements-nodeps.txt tools/test_lowest.sh \
  | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  rm -rf "$VENV"
  echo "creating $VENV with $("$PYTHON" --version) (a few minutes)"
  "$PYTHON" -m venv "$VENV"
  pip_install --upgrade pip
  pip_install "uv==$UV_VERSION"
  # torch alone and first, exactly this version, with pip as tools/setup_env.sh does: pip's configuration on the
  # project's machines (find-links) is what yields the CPU build.
  pip_install torch==2.13.0

  # What uv is asked for. Every direct dependency whose range has a lower bound is pinned to it (`numpy>=1.24` ->
  # `numpy==1.24`): uv's `--resolution lowest-direct` alone aims at that but does not guarantee it (here it settled
  # on numpy 2.0.2 although 1.24 resolves, because it had already fixed transitive dependencies at their highest).
  # A bound no release satisfies on this Python, or that conflicts with another bound, fails the install, loudly.
  # Left out: torch (fixed above; constrained to the installed build so that uv keeps it) and the packages of
  # requirements-nodeps.txt (installed without their dependencies below, as in .venv).
  "$VENV/bin/python" - "$VENV" "${TEST_ONLY[@]}" <<'PY'
import importlib.metadata, re, sys, tomllib
from pathlib import Path

venv, test_only = Path(sys.argv[1]), set(sys.argv[2:])
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
nodeps = {norm(re.split(r"[=<>!~ ;\[]", l, 1)[0]) for l in Path("requirements-nodeps.txt").read_text().splitlines()
          if l.strip() and not l.startswith("#")}
direct, seen = [], set()
for spec in project["dependencies"] + project["optional-dependencies"]["book"]:
    name, rest = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)", spec).groups()
    if norm(name) in seen or norm(name) in nodeps or norm(name) == "torch":
        continue
    seen.add(norm(name))
    bound = re.search(r"(?:>=|~=|===?)\s*([^,;\s]+)", rest)
    direct.append(f"{name}=={bound.group(1)}" if bound else spec)
pins = {norm(re.split(r"==", l, 1)[0]): l.strip() for l in Path("requirements.txt").read_text().splitlines()
        if "==" in l and not l.startswith("#")}
missing = sorted(test_only - pins.keys())
if missing:
    sys.exit(f"requirements.txt pins none of {missing}")
(venv / "lowest.in").write_text("\n".join(direct + [pins[n] for n in sorted(test_only)]) + "\n")
(venv / "constraints.txt").write_text(f"torch=={importlib.metadata.version('torch')}\n")
PY
  # uv does not read pip's configuration: hand it the same indexes and find-links. unsafe-best-match lets it choose
  # among all of them, as pip does, instead of taking every package from the first index that has any release of it
  # (a local mirror holding only numpy 2.x would otherwise hide numpy 1.24 from it).
  pip_setting() {  # pip's environment variable wins over its configuration files, as in pip itself
    local var="PIP_$(echo "$1" | tr a-z- A-Z_)"
    echo "${!var:-$("$VENV/bin/python" -m pip config get "global.$1" 2>/dev/null || true)}"
  }
  uv_args=()
  for url in $(pip_setting index-url); do uv_args+=(--index-url "$url"); done
  for url in $(pip_setting extra-index-url); do uv_args+=(--extra-index-url "$url"); done
  for links in $(pip_setting find-links); do uv_args+=(--find-links "$links"); done
  echo "resolving at the lower bounds with uv $UV_VERSION"
  "$VENV/bin/uv" pip install --python "$VENV/bin/python" --quiet --resolution lowest-direct \
    --index-strategy unsafe-best-match "${uv_args[@]}" -r "$VENV/lowest.in" -c "$VENV/constraints.txt"
  pip_install --no-deps -r requirements-nodeps.txt
  pip_install --no-deps -e .
  "$VENV/bin/python" -m pip freeze --exclude-editable > "$VENV/resolved.txt"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi

# The versions under test, beside the ranges they were taken from (the full set is in $VENV/resolved.txt).
"$VENV/bin/python" - <<'PY'
import importlib.metadata, re, tomllib
from pathlib import Path

project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
rows, seen = [], set()
for group, specs in (("dependencies", project["dependencies"]), ("[book]", project["optional-dependencies"]["book"])):
    for spec in specs:
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec).group(1)
        if name.lower() not in seen:
            seen.add(name.lower())
            rows.append((group, spec.split(";")[0].strip(), importlib.metadata.version(name)))
print(f"{'list':<13} {'range in pyproject.toml':<28} installed")
for row in rows:
    print(f"{row[0]:<13} {row[1]:<28} {row[2]}")
PY
echo "python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())')"

export PATH="$PWD/$VENV/bin:$PATH"
started=$(date +%s)
python -m pytest tests/ "$@"
echo "unit tests passed at the lowest versions of pyproject.toml's ranges in $(( $(date +%s) - started )) s"
