#!/usr/bin/env bash
# One command: set everything up and run every check — lint, format, types, tests.
# .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/system-deps.sh  # chromium for the browser tests, when missing

echo "==> ruff check"
.venv/bin/ruff check bot tests scripts
echo "==> ruff format --check"
.venv/bin/ruff format --check bot tests scripts
echo "==> mypy (strict) on bot/"
.venv/bin/mypy bot
echo "==> pytest"
.venv/bin/python -m pytest tests "$@"
