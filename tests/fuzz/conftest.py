"""Hypothesis profiles for the fuzz tests. ``ci`` (the default) is bounded and derandomized, so
the normal test command is repeatable and takes a couple of minutes at most; ``long`` (selected
with ``FUZZ_PROFILE=long``, see scripts/fuzz-long.sh and docs/fuzzing.md) runs far more examples
from fresh random seeds and keeps its database of failures under .hypothesis/."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Fixtures built once per test (a running gateway) serve every example of that test; each
# example compares the state before and after itself, so sharing them is what we want.
_SHARED_FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]

settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    report_multiple_bugs=False,  # the first failure, shrunk, is what a CI log needs
    suppress_health_check=[*_SHARED_FIXTURES, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[*_SHARED_FIXTURES, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("FUZZ_PROFILE", "ci"))


def examples(ci: int) -> int:
    """``ci`` examples in the normal run, scaled up 50× by the long profile."""
    return ci if os.environ.get("FUZZ_PROFILE", "ci") == "ci" else ci * 50
