#!/usr/bin/env bash
# One command: set everything up and run the gateway on embedded defaults
# (SQLite under ./var/, the bundled demo catalog). Extra arguments go to `python -m bot run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m bot run "$@"
