"""StoreHealth after an outage: a call that reaches the store clears the operations that failed
only because it could not be reached, and not those it refused (full, out of memory)."""

from __future__ import annotations

from bot.metrics import Metrics
from bot.storage.health import StoreHealth


def test_a_call_that_gets_through_clears_what_failed_to_reach_the_store() -> None:
    metrics = Metrics()
    health = StoreHealth(clock=lambda: 100.0)  # a frozen clock: nothing is forgotten by time
    health.attach(metrics)
    health.failed("outbox_pending", "ConnectionError", unreachable=True)  # a sweep, rarely run
    health.failed("ping", "ConnectionError", unreachable=True)
    assert health.failing
    assert "isp_bot_store_failing 1" in metrics.render()

    health.succeeded("ping")
    health.reached()
    assert not health.failing
    assert "isp_bot_store_failing 0" in metrics.render()


def test_a_refusal_stays_until_that_operation_works() -> None:
    health = StoreHealth(clock=lambda: 100.0)
    health.failed("commit_turn", "OutOfMemoryError")  # reached, and refused: reads still work
    health.succeeded("ping")
    health.reached()
    assert health.failing
    health.succeeded("commit_turn")
    assert not health.failing
