"""How much Redis memory the gateway's store takes per conversation and per transcript line.

Writes CONVERSATIONS conversations of LINES realistic Russian lines each (turns as the gateway
commits them: the customer's line and the bot's answer, the inbound answered) into the Redis
given by URL, then reads MEMORY USAGE of every key the store made and prints the averages.
Refuses a Redis that holds any key of the gateway (``isp-bot:*``) and deletes what it wrote.

    .venv/bin/python scripts/redis_sizing.py redis://127.0.0.1:6379/15 [conversations] [lines]
"""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict

from bot.models import Conversation, ConversationKey, Inbound
from bot.storage.base import TranscriptLine, TurnRecord
from bot.storage.redis.client import connect
from bot.storage.redis.store import RedisStore

CUSTOMER = [
    "Здравствуйте, у меня не работает интернет с утра, роутер мигает красным",
    "Какой у меня баланс и когда следующее списание?",
    "Договор 750012345678, адрес ул. Бутина, 10, кв. 5",
    "Хочу перейти на тариф побыстрее, сколько стоит?",
    "Спасибо, всё заработало!",
]
BOT = [
    "Проверяю линию по вашему адресу. Перезагрузите, пожалуйста, роутер: выключите на 30 секунд.",
    "Баланс: 880,50 ₽. Следующее списание 1-го числа: 650 ₽ по тарифу «Домашний 100».",
    "Нашёл договор. Чем могу помочь?",
    "Тариф «Домашний 500»: 500 Мбит/с за 900 ₽ в месяц. Подключить с 1-го числа?",
    "Рад помочь! Если что-то ещё понадобится, пишите.",
]
DIALOG = {"flow": "balance", "slots": {"contract": "750012345678"}, "history": ["balance"]}


async def main(url: str, conversations: int, lines: int) -> None:
    client = connect(url)
    try:
        if [k async for k in client.scan_iter(match="isp-bot:*", count=1000)]:
            sys.exit("refusing: this Redis already holds isp-bot:* keys (use an empty database)")
        store = RedisStore(client)
        for n in range(conversations):
            key = ConversationKey("telegram", str(500_000_000 + n), str(500_000_000 + n))
            conversation = Conversation(key, locale="ru", contract_number=None, dialog=DIALOG)
            for t in range(lines // 2):
                inbound = Inbound(key, f"m{t}", "text", text=CUSTOMER[t % len(CUSTOMER)])
                inbox_id = await store.inbox_put("telegram", f"{n}-{t}", inbound)
                reply = TranscriptLine("bot", BOT[t % len(BOT)])
                said = TranscriptLine("customer", CUSTOMER[t % len(CUSTOMER)])
                await store.commit_turn(
                    TurnRecord(conversation, (said, reply), deliver=(reply,), inbox_id=inbox_id)
                )
            for item in await store.outbox_pending(conversation_id=key.id):
                await store.outbox_done(item.id, platform_message_id=f"tg-{item.id}")
        by_kind: dict[str, int] = defaultdict(int)
        count: dict[str, int] = defaultdict(int)
        async for raw in client.scan_iter(match="isp-bot:*", count=1000):
            kind = raw.decode().split(":")[2]
            by_kind[kind] += int(await client.memory_usage(raw, samples=0) or 0)
            count[kind] += 1
        total_lines = conversations * (lines // 2) * 2
        print(f"{conversations} conversations x {total_lines // conversations} lines")
        for kind in sorted(by_kind):
            print(f"  {kind:14} {count[kind]:7} keys {by_kind[kind]:12} bytes")
        per_line = by_kind["msgs"] / total_lines
        state = by_kind["conv"] + by_kind.get("by-state", 0) + by_kind.get("oldest", 0)
        print(f"transcript line: {per_line:.0f} bytes (the stream entry)")
        print(f"conversation state and indexes: {state / conversations:.0f} bytes")
        kept = sum(v for k, v in by_kind.items() if k not in ("in-item", "out-item", "seen"))
        print(f"per conversation with its transcript: {kept / conversations:.0f} bytes")
        window = by_kind.get("in-item", 0) + by_kind.get("out-item", 0) + by_kind.get("seen", 0)
        print(
            f"answered inbounds and sent replies (expire in days): {window / total_lines * 2:.0f}"
            " bytes per turn"
        )
    finally:
        keys = [k async for k in client.scan_iter(match="isp-bot:*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
        await client.aclose()


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    asyncio.run(main(args[0], int(args[1]) if len(args) > 1 else 1000,
                     int(args[2]) if len(args) > 2 else 10))  # fmt: skip
