"""Technician visits through the REST channel, with the visit clock fixed (tests.visits.conftest):
booking, a window filled meanwhile, capacity, no past windows, time zones, ask / move / cancel,
identification first."""

from __future__ import annotations

from datetime import timedelta

from bot.services import Services
from tests.conftest import Say, buttons, texts
from tests.visits.conftest import (
    CHITA,
    CHITA_2,
    CHITA_3,
    CHITA_4,
    KHABAROVSK,
    Clock,
    as_customer,
    visit_buttons,
)


async def book(say: Say, sender: str, contract: str, *, index: int = 0) -> dict[str, object]:
    """Ask for a visit with the problem in the message, pick a window, say «Да»."""
    windows = await as_customer(say, sender, contract, "нужен мастер, роутер не включается")
    pick = visit_buttons(windows, "pick")[index]
    offer = await as_customer(say, sender, contract, payload=pick["payload"])
    yes = visit_buttons(offer, "confirm")[0]
    return await as_customer(say, sender, contract, payload=yes["payload"])


async def test_happy_path_books_a_visit_on_the_board(
    say: Say, services: Services, clock: Clock
) -> None:
    first = await as_customer(say, "v-happy", CHITA, "вызовите мастера")
    assert "Что случилось" in texts(first)  # the message names no problem: asked
    windows = await as_customer(say, "v-happy", CHITA, "нет интернета, роутер мигает красным")
    assert "Выезд мастера: бесплатно" in texts(windows)
    titles = [b["title"] for b in visit_buttons(windows, "pick")]
    # Tuesday 12:00 in Chita: 13:00 starts within the hour a crew needs, so 15:00 is the first.
    assert titles[:3] == ["сегодня, 15:00–17:00", "сегодня, 17:00–19:00", "завтра, 09:00–11:00"]
    assert [b["title"] for b in visit_buttons(windows, "more")] == ["Другое время"]

    offer = await as_customer(
        say, "v-happy", CHITA, payload=visit_buttons(windows, "pick")[2]["payload"]
    )
    said = texts(offer)
    assert "Мастер придёт: завтра, 09:00–11:00" in said
    assert "Адрес: ул. Бутина, 10, кв. 5" in said
    assert "Проблема: нет интернета, роутер мигает красным" in said
    assert "Стоимость выезда: бесплатно" in said

    done = await as_customer(say, "v-happy", CHITA, "да")  # typed «да» confirms too
    assert "мастер записан" in texts(done)
    assert "Заявка № 1" in texts(done)
    record = await services.requests.board.get(1)
    assert record is not None
    assert (record.kind, record.status, record.contract) == ("visit", "new", CHITA)
    assert record.address == "ул. Бутина, 10, кв. 5"
    assert record.details["problem"] == "нет интернета, роутер мигает красным"
    assert record.details["window"] == "2026-03-11 09:00–11:00 (Asia/Chita)"


async def test_a_second_yes_books_once(say: Say, services: Services, clock: Clock) -> None:
    windows = await as_customer(say, "v-twice", CHITA, "нужен мастер, телевизор не показывает")
    offer = await as_customer(
        say, "v-twice", CHITA, payload=visit_buttons(windows, "pick")[0]["payload"]
    )
    yes = visit_buttons(offer, "confirm")[0]["payload"]
    await as_customer(say, "v-twice", CHITA, payload=yes)
    again = await as_customer(say, "v-twice", CHITA, payload=yes)
    assert "уже записаны" in texts(again)
    assert services.visits is not None
    assert len(await services.visits.store.booked_of(CHITA)) == 1
    assert len(await services.requests.board.find()) == 1


async def test_window_filled_between_offer_and_confirmation(
    say: Say, services: Services, clock: Clock
) -> None:
    # Chita has 3 crews. Three customers are offered the same window; two more book it first.
    offers = {}
    for sender, contract in (("v-a", CHITA), ("v-b", CHITA_2), ("v-c", CHITA_3), ("v-d", CHITA_4)):
        windows = await as_customer(say, sender, contract, "нужен мастер, интернет пропадает")
        pick = visit_buttons(windows, "pick")[0]
        offers[sender] = (
            contract,
            await as_customer(say, sender, contract, payload=pick["payload"]),
        )
    for sender in ("v-b", "v-c", "v-d"):
        contract, offer = offers[sender]
        done = await as_customer(
            say, sender, contract, payload=visit_buttons(offer, "confirm")[0]["payload"]
        )
        assert "мастер записан" in texts(done)
    contract, offer = offers["v-a"]
    late = await as_customer(
        say, "v-a", contract, payload=visit_buttons(offer, "confirm")[0]["payload"]
    )
    assert "только что занял другой клиент" in texts(late)
    fresh = [b["title"] for b in visit_buttons(late, "pick")]
    assert fresh
    assert "сегодня, 15:00–17:00" not in fresh
    assert fresh[0] == "сегодня, 17:00–19:00"
    assert services.visits is not None
    assert await services.visits.store.booked_of(CHITA) == []


async def test_capacity_of_a_window_is_its_crews(
    say: Say, services: Services, clock: Clock
) -> None:
    for sender, contract in (("c-1", CHITA_2), ("c-2", CHITA_3), ("c-3", CHITA_4)):
        await book(say, sender, contract)  # the first window, three times: Chita's 3 crews
    windows = await as_customer(say, "c-4", CHITA, "нужен мастер, кабель перебит")
    titles = [b["title"] for b in visit_buttons(windows, "pick")]
    assert titles[0] == "сегодня, 17:00–19:00"  # 15:00 is full
    # Two booked into 17:00 still leave it offered (3 crews).
    await book(say, "c-5", CHITA_2)
    again = await as_customer(say, "c-4", CHITA, "нужен мастер, кабель перебит")
    assert next(b["title"] for b in visit_buttons(again, "pick")) == "сегодня, 17:00–19:00"


async def test_no_past_windows_and_a_stale_button_is_refused(
    say: Say, services: Services, clock: Clock
) -> None:
    windows = await as_customer(say, "v-past", CHITA, "нужен мастер, розетку перенести")
    offer = await as_customer(
        say, "v-past", CHITA, payload=visit_buttons(windows, "pick")[0]["payload"]
    )
    clock.at += timedelta(hours=4)  # 16:00 in Chita: the 15:00 window has begun
    late = await as_customer(
        say, "v-past", CHITA, payload=visit_buttons(offer, "confirm")[0]["payload"]
    )
    assert "уже прошло" in texts(late)
    titles = [b["title"] for b in visit_buttons(late, "pick")]
    assert titles[0] == "завтра, 09:00–11:00"  # 17:00 starts within the hour: not offered
    # Late evening: nothing of today is left.
    clock.at += timedelta(hours=4)
    evening = await as_customer(say, "v-past2", CHITA_2, "нужен мастер, роутер не включается")
    assert all("сегодня" not in b["title"] for b in visit_buttons(evening, "pick"))


async def test_khabarovsk_customer_sees_khabarovsk_time(
    say: Say, services: Services, clock: Clock
) -> None:
    # 03:00 UTC is 13:00 in Khabarovsk (UTC+10): 15:00 is the first window there.
    windows = await as_customer(say, "v-khv", KHABAROVSK, "нужен мастер, нет сигнала на ТВ")
    said = texts(windows)
    assert "Выезд мастера: 300,00 ₽" in said or "300" in said
    titles = [b["title"] for b in visit_buttons(windows, "pick")]
    assert titles[0] == "сегодня, 15:00–17:00"
    assert titles[2] == "завтра, 09:00–11:00"
    pick = visit_buttons(windows, "pick")[0]["payload"]
    assert '"window":"2026-03-10T05:00:00+00:00"' in pick  # 15:00 Khabarovsk in UTC


async def test_ask_move_and_cancel(say: Say, services: Services, clock: Clock) -> None:
    booked = await book(say, "v-amc", CHITA)
    assert "сегодня, 15:00–17:00" in texts(booked)
    asked = await as_customer(say, "v-amc", CHITA, "когда придет мастер?")
    assert "Вы записаны к мастеру" in texts(asked)
    assert "сегодня, 15:00–17:00" in texts(asked)

    move = await as_customer(
        say, "v-amc", CHITA, payload=visit_buttons(asked, "move")[0]["payload"]
    )
    assert "прежнее освободится" in texts(move)
    titles = [b["title"] for b in visit_buttons(move, "pick")]
    assert "сегодня, 15:00–17:00" not in titles  # its own window is not a choice
    offer = await as_customer(
        say, "v-amc", CHITA, payload=visit_buttons(move, "pick")[1]["payload"]
    )
    assert "Новое время: завтра, 09:00–11:00" in texts(offer)
    moved = await as_customer(
        say, "v-amc", CHITA, payload=visit_buttons(offer, "confirm")[0]["payload"]
    )
    assert "визит перенесён" in texts(moved)
    assert services.visits is not None
    (visit,) = await services.visits.store.booked_of(CHITA)
    assert visit.starts_at.isoformat() == "2026-03-11T00:00:00+00:00"
    # The board: the old record closed, a new one names the new time and the one it replaces.
    old, new = await services.requests.board.get(1), await services.requests.board.get(2)
    assert old is not None
    assert new is not None
    assert old.status == "cancelled"
    assert (new.status, new.details["moved_from"]) == ("new", 1)
    assert new.details["window"].startswith("2026-03-11 09:00")
    # The old window is free again.
    other = await as_customer(say, "v-amc2", CHITA_2, "нужен мастер, роутер не включается")
    assert visit_buttons(other, "pick")[0]["title"] == "сегодня, 15:00–17:00"

    cancel = await as_customer(say, "v-amc", CHITA, "отмените мастера")
    cancelled = await as_customer(
        say, "v-amc", CHITA, payload=visit_buttons(cancel, "cancel")[0]["payload"]
    )
    assert "отменён" in texts(cancelled)
    assert await services.visits.store.booked_of(CHITA) == []
    record = await services.requests.board.get(2)
    assert record is not None
    assert record.status == "cancelled"
    nothing = await as_customer(say, "v-amc", CHITA, "когда придет мастер?")
    assert "нет записи" in texts(nothing)


async def test_another_customers_visit_cannot_be_cancelled(
    say: Say, services: Services, clock: Clock
) -> None:
    await book(say, "v-own", CHITA)
    forged = await as_customer(
        say, "v-forge", CHITA_2, payload='/technician_visit{"step":"cancel","visit":1}'
    )
    assert "Не нашёл этого визита" in texts(forged)
    assert services.visits is not None
    assert len(await services.visits.store.booked_of(CHITA)) == 1


async def test_unidentified_customer_identifies_first(
    say: Say, services: Services, clock: Clock
) -> None:
    answer = await say("v-anon", "нужен мастер")
    assert any(b["payload"] == "/identify" for b in buttons(answer))
    assert services.visits is not None
    assert (
        await services.visits.store.booked_between(None, clock.at, clock.at + timedelta(days=30))
        == []
    )


async def test_problem_from_a_troubleshooting_button(
    say: Say, services: Services, clock: Clock
) -> None:
    payload = '/technician_visit{"problem":"нет интернета: роутер не включается"}'
    windows = await as_customer(say, "v-tree", CHITA, payload=payload)
    offer = await as_customer(
        say, "v-tree", CHITA, payload=visit_buttons(windows, "pick")[0]["payload"]
    )
    assert "Проблема: нет интернета: роутер не включается" in texts(offer)


async def test_no_thanks_books_nothing(say: Say, services: Services, clock: Clock) -> None:
    windows = await as_customer(say, "v-no", CHITA, "нужен мастер, роутер не включается")
    await as_customer(say, "v-no", CHITA, payload=visit_buttons(windows, "pick")[0]["payload"])
    no = await as_customer(say, "v-no", CHITA, "нет")
    assert "не записываю" in texts(no)
    assert services.visits is not None
    assert await services.visits.store.booked_of(CHITA) == []
