"""Files customers send in Telegram, VK and Viber: fetched through the platform after the
webhook was answered, checked (size per kind, type by content), kept in the file store, shown
in the transcript, and acknowledged by the bot.

Everything is the real gateway: the webhooks, the durable ingress, the channel adapters with
their real client libraries (aiogram for getFile and the download) against the fake platforms
of ``tests/fakes/``, which serve the files over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aiogram.client.session.aiohttp import AiohttpSession
from aiohttp.test_utils import TestClient, unused_port

from bot.app import create_app
from bot.channels.base import RateLimit
from bot.channels.inbound_files import IMAGE_LIMIT, host_allowed, sniff
from bot.channels.telegram import SECRET_HEADER
from bot.config import Settings
from bot.intents.nlu import Nlu
from bot.models import ConversationKey
from bot.serialize import attachments_of
from bot.services import Services, build_services
from tests.fakes.telegram import FakeTelegram
from tests.fakes.viber import FakeViber, sign
from tests.fakes.vk import FakeVk

TG_TOKEN = "123456:TEST-token"
TG_SECRET = "inbound-files-secret"
VK_GROUP = "123456"
VK_SECRET = "vk-inbound-secret"
VIBER_AUTH = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9"

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 40 + b"\xff\xd9"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"
EXE = b"MZ\x90\x00" + bytes(200)


@dataclass
class Rig:
    services: Services
    client: TestClient[Any, Any]
    settings: Settings
    telegram: FakeTelegram
    vk: FakeVk
    viber: FakeViber
    vk_base: str
    viber_base: str

    async def settle(self) -> None:
        async with asyncio.timeout(30):
            await self.services.ingress.idle()
            await self.services.outbox.drain()

    async def transcript(self, conversation_id: str) -> list[Any]:
        return await self.services.store.messages(conversation_id, limit=1000)

    async def customer_files(self, conversation_id: str) -> list[bytes]:
        out = []
        for entry in await self.transcript(conversation_id):
            if entry.sender != "customer":
                continue
            for ref in attachments_of(entry.meta):
                found = await self.services.files.get(ref.file_id)
                assert found is not None
                out.append(found[1])
        return out

    async def bot_texts(self, conversation_id: str) -> list[str]:
        return [e.text for e in await self.transcript(conversation_id) if e.sender != "customer"]

    # --- the three webhooks ---------------------------------------------------------------
    async def telegram_update(self, update_id: int, chat: int, media: dict[str, Any]) -> int:
        update = {
            "update_id": update_id,
            "message": {
                "message_id": update_id, "date": 1700000000,
                "chat": {"id": chat, "type": "private"},
                "from": {"id": chat, "is_bot": False, "first_name": "Ира", "language_code": "ru"},
                **media,
            },
        }  # fmt: skip
        resp = await self.client.post(
            "/webhooks/telegram", json=update, headers={SECRET_HEADER: TG_SECRET}
        )
        return resp.status

    async def vk_message(self, n: int, peer: int, attachment: dict[str, Any]) -> int:
        event = {
            "type": "message_new", "group_id": int(VK_GROUP), "event_id": f"ev{n}",
            "v": "5.199", "secret": VK_SECRET,
            "object": {
                "message": {"id": n, "date": 1700000000, "peer_id": peer, "from_id": peer,
                            "text": "", "attachments": [attachment]},
                "client_info": {"keyboard": True, "inline_keyboard": True,
                                "button_actions": ["text"], "lang_id": 0},
            },
        }  # fmt: skip
        resp = await self.client.post("/webhooks/vk", json=event)
        return resp.status

    async def viber_message(self, token: int, user: str, message: dict[str, Any]) -> int:
        body = json.dumps(
            {
                "event": "message",
                "timestamp": 1700000000000,
                "message_token": token,
                "sender": {"id": user, "name": "Ира", "language": "ru"},
                "message": message,
            }
        ).encode()
        resp = await self.client.post(
            "/webhooks/viber",
            data=body,
            headers={"X-Viber-Content-Signature": sign(VIBER_AUTH, body)},
        )
        return resp.status


Make = Callable[[], Awaitable[Rig]]


def vk_photo(*urls: str) -> dict[str, Any]:
    """A VK photo attachment with one size per URL, smallest first."""
    sizes = [
        {"type": "w", "width": 100 * n, "height": 100 * n, "url": url}
        for n, url in enumerate(urls, start=1)
    ]
    return {"type": "photo", "photo": {"id": 1, "owner_id": 55, "sizes": sizes}}


def tg_document(file_id: str, name: str, size: int) -> dict[str, Any]:
    return {
        "document": {
            "file_id": file_id, "file_unique_id": f"u-{file_id}", "file_name": name,
            "file_size": size,
        }
    }  # fmt: skip


def tg_press(update_id: int, chat: int, data: str) -> dict[str, Any]:
    message = {"message_id": 1, "date": 1700000000, "chat": {"id": chat, "type": "private"}}
    sender = {"id": chat, "is_bot": False, "first_name": "Ира"}
    query = {"id": f"cb{update_id}", "from": sender, "data": data, "message": message}
    return {"update_id": update_id, "callback_query": query}


async def _close_without_tls_grace(self: AiohttpSession) -> None:
    if self._session is not None and not self._session.closed:
        await self._session.close()


@pytest.fixture
async def make(
    aiohttp_client: Any,
    aiohttp_server: Any,
    settings: Settings,
    demo_nlu: Nlu,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Make]:
    monkeypatch.setattr(AiohttpSession, "close", _close_without_tls_grace)
    running: list[Services] = []

    async def build() -> Rig:
        telegram, vk, viber = FakeTelegram(token=TG_TOKEN), FakeVk(group_id=VK_GROUP), None
        tg_server = await aiohttp_server(telegram.app())
        vk_server = await aiohttp_server(vk.app())
        viber = FakeViber(VIBER_AUTH)
        viber_server = await aiohttp_server(viber.app())
        viber.base = str(viber_server.make_url("/pa"))
        port = unused_port()
        configured = replace(
            settings,
            public_url=f"http://127.0.0.1:{port}",
            telegram_token=TG_TOKEN,
            telegram_webhook_secret=TG_SECRET,
            telegram_api_base=str(tg_server.make_url("")).rstrip("/"),
            vk_group_token=vk.token,
            vk_group_id=VK_GROUP,
            vk_secret=VK_SECRET,
            vk_api_base=str(vk_server.make_url("/method")),
            viber_auth_token=VIBER_AUTH,
            viber_api_base=viber.base,
        )
        services = build_services(configured, nlu=demo_nlu)
        for channel in services.channels.values():  # no pacing waits in these tests
            channel.rate_limit = RateLimit(per_chat=1000.0, overall=1000.0)  # type: ignore[misc]
        app = create_app(configured, services=services)
        client = await aiohttp_client(app, server_kwargs={"port": port})
        await services.start()
        running.append(services)
        return Rig(
            services, client, configured, telegram, vk, viber,
            str(vk_server.make_url("")).rstrip("/"), str(viber_server.make_url("")).rstrip("/"),
        )  # fmt: skip

    yield build
    for services in running:
        await services.close()


# --- fetched and stored, byte for byte ------------------------------------------------------


async def test_telegram_photo_and_document_are_fetched_with_get_file_and_stored(make: Make) -> None:
    rig = await make()
    tg = rig.telegram
    tg.add_file("PHOTO-big", JPEG, "photos/file_1.jpg")
    tg.add_file("DOC-1", PDF, "documents/file_2.pdf")
    photo = {"photo": [{"file_id": "PHOTO-small", "file_unique_id": "s", "width": 90,
                        "height": 90, "file_size": 100},
                       {"file_id": "PHOTO-big", "file_unique_id": "b", "width": 800,
                        "height": 600, "file_size": len(JPEG)}]}  # fmt: skip
    document = tg_document("DOC-1", "чек.pdf", len(PDF))
    assert await rig.telegram_update(9001, 4242, photo) == 200
    assert await rig.telegram_update(9002, 4242, document) == 200
    await rig.settle()
    conversation = "telegram:4242:4242"
    assert await rig.customer_files(conversation) == [JPEG, PDF]
    # The largest size is the one fetched; getFile first, then the file URL.
    assert [c["file_id"] for c in tg.calls_to("getFile")] == ["PHOTO-big", "DOC-1"]
    assert tg.file_downloads == ["photos/file_1.jpg", "documents/file_2.pdf"]
    entries = [e for e in await rig.transcript(conversation) if e.sender == "customer"]
    [pdf] = attachments_of(entries[1].meta)
    assert (pdf.name, pdf.content_type, pdf.size) == ("чек.pdf", "application/pdf", len(PDF))
    [jpeg] = attachments_of(entries[0].meta)
    assert jpeg.content_type == "image/jpeg"


async def test_vk_photo_and_doc_are_fetched_from_their_urls_and_stored(make: Make) -> None:
    rig = await make()
    rig.vk.files.update({"small.jpg": b"not the one", "big.jpg": JPEG, "receipt.pdf": PDF})
    photo = vk_photo(f"{rig.vk_base}/files/small.jpg", f"{rig.vk_base}/files/big.jpg")
    url = f"{rig.vk_base}/files/receipt.pdf"
    doc = {"type": "doc", "doc": {"id": 2, "owner_id": 55, "title": "receipt.pdf",
                                  "size": len(PDF), "ext": "pdf", "url": url}}  # fmt: skip
    assert await rig.vk_message(1, 55, photo) == 200
    assert await rig.vk_message(2, 55, doc) == 200
    await rig.settle()
    assert await rig.customer_files("vk:55:55") == [JPEG, PDF]
    assert rig.vk.file_downloads == ["big.jpg", "receipt.pdf"]


async def test_viber_picture_and_file_are_fetched_from_the_media_url_and_stored(
    make: Make,
) -> None:
    rig = await make()
    rig.viber.files.update({"p.jpg": JPEG, "scan.pdf": PDF})
    user = "3SQNc4FPUQmysaM/AQEhXg=="
    picture = {"type": "picture", "media": f"{rig.viber_base}/media/p.jpg", "text": ""}
    file = {"type": "file", "media": f"{rig.viber_base}/media/scan.pdf", "file_name": "scan.pdf",
            "size": len(PDF)}  # fmt: skip
    assert await rig.viber_message(5000000000000000001, user, picture) == 200
    assert await rig.viber_message(5000000000000000002, user, file) == 200
    await rig.settle()
    assert await rig.customer_files(f"viber:{user}:{user}") == [JPEG, PDF]


# --- refused politely -----------------------------------------------------------------------


async def test_a_file_above_the_limit_is_refused_politely_without_downloading(make: Make) -> None:
    rig = await make()
    big = b"\xff\xd8\xff" + bytes(IMAGE_LIMIT)
    rig.vk.files["huge.jpg"] = big
    rig.telegram.add_file("HUGE", b"%PDF-" + bytes(21 * 1024 * 1024), "documents/huge.pdf")
    photo = vk_photo(f"{rig.vk_base}/files/huge.jpg")
    document = tg_document("HUGE", "big.pdf", 21 * 1024 * 1024)
    assert await rig.vk_message(3, 56, photo) == 200  # no declared size: refused while reading
    assert await rig.telegram_update(9100, 4343, document) == 200  # declared: not even fetched
    await rig.settle()
    assert rig.telegram.calls_to("getFile") == []
    assert rig.telegram.file_downloads == []
    for conversation in ("vk:56:56", "telegram:4343:4343"):
        assert await rig.customer_files(conversation) == []
        [answer] = await rig.bot_texts(conversation)
        assert answer.startswith("Файл слишком большой")
    # The bot's answer reached the customer in their messenger.
    assert rig.telegram.sent(4343)[0]["text"].startswith("Файл слишком большой")


async def test_a_file_of_a_type_we_do_not_take_is_refused_by_its_content(make: Make) -> None:
    rig = await make()
    rig.viber.files["setup.pdf"] = EXE  # named like a PDF, bytes of a program
    user = "vIbErUsEr0000000000001=="
    file = {"type": "file", "media": f"{rig.viber_base}/media/setup.pdf",
            "file_name": "setup.pdf", "size": len(EXE)}  # fmt: skip
    assert await rig.viber_message(5000000000000000010, user, file) == 200
    await rig.settle()
    assert await rig.customer_files(f"viber:{user}:{user}") == []
    [answer] = await rig.bot_texts(f"viber:{user}:{user}")
    assert answer.startswith("Такой файл я не могу принять")


def test_only_the_platforms_hosts_and_known_types_are_taken() -> None:
    hosts = ("userapi.com", "127.0.0.1")
    assert host_allowed("https://sun9-1.userapi.com/x.jpg", hosts)
    assert not host_allowed("https://userapi.com.evil.example/x.jpg", hosts)
    assert not host_allowed("file:///etc/passwd", hosts)
    assert not host_allowed("http://169.254.169.254/latest", hosts)
    assert sniff(JPEG) == ("image/jpeg", "jpg")
    assert sniff(PDF) == ("application/pdf", "pdf")
    assert sniff(b"PK\x03\x04rest", "акт.docx") is not None
    assert sniff(b"PK\x03\x04rest", "archive.zip") is None
    assert sniff(EXE, "x.pdf") is None


# --- the webhook is answered first ----------------------------------------------------------


async def test_the_webhook_is_answered_before_the_slow_download(make: Make) -> None:
    rig = await make()
    rig.telegram.add_file("SLOW", PDF, "documents/slow.pdf")
    rig.telegram.file_delay = 2.0
    document = tg_document("SLOW", "slow.pdf", len(PDF))
    started = time.monotonic()
    assert await rig.telegram_update(9200, 4444, document) == 200
    answered = time.monotonic() - started
    assert answered < 1.0, f"the webhook waited {answered:.2f} s for the download"
    assert rig.telegram.file_downloads == []  # not fetched yet when the 200 went out
    await rig.settle()
    assert rig.telegram.file_downloads == ["documents/slow.pdf"]
    assert await rig.customer_files("telegram:4444:4444") == [PDF]


# --- the bot's acknowledgement --------------------------------------------------------------


async def test_a_file_alone_is_acknowledged_with_buttons_and_a_receipt_goes_to_billing(
    make: Make,
) -> None:
    rig = await make()
    rig.telegram.add_file("RCPT", JPEG, "photos/receipt.jpg")
    photo = {"photo": [{"file_id": "RCPT", "file_unique_id": "r", "width": 800, "height": 600,
                        "file_size": len(JPEG)}]}  # fmt: skip
    assert await rig.telegram_update(9300, 4545, photo) == 200
    await rig.settle()
    [ack] = rig.telegram.sent(4545)
    assert ack["text"] == "Файл получил. О чём он?"
    buttons = [row[0] for row in ack["reply_markup"]["inline_keyboard"]]
    assert [b["text"] for b in buttons] == ["Это жалоба", "Чек об оплате", "Другое — к оператору"]
    assert [b["callback_data"] for b in buttons] == [
        "/complaint", "/payment_receipt", "/human_operator",
    ]  # fmt: skip

    # "Чек об оплате": the file sent before is the receipt; it goes to billing with the chat.
    press = tg_press(9301, 4545, "/payment_receipt")
    resp = await rig.client.post(
        "/webhooks/telegram", json=press, headers={SECRET_HEADER: TG_SECRET}
    )
    assert resp.status == 200
    await rig.settle()
    texts = await rig.bot_texts("telegram:4545:4545")
    assert any(t.startswith("Спасибо, чек получил") for t in texts)
    entry = await rig.services.store.queue_get("telegram:4545:4545")
    assert entry is not None
    assert entry.department == "billing"
    conversation = await rig.services.store.load_conversation(
        ConversationKey.parse("telegram:4545:4545")
    )
    assert conversation is not None
    [stored] = conversation.dialog["memory"].get("last_slots", {}).get("attachments", [])
    assert stored["content_type"] == "image/jpeg"


async def test_a_receipt_asked_for_is_answered_by_the_file(make: Make) -> None:
    rig = await make()
    rig.vk.files["r.jpg"] = JPEG
    resp = await rig.client.post(
        "/webhooks/vk",
        json={
            "type": "message_new", "group_id": int(VK_GROUP), "event_id": "ev-press",
            "v": "5.199", "secret": VK_SECRET,
            "object": {"message": {"id": 70, "date": 1700000000, "peer_id": 57, "from_id": 57,
                                   "text": "Чек об оплате",
                                   "payload": json.dumps({"p": "/payment_receipt"})}},
        },
    )  # fmt: skip
    assert resp.status == 200
    await rig.settle()
    assert (await rig.bot_texts("vk:57:57"))[-1].startswith("Пришлите, пожалуйста, фото или PDF")
    photo = vk_photo(f"{rig.vk_base}/files/r.jpg")
    assert await rig.vk_message(71, 57, photo) == 200
    await rig.settle()
    assert any(t.startswith("Спасибо, чек получил") for t in await rig.bot_texts("vk:57:57"))
    assert await rig.customer_files("vk:57:57") == [JPEG]
    entry = await rig.services.store.queue_get("vk:57:57")
    assert entry is not None
    assert entry.department == "billing"
