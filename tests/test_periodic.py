"""Background loops stop when told to, even when a cancellation is lost on the way."""

from __future__ import annotations

import asyncio

from bot.periodic import Periodic


async def test_close_ends_a_job_that_swallowed_the_first_cancellation() -> None:
    # What Python 3.11's asyncio.wait_for does to a cancellation arriving as the awaited call
    # completes (redis-py wraps every command in it): the job carries on as if nothing happened.
    started = asyncio.Event()
    swallowed = False

    async def job() -> None:
        nonlocal swallowed
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed = True

    loop = Periodic("test", job, every=60, failure="test job failed")
    loop.start()
    await started.wait()
    closing = asyncio.create_task(loop.close())
    done, _ = await asyncio.wait({closing}, timeout=5)  # a hang is the failure
    assert swallowed
    assert closing in done, "close() waited for ever on a job that swallowed its cancellation"
