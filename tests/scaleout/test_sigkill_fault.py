"""Several gateway processes on one Redis; one is killed with SIGKILL at a random moment under
load and started again. Every acknowledged message must be answered, once and in order; a reply
may reach the customer twice only when it was in flight at the kill and the gateway counted it.
The longer randomised version is ``scripts/fault_trials.py`` (its figures: docs/deploy.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.redis_server import needs_redis
from tests.scaleout.fault_harness import TrialPlan, run_trial, summary

pytestmark = needs_redis


@pytest.mark.parametrize("seed", [11])
async def test_a_process_killed_under_load_loses_nothing_and_keeps_order(
    redis_url: str, tmp_path: Path, seed: int
) -> None:
    plan = TrialPlan(processes=3, chats=100, per_chat=25, kill_after=4.0, seed=seed)
    result = await run_trial(redis_url, tmp_path, plan)
    print("fault trial:", summary([result]), *result.notes[:20], sep="\n  ")

    assert result.acknowledged >= plan.chats * plan.per_chat
    assert result.lost == 0, result.notes[:20]
    assert result.order_violations == 0, result.notes[:20]
    # The one duplicate the platform leaves room for: a send in flight at the kill, at most one
    # per chat, and each counted by the process that sent it again.
    assert result.max_duplicates_in_a_chat <= result.kills
    assert result.duplicates <= result.uncertain_counted
