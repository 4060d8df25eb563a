#!/usr/bin/env bash
# The long fuzzing run (docs/fuzzing.md): the same property and API tests as the normal test
# command, with the "long" hypothesis profile — 50× the examples, fresh random seeds each run,
# failures remembered in var/hypothesis/ and replayed first next time. Takes about an hour on two
# cores. Extra arguments go to pytest, e.g.:
#   scripts/fuzz-long.sh -k webhook                 # only the messenger webhooks
#   scripts/fuzz-long.sh --hypothesis-seed=12345    # repeat one run exactly
#   FUZZ_MULTIPLIER=200 scripts/fuzz-long.sh        # longer still
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export FUZZ_PROFILE=long
exec .venv/bin/python -m pytest tests/fuzz --hypothesis-show-statistics -x "$@"
