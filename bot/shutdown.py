"""Graceful shutdown (SIGTERM, SIGINT): stop taking work, finish what was taken, then exit.

From the signal on, the process drains:

- nothing new is taken: webhooks, the REST POST and widget uploads answer 503 with
  ``Retry-After`` (bot/app.py), so the platform delivers again, to another process behind the
  load balancer or to this one restarted; ``/healthz`` answers 503 ``"draining"`` so the load
  balancer moves on; widget sockets are closed with 1012 (service restart) and their pages
  reconnect; long polling stops fetching (``Channel.stop_intake``);
- inbounds already accepted are answered (their turns run to the end), and the outbox sends
  what is queued;
- at ``BOT_SHUTDOWN_TIMEOUT`` at the latest the services close. What is not done by then is
  still in the store (inbox and outbox rows) and is picked up at the next start; the log says
  how much (counts only).

A send cut off at the deadline is the one uncertain case: the platform may have taken it
without our record of it, so it may go out again after the restart (counted in the log).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # bot.services imports the ingress, which imports this module
    from bot.services import Services

log = logging.getLogger(__name__)

# How long each channel gets to stop its intake (close sockets, cancel a poll); a platform that
# does not answer a close must not eat the turns' time.
STOP_INTAKE_SECONDS = 2.0
RETRY_AFTER_SECONDS = 5  # what a refused webhook is told: soon, another process or this one back


class Draining(Exception):
    """The process is shutting down: nothing was recorded, the sender should try again (another
    process behind the load balancer, or this one after its restart)."""


@dataclass(frozen=True, slots=True)
class DrainResult:
    finished: bool  # every accepted inbound answered and every queued reply sent
    seconds: float
    inbound_left: int  # accepted but not answered: answered at the next start
    outbound_left: int  # queued replies not sent: sent at the next start
    sends_cut: int  # sends in flight at the deadline: the platform may have taken them


async def drain(services: Services, deadline_seconds: float) -> DrainResult:
    """Stop intake, then wait (at most ``deadline_seconds`` from now) for the accepted inbounds
    to be answered and the outbox to be empty. Closing the services is the caller's part."""
    started = time.monotonic()
    services.ingress.stop_taking()
    log.info("shutting down: taking no new messages, finishing within %.0f s", deadline_seconds)
    finished = False
    try:
        async with asyncio.timeout(deadline_seconds):
            for channel in services.channels.values():
                try:
                    async with asyncio.timeout(STOP_INTAKE_SECONDS):
                        await channel.stop_intake()
                except TimeoutError:
                    log.warning("shutting down: %s did not stop its intake in time", channel.name)
                except Exception:
                    log.exception("shutting down: %s failed to stop its intake", channel.name)
            # Turns first: each one finished may queue replies the outbox then sends.
            await services.ingress.idle()
            await services.outbox.drain()
            finished = True
    except TimeoutError:
        pass
    sends_cut = services.outbox.in_flight
    inbound_left = outbound_left = -1  # unknown when the store cannot say
    with contextlib.suppress(Exception):
        inbound_left = len(await services.store.inbox_pending())
    with contextlib.suppress(Exception):
        outbound_left = len(await services.store.outbox_pending(limit=1_000_000))
    result = DrainResult(
        finished, time.monotonic() - started, inbound_left, outbound_left, sends_cut
    )
    if finished:
        log.info(
            "shutting down: everything accepted was answered and sent (%.1f s)", result.seconds
        )
    else:
        log.warning(
            "shutting down after %.1f s (BOT_SHUTDOWN_TIMEOUT): %d accepted message(s) not yet "
            "answered and %d reply(ies) not yet sent stay in the store for the next start; "
            "of these, %d send(s) cut off in flight may reach the customer twice",
            result.seconds, inbound_left, outbound_left, sends_cut,
        )  # fmt: skip
    return result
