"""How many account requests the bot closes without a person (containment), per intent.

    .venv/bin/python benchmarks/selfservice_containment.py [--messages FILE ...]

Every labelled message of an account intent (promised payment, pause, tariff change, services,
unblocking, autopay, contacts, notifications, invoice) in the given TSV files (default: the
shared dev set and our independent holdout) is sent by an identified customer of the demo
catalog, on a fresh ledger, through the real gateway. The customer then behaves like a
cooperative person: answers a question the bot asks (dates, which tariff, the new e-mail, the
code) and says «да» to an offer. A conversation is *contained* when it ends with the bot having
done or answered it — never in the operator queue, never "не понял". The same messages are
also run with the account actions switched off (each such flow handing off, as before this
capability existed) as the baseline of the same run.

This is a measurement, not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.catalog.catalog import load_catalog  # noqa: E402
from bot.config import DEMO_CATALOG, Settings  # noqa: E402
from bot.models import ConversationKey, Inbound, RenderedReply  # noqa: E402
from bot.services import Services, build_nlu, build_services  # noqa: E402

ACCOUNT_INTENTS = {
    "promised_payment": "750045678924",  # blocked, -450 ₽
    "unblock_account": "750045678924",
    "suspend_service": "750012345678",  # active
    "change_tariff": "750012345678",
    "add_service": "750012345678",
    "autopay": "750012345691",  # autopay on
    "change_contacts": "750012345678",
    "notification_settings": "750012345678",
    "invoice": "750045678924",
}
# What a cooperative customer answers when the bot asks (slot name → answer).
ANSWERS = {"dates": "с 10 по 25 декабря", "contact": "new.mail@example.ru", "code": None}
DEFAULT_FILES = (
    ROOT.parent / "shared" / "data" / "intents_dev.tsv",
    ROOT / "benchmarks" / "data" / "nlu_holdout.tsv",
)


@dataclass
class Outcome:
    contained: bool
    how: str  # "done", "answered", "queue", "not_understood", "stuck"


async def _converse(services: Services, text: str, contract: str, var_dir: Path) -> Outcome:
    key = ConversationKey("bench", uuid.uuid4().hex[:10], "u")
    gateway = services.gateway
    replies: tuple[RenderedReply, ...] = ()
    message = text
    for _ in range(6):  # a few exchanges at most
        inbound = Inbound(key, uuid.uuid4().hex, "text", text=message)
        handled = await gateway.handle(inbound, contract_number=contract)
        replies = handled.replies
        if handled.conversation.state != "bot":
            return Outcome(False, "queue")
        dialog = handled.conversation.dialog
        offered = [b["payload"] for b in dialog.get("offered") or []]
        said = "\n".join(r.text for r in replies)
        if "Не совсем понял" in said or "не понял" in said.lower():
            return Outcome(False, "not_understood")
        if any(p.startswith("/confirm") for p in offered):
            message = "да"
            continue
        pending = dialog.get("pending")
        if pending is None:
            log = await services.oplog.for_contract(contract)
            done = any(r.conversation_id == key.id and r.status == "done" for r in log)
            sent_file = any(r.attachments for r in replies)
            return Outcome(True, "done" if done or sent_file else "answered")
        if pending == "code":
            notes = sorted((var_dir / "notifications").glob("*.json"))
            record = json.loads(notes[-1].read_text(encoding="utf-8"))
            message = next(w.rstrip(".") for w in record["text"].split() if w.rstrip(".").isdigit())
        elif ANSWERS.get(pending):
            message = str(ANSWERS[pending])
        elif offered:
            message = "1"  # the first suggested button (a tariff)
        else:
            return Outcome(False, "stuck")
    return Outcome(False, "stuck")


def _load(files: list[Path]) -> list[tuple[str, str]]:
    out = []
    for path in files:
        with path.open(encoding="utf-8") as f:
            for row in csv.reader(f, delimiter="\t"):
                if len(row) >= 2 and row[0] in ACCOUNT_INTENTS:
                    out.append((row[0], row[1]))
    return out


async def _run(files: list[Path], *, baseline: bool) -> dict[str, Counter[str]]:
    results: dict[str, Counter[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        flows = ROOT / "flows"
        if baseline:
            flows = Path(tmp) / "flows"
            _baseline_flows(flows)
        nlu = build_nlu(load_catalog(DEMO_CATALOG), flows_dir=flows)
        for number, (intent, text) in enumerate(_load(files)):
            # Each customer starts from the demo state: a fresh ledger and store.
            var_dir = Path(tmp) / f"var-{number}"
            settings = replace(Settings(), var_dir=var_dir, flows_dir=flows)
            services = build_services(settings, nlu=nlu)
            try:
                outcome = await _converse(services, text, ACCOUNT_INTENTS[intent], var_dir)
            finally:
                await services.close()
            results.setdefault(intent, Counter())[outcome.how] += 1
            if not outcome.contained and not baseline:
                print(f"  not contained ({outcome.how}): {intent}: {text}")
    return results


def _baseline_flows(target: Path) -> None:
    """Our flows with every account action replaced by a hand-off (how it was before)."""
    import shutil

    import yaml

    shutil.copytree(ROOT / "flows", target)
    data = yaml.safe_load((target / "dialog.yml").read_text(encoding="utf-8"))
    for name, flow in data["flows"].items():
        intents = flow.get("intents", [])
        intents = [intents] if isinstance(intents, str) else intents
        if set(intents) & set(ACCOUNT_INTENTS) or name in ("confirm", "decline"):
            data["flows"][name] = {
                "intents": flow["intents"], "reply": "handoff.queued", "handoff": "billing",
                **({"payload_only": True} if flow.get("payload_only") else {}),
            }  # fmt: skip
    (target / "dialog.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def _report(title: str, results: dict[str, Counter[str]]) -> tuple[int, int]:
    print(f"\n{title}")
    print(f"{'intent':24} {'msgs':>5} {'contained':>10}   outcomes")
    total = contained = 0
    for intent in ACCOUNT_INTENTS:
        counts = results.get(intent, Counter())
        n = sum(counts.values())
        ok = counts["done"] + counts["answered"]
        total += n
        contained += ok
        share = f"{ok / n:.0%}" if n else "—"
        detail = ", ".join(f"{k} {v}" for k, v in counts.most_common())
        print(f"{intent:24} {n:5d} {share:>10}   {detail}")
    print(f"{'all':24} {total:5d} {contained / total if total else 0:>10.1%}")
    return contained, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=Path, nargs="*", default=list(DEFAULT_FILES))
    args = parser.parse_args()
    files = [p for p in args.messages if p.exists()]
    print("messages from:", ", ".join(str(p) for p in files))
    now = asyncio.run(_run(files, baseline=False))
    before = asyncio.run(_run(files, baseline=True))
    _report("baseline (every account request handed to a person):", before)
    _report("self-service:", now)


if __name__ == "__main__":
    main()
