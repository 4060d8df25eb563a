"""The request board through the operator API: list, filters and order, masked phones and the
recorded opening, status changes with their history and the customer's notice, auth and CSRF,
validation, and the CSV export a spreadsheet opens."""

from __future__ import annotations

import csv
import io
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from bot.requests.model import NewRequest
from bot.services import Services
from tests.conftest import Say
from tests.requests.conftest import OperatorClient, leave_connection_lead

BASE = "/api/v1/operator/requests"


async def seed(services: Services) -> list[int]:
    """Three more requests straight through the desk, as the bot's actions store them."""
    desk = services.requests
    made = [
        await desk.create(
            NewRequest("callback", "rest:c1:c1", phone="+79140000001", details={"when": "завтра"})
        ),
        await desk.create(
            NewRequest(
                "connection",
                "rest:c2:c2",
                name='=HYPERLINK("x")',
                phone="+79140000002",
                city_id="chita",
                address="ул. Бутина, 1",
                details={"house_status": "connected"},
            )
        ),
        await desk.create(NewRequest("complaint", "rest:c3:c3", city_id="bratsk")),
    ]
    return [record.id for record in made]


async def test_list_is_newest_first_and_filters(
    say: Say, services: Services, operators: dict[str, OperatorClient]
) -> None:
    await leave_connection_lead(say, "u-list")
    callback, chita, complaint = await seed(services)
    anna = operators["anna"]

    status, body = await anna.get(BASE)
    assert status == 200
    listed = body["requests"]
    assert [r["id"] for r in listed] == [complaint, chita, callback, 1]
    lead = listed[-1]
    assert lead["kind"] == "connection"
    assert lead["status"] == "new"
    assert lead["name"] == "Анна"
    assert lead["city_id"] == "bratsk"
    assert lead["address"] == "ул. Обручева, 21"
    assert lead["conversation_id"] == "rest:u-list:u-list"
    assert lead["attachments"] == []
    assert lead["details"]["house_status"] == "planned"
    assert lead["details"]["consent_version"]  # the consent it was left with (152-FZ)
    assert {"id", "kind", "status", "created_at", "contract", "name", "phone", "city_id",
            "address", "details", "conversation_id", "attachments"} <= lead.keys()  # fmt: skip
    assert [h["action"] for h in lead["history"]] == ["created"]

    async def ids(query: str) -> list[int]:
        status, body = await anna.get(f"{BASE}?{query}")
        assert status == 200, body
        return [r["id"] for r in body["requests"]]

    assert await ids("kind=connection") == [chita, 1]
    assert await ids("city_id=bratsk") == [complaint, 1]
    assert await ids("kind=connection&city_id=chita") == [chita]
    assert await ids("status=done") == []
    assert await ids("status=new&kind=callback") == [callback]
    assert (await anna.get(f"{BASE}?kind=refund"))[0] == 400
    assert (await anna.get(f"{BASE}?status=open"))[0] == 400


async def test_phone_is_masked_until_an_operator_opens_the_record(
    say: Say, services: Services, operators: dict[str, OperatorClient]
) -> None:
    await leave_connection_lead(say, "u-mask")
    anna = operators["anna"]
    [listed] = (await anna.get(BASE))[1]["requests"]
    assert listed["phone"] == "+7 914 ***-**-34"
    assert "5551234" not in str(listed)

    status, body = await anna.get(f"{BASE}/{listed['id']}")
    assert status == 200
    assert body["request"]["phone"] == "+79145551234"
    opened = body["request"]["history"][-1]
    assert (opened["action"], opened["by"]) == ("opened", "anna")
    # The list still masks it; the history says who looked.
    [again] = (await operators["boris"].get(BASE))[1]["requests"]
    assert again["phone"] == "+7 914 ***-**-34"
    assert [(h["action"], h["by"]) for h in again["history"]] == [
        ("created", "bot"), ("opened", "anna"),
    ]  # fmt: skip


async def test_status_change_is_recorded_and_the_customer_is_told(
    say: Say, client: TestClient, services: Services, operators: dict[str, OperatorClient]
) -> None:
    conversation = await leave_connection_lead(say, "u-move")
    anna = operators["anna"]
    [lead] = (await anna.get(BASE))[1]["requests"]
    path = f"{BASE}/{lead['id']}"

    status, body = await anna.post(path, {"assignee": "anna", "status": "in_progress"})
    assert status == 200, body
    assert body["request"]["status"] == "in_progress"
    assert body["request"]["assignee"] == "anna"
    assert body["request"]["phone"] == "+7 914 ***-**-34"
    assert {(c["action"], c["from"], c["to"]) for c in body["changed"]} == {
        ("status", "new", "in_progress"), ("assignee", None, "anna"),
    }  # fmt: skip

    status, body = await anna.post(path, {"status": "done", "comment": "Подключили 12.03"})
    assert status == 200, body
    record = body["request"]
    assert (record["status"], record["comment"]) == ("done", "Подключили 12.03")
    history = [(h["action"], h["by"], h["from"], h["to"]) for h in record["history"]]
    assert history == [
        ("created", "bot", None, "new"),
        ("status", "anna", "new", "in_progress"),
        ("assignee", "anna", None, "anna"),
        ("status", "anna", "in_progress", "done"),
        ("comment", "anna", None, "Подключили 12.03"),
    ]
    # Setting what is already there changes nothing and is not recorded.
    status, body = await anna.post(path, {"status": "done"})
    assert (status, body["changed"]) == (200, [])

    resp = await client.get(f"/api/v1/conversations/{conversation}/messages")
    told = [m for m in (await resp.json())["messages"] if m["from"] == "system"]
    assert [m["text"] for m in told] == [
        f"Ваша заявка № {lead['id']} на подключение взята в работу. Мы свяжемся с вами, "
        "чтобы договориться о дате.",
        f"Заявка № {lead['id']} на подключение выполнена. Спасибо, что выбрали нас!",
    ]
    assert "Подключили" not in str(told)  # the comment is for colleagues, not the customer

    # Taking it off someone: assignee null.
    status, body = await operators["boris"].post(path, {"assignee": None})
    assert (status, body["request"]["assignee"]) == (200, None)


async def test_a_change_is_announced_to_consoles(
    services: Services, operators: dict[str, OperatorClient]
) -> None:
    async with services.handoff.events.subscribe() as events:
        [callback, *_] = await seed(services)
        created = await events.get()
        assert created["type"] == "request"
        assert created["event"] == "created"
        assert created["request"]["id"] == callback
        assert created["request"]["phone"] == "+7 914 ***-**-01"
        while not events.empty():
            events.get_nowait()
        await operators["anna"].post(f"{BASE}/{callback}", {"status": "cancelled"})
        changed = await events.get()
        assert (changed["event"], changed["request"]["status"]) == ("updated", "cancelled")


async def test_only_operators_and_only_with_csrf(
    client: TestClient, services: Services, operators: dict[str, OperatorClient]
) -> None:
    [callback, *_] = await seed(services)
    assert (await client.get(BASE)).status == 401
    assert (await client.get(f"{BASE}/{callback}")).status == 401
    assert (await client.get(f"{BASE}.csv")).status == 401
    assert (await client.post(f"{BASE}/{callback}", json={"status": "done"})).status == 401

    anna = operators["anna"]
    status, _ = await anna.post(f"{BASE}/{callback}", {"status": "done"}, csrf=False)
    assert status == 403
    async with anna.session.post(
        anna.url(f"{BASE}/{callback}"),
        json={"status": "done"},
        headers={"X-CSRF-Token": anna.csrf, "Origin": "https://evil.example"},
    ) as resp:
        assert resp.status == 403
    record = await services.requests.board.get(callback)
    assert record is not None
    assert record.status == "new"


async def test_unknown_record_and_invalid_changes(
    services: Services, operators: dict[str, OperatorClient]
) -> None:
    [callback, *_] = await seed(services)
    anna = operators["anna"]
    assert (await anna.get(f"{BASE}/9999"))[0] == 404
    assert (await anna.post(f"{BASE}/9999", {"status": "done"}))[0] == 404

    path = f"{BASE}/{callback}"
    bad: list[Any] = [
        {"status": "closed"},
        {"status": 3},
        {"comment": 5},
        {"comment": "x" * 2001},
        {"assignee": "nobody"},
        {"assignee": 7},
        {},
        ["status", "done"],
    ]
    for body in bad:
        status, answer = await anna.post(path, body)
        assert status == 400, body
        assert "error" in answer
    async with anna.session.post(
        anna.url(path), data=b"{not json", headers={"X-CSRF-Token": anna.csrf}
    ) as resp:
        assert resp.status == 400
    record = await services.requests.board.get(callback)
    assert record is not None
    assert (record.status, record.comment, record.assignee) == ("new", None, None)
    assert [h.action for h in record.history] == ["created"]


async def _csv(
    operator: OperatorClient, query: str = ""
) -> tuple[int, str, aiohttp.typedefs.LooseHeaders]:
    async with operator.session.get(operator.url(f"{BASE}.csv{query}")) as resp:
        raw = await resp.read()
        return resp.status, raw.decode("utf-8") if resp.status == 200 else "", resp.headers


async def test_csv_export_opens_in_a_spreadsheet(
    say: Say, services: Services, operators: dict[str, OperatorClient]
) -> None:
    await leave_connection_lead(say, "u-csv", name="Пётр")
    callback, chita, complaint = await seed(services)
    feedback = await services.requests.create(
        NewRequest("feedback", "rest:c4:c4", name="Иванов; «Пётр»", details={"text": "Всё ок"})
    )
    await operators["anna"].post(
        f"{BASE}/{callback}", {"comment": "Перезвонить после 18, строка\nвторая"}
    )

    status, text, headers = await _csv(operators["anna"])
    assert status == 200
    assert headers["Content-Type"].startswith("text/csv")
    assert "attachment" in headers["Content-Disposition"]
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=";"))
    assert [int(r["id"]) for r in rows] == [feedback.id, complaint, chita, callback, 1]
    assert rows[0]["name"] == "Иванов; «Пётр»"  # Cyrillic and the separator survive
    assert rows[0]["details"] == "text: Всё ок"
    lead = rows[-1]
    assert lead["name"] == "Пётр"
    assert lead["address"] == "ул. Обручева, 21"
    assert lead["phone"] == "+7 914 ***-**-34"
    assert lead["details"].startswith("house_status: planned; consent_version: ")
    assert rows[3]["comment"] == "Перезвонить после 18, строка\nвторая"
    assert rows[3]["details"] == "when: завтра"
    assert rows[2]["name"] == '\'=HYPERLINK("x")'  # a spreadsheet shows it, does not run it

    status, text, _ = await _csv(operators["anna"], "?kind=callback")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=";"))
    assert [int(r["id"]) for r in rows] == [callback]


async def test_full_phones_in_the_export_for_supervisors_only_and_recorded(
    say: Say, services: Services, operators: dict[str, OperatorClient]
) -> None:
    await leave_connection_lead(say, "u-full")
    assert (await _csv(operators["anna"], "?phones=full"))[0] == 403
    status, text, _ = await _csv(operators["sveta"], "?phones=full")
    assert status == 200
    [row] = list(
        csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=";")
    )
    assert row["phone"] == "+79145551234"
    [record] = await services.requests.board.find()
    assert [(h.action, h.by) for h in record.history][-1] == ("exported", "sveta")


async def test_openapi_describes_the_board(client: TestClient) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    paths = document["paths"]
    assert {BASE, f"{BASE}.csv", f"{BASE}/{{id}}"} <= paths.keys()
    assert set(paths[f"{BASE}/{{id}}"]) == {"get", "post"}
    assert "Request" in document["components"]["schemas"]


async def test_only_changes_that_concern_the_customer_are_told(
    say: Say, client: TestClient, services: Services, operators: dict[str, OperatorClient]
) -> None:
    conversation = await leave_connection_lead(say, "u-told")
    feedback = await services.requests.create(NewRequest("feedback", conversation, name="Анна"))
    anna = operators["anna"]
    await anna.post(f"{BASE}/{feedback.id}", {"status": "in_progress", "assignee": "anna"})
    await anna.post(f"{BASE}/{feedback.id}", {"comment": "передали в отдел качества"})

    async def system_lines() -> list[str]:
        resp = await client.get(f"/api/v1/conversations/{conversation}/messages")
        return [m["text"] for m in (await resp.json())["messages"] if m["from"] == "system"]

    assert await system_lines() == []  # "we are reading your feedback" is not news
    await anna.post(f"{BASE}/{feedback.id}", {"status": "done"})
    assert await system_lines() == [
        f"Спасибо! Ваш отзыв № {feedback.id} прочитан и передан ответственным."
    ]
    # A request whose conversation is gone is still moved along.
    lost = await services.requests.create(NewRequest("callback", "rest:gone:gone"))
    status, body = await anna.post(f"{BASE}/{lost.id}", {"status": "done"})
    assert (status, body["request"]["status"]) == (200, "done")
