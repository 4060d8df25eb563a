"""Hypothesis profiles for the fuzz tests. ``ci`` (the default) is bounded and derandomized, so
the normal test command is repeatable and takes a couple of minutes at most; ``long`` (selected
with ``FUZZ_PROFILE=long``, see scripts/fuzz-long.sh and docs/fuzzing.md) runs ``FUZZ_MULTIPLIER``
(default 50) times the examples from fresh random seeds and keeps the failures it finds under
``var/hypothesis/`` (git-ignored), replaying them first on the next run."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE = os.environ.get("FUZZ_PROFILE", "ci")
MULTIPLIER = int(os.environ.get("FUZZ_MULTIPLIER", "50")) if PROFILE == "long" else 1

# Fixtures built once per test (a running gateway) serve every example of that test; each
# example compares the state before and after itself, so sharing them is what we want. Payloads
# of a few tens of kilobytes are the point, not a generation problem.
_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    report_multiple_bugs=False,  # the first failure, shrunk, is what a CI log needs
    suppress_health_check=_HEALTH,
)
settings.register_profile(
    "long",
    max_examples=100 * MULTIPLIER,
    deadline=None,
    database=DirectoryBasedExampleDatabase(
        Path(__file__).resolve().parents[2] / "var" / "hypothesis"
    ),
    print_blob=True,
    suppress_health_check=_HEALTH,
)
settings.load_profile(PROFILE)


def examples(ci: int) -> int:
    """``ci`` examples in the normal run, ``FUZZ_MULTIPLIER`` times as many in the long one."""
    return ci * MULTIPLIER
