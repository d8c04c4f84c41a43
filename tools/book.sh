#!/usr/bin/env bash
# Build the website from the stored notebook outputs (nothing is re-executed), warnings treated as errors.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
jupyter-book build . --builder html --warningiserror --keep-going
echo "book built: $PWD/_build/html/index.html"
