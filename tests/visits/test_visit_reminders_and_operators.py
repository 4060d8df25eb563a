"""The reminder the day before (driven with the injected clock, once, across a restart) and the
operators' visit API (move / cancel with the customer told; session and CSRF)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient

from bot.services import Services
from bot.visits.service import VisitService
from bot.visits.store import SqliteVisitStore
from tests.conftest import Say, texts
from tests.visits.conftest import CHITA, Clock, OperatorClient, as_customer, visit_buttons

CONVERSATION = "rest:v-rem:v-rem"


async def book_thursday(say: Say, sender: str = "v-rem") -> None:
    windows = await as_customer(say, sender, CHITA, "нужен мастер, роутер не включается")
    more = await as_customer(
        say, sender, CHITA, payload=visit_buttons(windows, "more")[0]["payload"]
    )
    thursday = next(b for b in visit_buttons(more, "pick") if b["title"].startswith("чт"))
    assert thursday["title"] == "чт, 12 марта, 09:00–11:00"
    offer = await as_customer(say, sender, CHITA, payload=thursday["payload"])
    done = await as_customer(
        say, sender, CHITA, payload=visit_buttons(offer, "confirm")[0]["payload"]
    )
    assert "мастер записан" in texts(done)


async def system_lines(client: TestClient, conversation: str) -> list[str]:
    resp = await client.get(f"/api/v1/conversations/{conversation}/messages")
    return [m["text"] for m in (await resp.json())["messages"] if m["from"] == "system"]


async def test_reminder_goes_once_the_day_before(
    say: Say, client: TestClient, services: Services, clock: Clock
) -> None:
    await book_thursday(say)
    visits = services.visits
    assert visits is not None
    # Wednesday 09:59 in Chita: not yet (the reminder waits for the morning of the day before).
    clock.at = datetime(2026, 3, 11, 0, 59, tzinfo=UTC)
    assert await visits.remind_due() == 0
    clock.at += timedelta(minutes=1)  # 10:00
    assert await visits.remind_due() == 1
    assert await visits.remind_due() == 0
    clock.at += timedelta(hours=5)
    assert await visits.remind_due() == 0
    lines = await system_lines(client, CONVERSATION)
    assert lines == [
        "Напоминаем: завтра к вам придёт мастер — завтра, 09:00–11:00, по адресу ул. Бутина, 10, "
        "кв. 5. Если планы изменились, напишите «перенести мастера» или «отменить мастера»."
    ]
    # A restart (a new service on the same file) remembers it was sent.
    again = VisitService(
        store=SqliteVisitStore(services.settings.var_dir / "visits.sqlite3"),
        slots=visits.slots,
        clock=clock,
    )
    again.attach_tell(services.notices.tell_conversation)
    try:
        assert await again.remind_due() == 0
    finally:
        await again.close()
    assert len(await system_lines(client, CONVERSATION)) == 1


async def test_no_reminder_for_a_cancelled_visit(
    say: Say, client: TestClient, services: Services, clock: Clock
) -> None:
    await book_thursday(say)
    assert services.visits is not None
    (visit,) = await services.visits.store.booked_of(CHITA)
    await services.visits.cancel(visit.id, by="bot")
    clock.at = datetime(2026, 3, 11, 1, 0, tzinfo=UTC)
    assert await services.visits.remind_due() == 0
    assert await system_lines(client, CONVERSATION) == []


async def test_a_visit_closed_on_the_board_is_not_reminded(
    say: Say, client: TestClient, services: Services, clock: Clock,
    operators: dict[str, OperatorClient],
) -> None:  # fmt: skip
    await book_thursday(say)
    status, _ = await operators["anna"].post("/api/v1/operator/requests/1", {"status": "done"})
    assert status == 200
    clock.at = datetime(2026, 3, 11, 1, 0, tzinfo=UTC)
    assert services.visits is not None
    assert await services.visits.remind_due() == 0
    assert await services.visits.store.booked_of(CHITA) == []


async def test_operator_moves_and_cancels_and_the_customer_is_told(
    say: Say, client: TestClient, services: Services, clock: Clock,
    operators: dict[str, OperatorClient],
) -> None:  # fmt: skip
    await book_thursday(say)
    anna = operators["anna"]
    status, listing = await anna.get("/api/v1/operator/visits")
    assert status == 200
    (shown,) = listing["visits"]
    assert shown["starts_at"] == "2026-03-12T09:00:00+09:00"  # Chita's own clock
    assert (shown["address"], shown["problem"]) == (
        "ул. Бутина, 10, кв. 5",
        "нужен мастер, роутер не включается",
    )
    status, free = await anna.get(f"/api/v1/operator/visits/{shown['id']}/windows")
    assert status == 200
    target = next(w for w in free["windows"] if w["starts_at"] == "2026-03-12T13:00:00+09:00")

    status, body = await anna.post(
        f"/api/v1/operator/visits/{shown['id']}", {"action": "move", "window": target["id"]}
    )
    assert status == 200, body
    assert body["visit"]["starts_at"] == "2026-03-12T13:00:00+09:00"
    # The board follows: the old record closed by anna, a new one with the new time.
    old = await services.requests.board.get(1)
    new = await services.requests.board.get(body["visit"]["request_id"])
    assert old is not None
    assert new is not None
    assert (old.status, old.history[-1].by) == ("cancelled", "anna")
    assert new.details["window"].startswith("2026-03-12 13:00")
    assert new.phone is not None
    assert new.phone == old.phone  # the customer can still be called

    status, body = await anna.post(f"/api/v1/operator/visits/{shown['id']}", {"action": "cancel"})
    assert (status, body["visit"]["status"]) == (200, "cancelled")
    status, body = await anna.post(f"/api/v1/operator/visits/{shown['id']}", {"action": "cancel"})
    assert status == 409
    assert await system_lines(client, CONVERSATION) == [
        "Визит мастера перенесён оператором: чт, 12 марта, 13:00–15:00. Если это время неудобно, "
        "напишите «перенести мастера».",
        "Оператор отменил визит мастера (чт, 12 марта, 13:00–15:00). Если мастер всё ещё нужен, "
        "напишите «вызвать мастера».",
    ]


async def test_operator_move_validation(
    say: Say, services: Services, clock: Clock, operators: dict[str, OperatorClient]
) -> None:
    await book_thursday(say)
    anna = operators["anna"]
    path = "/api/v1/operator/visits/1"
    assert (await anna.post(path, {"action": "fly"}))[0] == 400
    assert (await anna.post(path, {"action": "move"}))[0] == 400
    assert (await anna.post(path, {"action": "move", "window": "2026-03-12T01:30:00+00:00"}))[
        0
    ] == 400
    assert (await anna.post(path, {"action": "move", "window": "2026-03-10T00:00:00+00:00"}))[
        0
    ] == 400
    assert (await anna.post("/api/v1/operator/visits/99", {"action": "cancel"}))[0] == 404


async def test_only_operators_and_only_with_csrf(
    say: Say, client: TestClient, services: Services, clock: Clock,
    operators: dict[str, OperatorClient],
) -> None:  # fmt: skip
    await book_thursday(say)
    path = "/api/v1/operator/visits/1"
    resp = await client.post(path, json={"action": "cancel"})
    assert resp.status == 401
    resp = await client.get("/api/v1/operator/visits")
    assert resp.status == 401
    status, _ = await operators["anna"].post(path, {"action": "cancel"}, csrf=False)
    assert status == 403
    assert services.visits is not None
    assert len(await services.visits.store.booked_of(CHITA)) == 1


async def test_openapi_describes_visits(client: TestClient) -> None:
    resp = await client.get("/api/v1/openapi.json")
    paths = (await resp.json())["paths"]
    assert "post" in paths["/api/v1/operator/visits/{visit_id}"]
