"""A notice fan-out to many affected customers never makes a chatting customer's reply wait
behind it: measured by the ORDER in which the fake Telegram receives messages (no clocks).

300 customers on one street get an accident notice through the real path (the outage API →
the ledger's city listing → CustomerNotices → the outbox → the Telegram adapter → the fake Bot
API), paced at 100 messages a second. While the notices drain, another customer writes. The
control run sends the same notices in the replies' lane (what happened before the bulk lane):
the reply then comes after every notice."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from bot.channels.base import RateLimit
from tests.fakes.telegram import text_update as tg_message
from tests.outages.conftest import STREET, MakeRig, catalog_with_customers, link_chats

CUSTOMERS = 300
CHATTER = 555_001  # not a customer of the street: a stranger asking about tariffs
OUTAGE = {
    "outage_id": "fanout-1",
    "city_id": "chita",
    "street": STREET,
    "services": ["internet"],
    "kind": "accident",
    "started_at": "2026-01-01T08:00:00+09:00",
    "reason": "Повреждение кабеля",
}


async def _reply_position(
    make_rig: MakeRig, tmp_path: Path, *, all_queued: bool, per_second: float
) -> tuple[int, int, int]:
    """(notices delivered when the customer wrote, position of the reply, notices in all).
    ``all_queued``: the customer writes only once every notice is in the outbox."""
    rig = await make_rig(
        data_dir=catalog_with_customers(tmp_path / "catalog", CUSTOMERS),
        rate=RateLimit(per_chat=1000.0, overall=per_second),
    )
    await link_chats(rig.services, CUSTOMERS)
    resp = await rig.client.post("/api/v1/outages", json=OUTAGE)
    assert resp.status == 201, await resp.text()
    assert rig.services.outages is not None
    async with asyncio.timeout(30):
        if all_queued:
            await rig.services.outages.idle()
        while len(rig.fake.sent()) < 20:  # the broadcast is under way
            await asyncio.sleep(0.01)
    before = len(rig.fake.sent())
    assert await rig.post_update(tg_message(1, CHATTER, "тарифы в Чите")) == 200
    async with asyncio.timeout(30):
        await rig.services.ingress.idle()
        await rig.services.outbox.drain()
    sent = rig.fake.sent()
    chats = [str(m["chat_id"]) for m in sent]
    assert chats.count(str(CHATTER)) == 1
    notices = [m for m in sent if str(m["chat_id"]) != str(CHATTER)]
    assert len(notices) == CUSTOMERS
    assert all("Авария на сети" in m["text"] for m in notices)
    return before, chats.index(str(CHATTER)), len(notices)


async def test_a_reply_overtakes_a_notice_broadcast(make_rig: MakeRig, tmp_path: Path) -> None:
    before, position, notices = await _reply_position(
        make_rig, tmp_path, all_queued=False, per_second=100.0
    )
    assert before < notices / 2  # the customer wrote early in the broadcast
    # Delivered next to where the customer wrote: behind the few bulk sends in flight and
    # those sent while the turn ran, far ahead of the rest of the broadcast.
    assert position < notices / 2, (before, position)
    assert position - before < notices / 4, (before, position)


async def test_control_without_the_bulk_lane_the_reply_waits_for_every_notice(
    make_rig: MakeRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.outages.notices.bulk_delivery", contextlib.nullcontext)
    # Every notice queued before the customer writes (else later ones would queue behind the
    # reply); a slower pace so that most are still undelivered by then.
    before, position, notices = await _reply_position(
        make_rig, tmp_path, all_queued=True, per_second=60.0
    )
    assert before < notices
    assert position == notices  # last: every notice had booked its slot before the reply
