"""Notices: affected customers who allow outage notices in a messenger hear when an outage is
posted and when it ends, once each; the others hear nothing. And the outbox lane column is added
to an older store without losing its pending replies."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from bot.billing.base import Operation
from bot.channels.base import RateLimit
from bot.models import Conversation, ConversationKey
from bot.outages.notices import AccountsInCity, OutageNotices
from bot.storage.base import (
    PRIORITY_BULK,
    PRIORITY_REPLY,
    TranscriptLine,
    TurnRecord,
    bulk_delivery,
)
from bot.storage.sqlite import SqliteStore
from tests.outages.conftest import (
    FIRST_CHAT,
    STREET,
    MakeRig,
    Rig,
    catalog_with_customers,
    contract_of,
    link_chats,
)

BODY = {
    "outage_id": "n-1",
    "city_id": "chita",
    "street": STREET,
    "houses": "1;2",  # customers 0, 1, 10, 11 live there (houses 1..10 in turn)
    "services": "internet",
    "kind": "accident",
    "started_at": "2026-01-01T08:00:00+09:00",
    "reason": "Обрыв кабеля",
}


async def settle(rig: Rig) -> None:
    assert rig.services.outages is not None
    async with asyncio.timeout(20):
        await rig.services.outages.idle()
        await rig.services.outbox.drain()


def told(rig: Rig) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for m in rig.fake.sent():
        out.setdefault(int(m["chat_id"]) - FIRST_CHAT, []).append(m["text"])
    return out


async def test_posted_and_ended_reach_the_affected_once(make_rig: MakeRig, tmp_path: Path) -> None:
    rig = await make_rig(
        data_dir=catalog_with_customers(tmp_path / "catalog", 20),
        rate=RateLimit(per_chat=1000.0, overall=1000.0),
    )
    await link_chats(rig.services, 20)
    await rig.services.billing.apply(  # customer 10 wants outage notices by SMS only
        contract_of(10),
        Operation("prefs-10", "set_notifications", {"notifications": {"outages": ["sms"]}}),
    )
    assert (await rig.client.post("/api/v1/outages", json=BODY)).status == 201
    assert (await rig.client.post("/api/v1/outages/n-1", json=BODY)).status == 200  # update
    await settle(rig)
    posted = told(rig)
    assert sorted(posted) == [0, 1, 11]
    assert "Авария на сети по адресу ул. Петровская, 1, кв. 0: не работает интернет" in posted[0][0]
    assert "Причина: Обрыв кабеля." in posted[0][0]
    assert (await rig.client.delete("/api/v1/outages/n-1")).status == 200
    assert (await rig.client.delete("/api/v1/outages/n-1")).status == 200  # again: nothing new
    await settle(rig)
    ended = told(rig)
    assert {n: len(texts) for n, texts in ended.items()} == {0: 2, 1: 2, 11: 2}
    assert "устранена" in ended[0][1]
    transcript = await rig.services.store.messages(f"telegram:{FIRST_CHAT}:{FIRST_CHAT}")
    assert [m.sender for m in transcript][-2:] == ["system", "system"]


async def test_without_a_city_listing_only_customers_with_conversations(
    make_rig: MakeRig, tmp_path: Path
) -> None:
    rig = await make_rig(
        data_dir=catalog_with_customers(tmp_path / "catalog", 20),
        rate=RateLimit(per_chat=1000.0, overall=1000.0),
    )
    await link_chats(rig.services, 1)  # only customer 0 ever talked to us
    assert isinstance(rig.services.billing, AccountsInCity)
    assert rig.services.outages is not None
    notices = rig.services.outages._notices
    assert isinstance(notices, OutageNotices)

    class Remote:  # a billing without the optional listing
        def __init__(self, inner: object) -> None:
            self.account = inner.account  # type: ignore[attr-defined]

    notices._billing = Remote(rig.services.billing)  # type: ignore[assignment]
    assert (await rig.client.post("/api/v1/outages", json=BODY)).status == 201
    await settle(rig)
    assert sorted(told(rig)) == [0]


async def test_the_lane_column_is_added_to_an_older_store(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite3"
    store = SqliteStore(path=path)
    key = ConversationKey("test", "c", "c")
    line = TranscriptLine("bot", "старый ответ")
    await store.commit_turn(TurnRecord(Conversation(key), (line,), deliver=(line,)))
    await store.close()
    with sqlite3.connect(path) as db:  # what an older version left: no priority column
        db.execute("DROP INDEX IF EXISTS outbox_lanes")
        db.execute("ALTER TABLE outbox DROP COLUMN priority")
    again = SqliteStore(path=path)
    [old] = await again.outbox_pending()
    assert old.priority == PRIORITY_REPLY
    with bulk_delivery():
        await again.commit_turn(TurnRecord(Conversation(key), (line,), deliver=(line,)))
    await again.commit_turn(TurnRecord(Conversation(key), (line,), deliver=(line,)))
    pending = await again.outbox_pending()
    assert [p.priority for p in pending] == [PRIORITY_REPLY, PRIORITY_REPLY, PRIORITY_BULK]
    assert pending[2].id < pending[1].id  # the reply comes first although written later
    await again.close()
