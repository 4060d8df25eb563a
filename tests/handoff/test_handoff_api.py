"""Every transition of a conversation between the bot and people, through the public API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.handoff.operators import Operator
from bot.services import Services
from tests.conftest import Say, buttons, identity, texts

PASSWORD = "correct horse battery"


class OperatorClient:
    """An operator's browser: own cookie jar, CSRF token from the login."""

    def __init__(self, client: TestClient, session: aiohttp.ClientSession) -> None:
        self._client = client
        self._session = session
        self.csrf = ""

    async def login(self, login: str) -> None:
        async with self._session.post(
            self._client.make_url("/api/v1/operator/login"),
            json={"login": login, "password": PASSWORD},
        ) as resp:
            assert resp.status == 200, await resp.text()
            self.csrf = (await resp.json())["csrf_token"]

    async def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        async with self._session.post(
            self._client.make_url(path), json=body or {}, headers={"X-CSRF-Token": self.csrf}
        ) as resp:
            return resp.status, await resp.json()

    async def get(self, path: str) -> Any:
        async with self._session.get(self._client.make_url(path)) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


def conv(conversation_id: str, action: str = "") -> str:
    path = f"/api/v1/operator/conversations/{quote(conversation_id, safe='')}"
    return f"{path}/{action}" if action else path


@pytest.fixture
async def operators(client: TestClient, services: Services) -> AsyncIterator[list[OperatorClient]]:
    for login, name in (("anna", "Анна"), ("boris", "Борис")):
        await services.operators.add(
            Operator(login, name, departments=("general", "billing", "technical", "sales")),
            PASSWORD,
        )
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(2)]
    clients = [OperatorClient(client, s) for s in sessions]
    await clients[0].login("anna")
    await clients[1].login("boris")
    yield clients
    for s in sessions:
        await s.close()


async def to_people(say: Say, sender: str) -> dict[str, Any]:
    answer = await say(sender, "позовите оператора пожалуйста")
    assert answer["state"] == "queued"
    return answer


async def test_asking_for_a_person_queues_the_conversation(
    say: Say, operators: list[OperatorClient]
) -> None:
    answer = await to_people(say, "c-1")
    assert "оператор" in texts(answer).lower()
    assert "очеред" in texts(answer).lower()  # the customer is told where they are
    queue = await operators[0].get("/api/v1/operator/queue")
    [item] = queue["conversations"]
    assert item["conversation_id"] == "rest:c-1:c-1"
    assert item["state"] == "queued"
    assert item["position"] == 1


async def test_two_operators_claim_at_once_one_wins(
    say: Say, operators: list[OperatorClient]
) -> None:
    await to_people(say, "c-2")
    results = await asyncio.gather(
        operators[0].post(conv("rest:c-2:c-2", "claim")),
        operators[1].post(conv("rest:c-2:c-2", "claim")),
    )
    assert sorted(status for status, _ in results) == [200, 409]


async def test_operator_and_customer_talk_and_the_bot_stays_silent(
    client: TestClient, say: Say, operators: list[OperatorClient]
) -> None:
    await to_people(say, "c-3")
    anna = operators[0]
    assert (await anna.post(conv("rest:c-3:c-3", "claim")))[0] == 200
    status, body = await anna.post(conv("rest:c-3:c-3", "messages"), {"text": "Здравствуйте!"})
    assert status == 200
    assert body["message"]["from"] == "operator"
    during = await say("c-3", "тарифы в Чите")  # would make the bot talk if it were on
    assert during["state"] == "operator"
    assert during["replies"] == []
    transcript = await (await client.get("/api/v1/conversations/rest:c-3:c-3/messages")).json()
    senders = [m["from"] for m in transcript["messages"]]
    assert senders[-3:] == ["system", "operator", "customer"]  # joined, hello, customer
    assert "Анна" in transcript["messages"][-3]["text"]
    other = await operators[1].post(conv("rest:c-3:c-3", "messages"), {"text": "я тоже"})
    assert other[0] == 409  # not boris's conversation


async def test_transfer_keeps_customer_messages_and_release_returns_to_the_bot(
    say: Say, operators: list[OperatorClient], services: Services
) -> None:
    await to_people(say, "c-4")
    anna = operators[0]
    await anna.post(conv("rest:c-4:c-4", "claim"))
    status, _ = await anna.post(
        conv("rest:c-4:c-4", "transfer"), {"to_department": "billing", "note": "про оплату"}
    )
    assert status == 200
    during = await say("c-4", "я оплатил вчера")
    assert during["state"] == "queued"
    # not answered by the bot: only told, once, that the message is passed on
    assert [r["text"] for r in during["replies"]] == [
        "Ваше сообщение передано, оператор увидит его, когда подключится."
    ]
    detail = await anna.get(conv("rest:c-4:c-4"))
    assert detail["department"] == "billing"
    assert detail["messages"][-2]["text"] == "я оплатил вчера"  # not lost
    assert [n["text"] for n in detail["notes"]] == ["про оплату"]

    boris = operators[1]
    assert (await boris.post(conv("rest:c-4:c-4", "claim")))[0] == 200
    assert (await boris.post(conv("rest:c-4:c-4", "release")))[0] == 200
    back = await say("c-4", "тарифы в Чите")
    assert back["state"] == "bot"
    assert "Тарифы в городе Чита" in texts(back)
    assert await services.store.queue_get("rest:c-4:c-4") is None


async def test_close_asks_for_a_rating_and_records_it(
    client: TestClient, say: Say, operators: list[OperatorClient]
) -> None:
    await to_people(say, "c-5")
    anna = operators[0]
    await anna.post(conv("rest:c-5:c-5", "claim"))
    await anna.post(conv("rest:c-5:c-5", "messages"), {"text": "Готово"})
    assert (await anna.post(conv("rest:c-5:c-5", "close")))[0] == 200
    transcript = await (await client.get("/api/v1/conversations/rest:c-5:c-5/messages")).json()
    rating = transcript["messages"][-1]
    assert [b["title"] for b in rating["buttons"]] == ["1", "2", "3", "4", "5"]
    five = rating["buttons"][4]["payload"]
    thanks = await say("c-5", payload=five)
    assert "Спасибо за оценку" in texts(thanks)
    metrics = await (await client.get("/metrics")).text()
    assert 'isp_bot_csat_total{score="5"} 1' in metrics
    assert "isp_bot_first_response_seconds_count" in metrics


async def test_customer_card_and_history_across_channels(
    say: Say, operators: list[OperatorClient], services: Services
) -> None:
    who = identity("750012345678")
    await say("site-1", "тарифы в Чите", identity=who)  # an earlier conversation, bot only
    await say("site-2", "позовите оператора", identity=who)
    detail = await operators[0].get(conv("rest:site-2:site-2"))
    account = await services.billing.account("750012345678")
    assert account is not None
    assert detail["card"]["contract"] == "750012345678"
    assert detail["card"]["holder_name"] == account.holder_name
    assert detail["card"]["balance"] == str(account.balance_rub)
    assert detail["card"]["tariff"]["name"] == services.catalog.tariffs[account.tariff_id].name
    [earlier] = detail["history"]
    assert earlier["conversation_id"] == "rest:site-1:site-1"
    assert [m["from"] for m in earlier["messages"]] == ["customer", "bot"]  # bot turns included
    names = {c["id"]: c["text"] for c in detail["canned"]}
    assert "Анна" in names["greeting"]  # variables filled: operator name
    assert account.holder_name.split()[1] in names["greeting"]


async def test_online_operator_gets_chats_automatically_and_timeouts_return_them(
    say: Say, operators: list[OperatorClient], services: Services
) -> None:
    anna = operators[0]
    assert (await anna.get("/api/v1/operator/me"))["status"] == "away"  # a fresh login
    assert (await anna.post("/api/v1/operator/status", {"status": "online"}))[0] == 200
    assert (await anna.get("/api/v1/operator/me"))["status"] == "online"
    await to_people(say, "c-6")
    await services.handoff.assign_waiting()
    entry = await services.store.queue_get("rest:c-6:c-6")
    assert entry is not None
    assert entry.operator == "anna"

    later = entry.assigned_at + timedelta(
        seconds=services.handoff.config.answer_timeout_seconds + 1
    )  # type: ignore[operator]
    services.handoff._clock = lambda: later
    await services.handoff.set_online("anna", False)  # away: the chat goes back, not to her
    await services.handoff.tick()
    entry = await services.store.queue_get("rest:c-6:c-6")
    assert entry is not None
    assert entry.operator is None


async def test_engine_failure_hands_the_customer_to_a_person(
    say: Say, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("engine down")

    monkeypatch.setattr(services.engine, "step", broken)
    answer = await say("c-7", "тарифы в Чите")
    assert answer["state"] == "queued"
    assert "оператор" in texts(answer).lower()


async def test_operator_api_needs_a_session_and_csrf(
    client: TestClient, say: Say, operators: list[OperatorClient]
) -> None:
    await to_people(say, "c-8")
    anonymous = await client.get("/api/v1/operator/queue")
    assert anonymous.status == 401
    anna = operators[0]
    saved, anna.csrf = anna.csrf, "wrong"
    status, _ = await anna.post(conv("rest:c-8:c-8", "claim"))
    assert status == 403
    anna.csrf = saved
    assert (await anna.post(conv("rest:c-8:c-8", "claim")))[0] == 200


async def test_customer_can_leave_the_queue(say: Say, operators: list[OperatorClient]) -> None:
    answer = await to_people(say, "c-9")
    back = next(b for b in buttons(answer) if b["payload"] == "/back_to_bot")
    returned = await say("c-9", payload=back["payload"])
    assert returned["state"] == "bot"
    queue = await operators[0].get("/api/v1/operator/queue")
    assert queue["conversations"] == []


async def test_operator_takes_over_a_live_bot_conversation(
    say: Say, operators: list[OperatorClient]
) -> None:
    await say("c-10", "какие тарифы в Братске")
    live = await operators[0].get("/api/v1/operator/live")
    assert "rest:c-10:c-10" in [c["conversation_id"] for c in live["conversations"]]
    assert (await operators[0].post(conv("rest:c-10:c-10", "claim")))[0] == 200
    after = await say("c-10", "а в Чите?")
    assert after["state"] == "operator"
    assert after["replies"] == []  # the bot has stopped talking


async def test_call_back_request_is_stored(say: Say, services: Services) -> None:
    # The whole dialog (reason, consent, hours) is in tests/test_requests_dialogs.py.
    await say("c-11", "перезвоните мне пожалуйста")
    await say("c-11", payload='/inform{"reason":"other"}')
    phone = await say("c-11", payload='/inform{"consent":"yes"}')
    assert "номер" in texts(phone)
    when = await say("c-11", "8 914 555 12 34")
    assert "Когда удобно" in texts(when)
    done = await say("c-11", "завтра после 18:00")
    assert "обратный звонок" in texts(done)
    [request] = await services.requests.board.find(kind="callback")
    assert request.phone == "+79145551234"
    assert "с 18:00 до 20:00" in request.details["when"]


async def test_out_of_hours_the_customer_is_told_when_and_offered_a_call_back(
    say: Say, services: Services
) -> None:
    from datetime import UTC, datetime

    from bot.catalog.opening_hours import OpeningHours
    from bot.handoff.config import Department

    config = services.handoff.config
    closed = Department("general", OpeningHours.parse("Mo-Fr 09:00-18:00"), "Asia/Irkutsk")
    services.handoff.config = type(config)(
        {**config.departments, "general": closed}, config.assignment,
        config.answer_timeout_seconds, config.average_handle_seconds, config.canned,
    )  # fmt: skip
    services.handoff._clock = lambda: datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # Sunday 11:00
    answer = await to_people(say, "c-12")
    assert "не работают" in texts(answer)
    assert "в понедельник в 09:00" in texts(answer)
    assert "/callback_request" in {b["payload"] for b in buttons(answer)}
