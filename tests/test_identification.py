"""Identification without a signed identity: contract number (or phone) + a one-time code to
the phone on file, stored as a revocable link."""

from __future__ import annotations

import json
import re

from bot.config import Settings
from bot.models import ConversationKey
from bot.services import Services
from tests.conftest import Say, buttons, texts


def last_code(settings: Settings) -> tuple[str, str]:
    """(destination, code) of the newest message the demo notifier wrote."""
    folder = settings.var_dir / "notifications"
    newest = max(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    record = json.loads(newest.read_text(encoding="utf-8"))
    match = re.search(r"\b(\d{6})\b", record["text"])
    assert match, record
    return record["to"], match.group(1)


async def test_contract_and_code_identify_and_answer_the_waiting_question(
    say: Say, services: Services, settings: Settings
) -> None:
    account = await services.billing.account("380300112233")
    assert account is not None
    first = await say("id-1", "какой у меня баланс")
    assert "/identify" in {b["payload"] for b in buttons(first)}
    assert "₽" not in texts(first)

    ask = await say("id-1", payload="/identify")
    assert "номер договора" in texts(ask)
    sent = await say("id-1", "договор 380300112233")
    destination, code = last_code(settings)
    assert destination == account.phone
    assert account.phone[-2:] in texts(sent)
    assert account.phone[2:8] not in texts(sent)  # the number is masked in the chat

    wrong = "000000" if code != "000000" else "111111"
    retry = await say("id-1", wrong)
    assert "Осталось попыток: 2" in texts(retry)
    done = await say("id-1", code)
    assert "вы вошли по договору 380300112233" in texts(done)
    assert "Баланс по договору 380300112233" in texts(done)  # the question asked before
    link = await services.store.identity(ConversationKey("rest", "id-1", "id-1"))
    assert link is not None
    assert (link.contract_number, link.method) == ("380300112233", "otp")


async def test_logout_revokes_the_link(say: Say, settings: Settings) -> None:
    await say("id-2", payload="/identify")
    await say("id-2", "380100123456")
    _, code = last_code(settings)
    await say("id-2", code)
    assert "₽" in texts(await say("id-2", "баланс"))
    out = await say("id-2", payload="/logout")
    assert "отвязан" in texts(out)
    assert "₽" not in texts(await say("id-2", "баланс"))


async def test_three_wrong_codes_void_the_code(say: Say, settings: Settings) -> None:
    await say("id-3", payload="/identify")
    await say("id-3", "270000111222")
    _, code = last_code(settings)
    wrong = "000000" if code != "000000" else "111111"
    await say("id-3", wrong)
    await say("id-3", wrong)
    locked = await say("id-3", wrong)
    assert "больше не действует" in texts(locked)
    late = await say("id-3", code)  # the right code is no longer accepted
    assert "вы вошли" not in texts(late)


async def test_unknown_contract_is_asked_again(say: Say, settings: Settings) -> None:
    await say("id-4", payload="/identify")
    answer = await say("id-4", "999999999999")
    assert "Не нашёл договор" in texts(answer)
    assert not (settings.var_dir / "notifications").exists()


async def test_identify_by_phone_on_file(say: Say, services: Services, settings: Settings) -> None:
    account = await services.billing.account("750012345678")
    assert account is not None
    await say("id-5", payload="/identify")
    local = "8" + account.phone[2:]
    await say("id-5", f"{local[:1]} ({local[1:4]}) {local[4:7]}-{local[7:9]}-{local[9:]}")
    destination, code = last_code(settings)
    assert destination == account.phone
    assert "750012345678" in texts(await say("id-5", code))
