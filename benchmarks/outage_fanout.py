"""Reply latency while an outage notice fans out, with and without the outbox's bulk lane.

    .venv/bin/python benchmarks/outage_fanout.py [--customers 300] [--rate 100] [--replies 5]

The real path on 127.0.0.1: a catalog copy with N customers on one street, each with a Telegram
conversation; the fake Bot API of the tests; the Telegram adapter paced at --rate messages a
second. An accident is posted through the outage API, and while its notices drain, customers
who are chatting send messages through the webhook one after another. Reported: the time from
the webhook to the reply arriving at the fake, and how many notices arrived before it, for the
bulk lane and for the baseline (the same notices in the replies' lane, as before the lane) in
the same run. A benchmark, not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bot.outages.notices as outage_notices  # noqa: E402
from bot.app import create_app  # noqa: E402
from bot.catalog.catalog import load_catalog  # noqa: E402
from bot.channels.base import RateLimit  # noqa: E402
from bot.channels.registry import ChannelDeps  # noqa: E402
from bot.channels.telegram import SECRET_HEADER, create  # noqa: E402
from bot.config import DEMO_CATALOG, Settings  # noqa: E402
from bot.services import build_nlu, build_services  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.outages.conftest import (  # noqa: E402
    SECRET,
    STREET,
    TOKEN,
    catalog_with_customers,
    link_chats,
    tg_message,
)

CHATTERS = 900_000


@contextlib.contextmanager
def _replies_lane() -> Iterator[None]:
    yield  # the baseline: notices committed as ordinary replies


async def run(
    *, lane: bool, customers: int, rate: float, replies: int, nlu: Any, work: Path
) -> tuple[list[float], list[int], float]:
    fake = FakeTelegram(token=TOKEN)
    platform = TestServer(fake.app())
    await platform.start_server()
    settings = replace(
        Settings(),
        var_dir=work / "var",
        data_dir=catalog_with_customers(work / "catalog", customers),
        telegram_token=TOKEN,
        telegram_webhook_secret=SECRET,
        telegram_api_base=str(platform.make_url("")).rstrip("/"),
    )
    services = build_services(settings, nlu=nlu)
    channel = create(ChannelDeps(settings, services.ingress, services.store, services.translator))
    assert channel is not None
    channel.rate_limit = RateLimit(per_chat=1000.0, overall=rate)
    services.channels[channel.name] = channel
    client = TestClient(TestServer(create_app(settings, services=services)))
    await client.start_server()
    await services.start()
    original = outage_notices.bulk_delivery
    if not lane:
        outage_notices.bulk_delivery = _replies_lane  # type: ignore[assignment]
    try:
        await link_chats(services, customers)
        started = time.monotonic()
        body = {
            "outage_id": "bench-1", "city_id": "chita", "street": STREET, "services": "internet",
            "kind": "accident", "started_at": "2026-01-01T08:00:00+09:00", "reason": "Кабель",
        }  # fmt: skip
        assert (await client.post("/api/v1/outages", json=body)).status == 201
        assert services.outages is not None
        await services.outages.idle()  # every notice queued: the worst moment to write
        sent_at: dict[str, float] = {}

        async def write(n: int) -> None:
            await asyncio.sleep(n * 0.25)  # one customer every quarter second, while it drains
            chat = str(CHATTERS + n)
            sent_at[chat] = time.monotonic()
            update = tg_message(n + 1, int(chat), "тарифы в Чите")
            resp = await client.post(
                "/webhooks/telegram", json=update, headers={SECRET_HEADER: SECRET}
            )
            assert resp.status == 200

        await asyncio.gather(*(write(n) for n in range(replies)))
        async with asyncio.timeout(customers / rate * 3 + 30):
            await services.ingress.idle()
            await services.outbox.drain()
        # From the fake's log: when each reply arrived, and how many notices arrived between
        # the customer's message and it.
        calls = [c for c in fake.calls if c.method == "sendMessage" and c.ok]
        latencies: list[float] = []
        ahead: list[int] = []
        for chat, at in sent_at.items():
            reply = next(c for c in calls if str(c.params["chat_id"]) == chat)
            latencies.append(reply.at - at)
            ahead.append(
                sum(
                    1
                    for c in calls
                    if at <= c.at < reply.at and int(c.params["chat_id"]) < CHATTERS
                )
            )
        drained = max(c.at for c in calls) - started
        return latencies, ahead, drained
    finally:
        outage_notices.bulk_delivery = original
        await client.close()
        await services.close()
        await platform.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--rate", type=float, default=100.0, help="channel budget, msg/s")
    parser.add_argument("--replies", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    nlu = build_nlu(load_catalog(DEMO_CATALOG), flows_dir=Settings().flows_dir)
    print(
        f"{args.customers} notices at {args.rate:g} msg/s on the fake Telegram; "
        f"{args.replies} customers write, one every 0.25 s, once all are queued"
    )
    print(f"{'':18}{'reply p50':>11}{'reply max':>11}{'notices ahead':>15}{'fan-out done':>14}")
    for lane in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            latencies, ahead, drained = asyncio.run(
                run(
                    lane=lane, customers=args.customers, rate=args.rate, replies=args.replies,
                    nlu=nlu, work=Path(tmp),
                )
            )  # fmt: skip
        name = "bulk lane" if lane else "baseline (no lane)"
        print(
            f"{name:18}{statistics.median(latencies) * 1000:>9.0f}ms"
            f"{max(latencies) * 1000:>9.0f}ms{statistics.median(ahead):>15.0f}{drained:>13.1f}s"
        )


if __name__ == "__main__":
    main()
