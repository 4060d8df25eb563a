"""Command line: ``python -m bot run | chat | nlu predict | nlu eval | operators …``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from bot.billing import BillingUnavailable
from bot.catalog.csv_rows import CatalogError
from bot.config import ConfigError, Settings
from bot.dialog.flows import FlowError
from bot.handoff.operators import add_operator_commands
from bot.i18n import LocaleError
from bot.intents.classifier import LinearIntentClassifier, TrainingDataError
from bot.intents.names import INTENTS, REFINES
from bot.models import ConversationKey, Inbound, Location, RenderedReply, Text
from bot.nlu_eval import EvalFileError


class UsageError(ValueError):
    """A command-line argument that is well-formed but wrong (an unknown contract)."""


STARTUP_ERRORS = (
    CatalogError, ConfigError, FlowError, LocaleError, TrainingDataError, EvalFileError, UsageError,
    OSError,
)  # fmt: skip


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    if getattr(args, "data", None):
        settings = replace(settings, data_dir=Path(args.data))
    if getattr(args, "host", None):
        settings = replace(settings, host=args.host)
    if getattr(args, "port", None):
        settings = replace(settings, port=args.port)
    return settings


def _setup_logging(level: str) -> None:
    from bot import log_noise, log_privacy

    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    log_privacy.install()  # phones, e-mails, contracts, codes, names and tokens masked everywhere
    log_noise.install()  # a stranger's malformed request is one INFO line, not a traceback


# --- run ---------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from bot.app import create_app

    settings = _settings(args)
    _setup_logging(settings.log_level)
    if args.workers != 1:  # a supervisor of N children (bot/workers.py); it serves nothing
        from bot.workers import supervise

        return supervise(settings, args.workers, data=args.data)
    app = create_app(settings)
    asyncio.run(_serve(app, settings))
    return 0


# After the drain (bot/shutdown.py) only requests already answered with 503 or reading along
# the console may be open: how long aiohttp waits for them before closing the connections.
CLOSE_CONNECTIONS_SECONDS = 2.0


async def _serve(app: web.Application, settings: Settings) -> None:
    """Bind first, then announce: the URLs printed are ones that answer. SIGTERM or SIGINT
    drains (bot/shutdown.py) before the services close."""
    from bot.app import SERVICES
    from bot.shutdown import drain
    from bot.workers import WORKER_INDEX_ENV

    # A child of --workers shares the port with its siblings; a lone process binds it alone.
    reuse_port = True if WORKER_INDEX_ENV in os.environ else None

    runner = web.AppRunner(app, shutdown_timeout=CLOSE_CONNECTIONS_SECONDS)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port).start()
        base = f"http://{settings.host}:{settings.port}"
        print(f"Gateway on {base} (catalog: {settings.data_dir}, store: {settings.sqlite_path})")
        for path, what in (
            ("/", "demo page with the chat widget"),
            ("/operator/", "operator console"),
            ("/api/v1/messages", "REST channel (POST)"),
            ("/api/v1/openapi.json", "OpenAPI description"),
            ("/healthz", "health"),
            ("/metrics", "Prometheus metrics"),
        ):
            print(f"  {base}{path}  {what}")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        # A second signal while draining changes nothing: the deadline already bounds it.
        await drain(app[SERVICES], settings.shutdown_timeout)
    finally:
        await runner.cleanup()


# --- chat --------------------------------------------------------------------------------
def _print_replies(
    replies: tuple[RenderedReply, ...], out: list[str], files_folder: Path | None = None
) -> None:
    out.clear()
    for reply in replies:
        print(reply.text)
        for ref in reply.attachments:  # a document sent in the chat: where to open it
            where = f" — {files_folder / (ref.file_id + '.bin')}" if files_folder else ""
            print(f"  📎 {ref.name}{where}")
        for number, button in enumerate(reply.buttons, start=1 + len(out)):
            print(f"  [{number}] {button.title}")
        out.extend(b.payload for b in reply.buttons)
        print()
    sys.stdout.flush()


def _inbound(key: ConversationKey, line: str, buttons: list[str], locale: str) -> Inbound:
    message_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    if line.isdigit() and 1 <= int(line) <= len(buttons):
        return Inbound(key, message_id, "payload", payload=buttons[int(line) - 1], locale=locale,
                       received_at=now)  # fmt: skip
    if line.startswith("/geo "):
        parts = line.split()
        if len(parts) == 3:
            loc = Location(float(parts[1].rstrip(",")), float(parts[2]))
            return Inbound(
                key, message_id, "location", location=loc, locale=locale, received_at=now
            )
    if line.startswith("/") and len(line) > 1 and " " not in line.split("{")[0]:
        return Inbound(key, message_id, "payload", payload=line, locale=locale, received_at=now)
    return Inbound(key, message_id, "text", text=line, locale=locale, received_at=now)


async def _chat(settings: Settings, contract: str | None, locale: str) -> int:
    from bot.services import build_services

    services = build_services(settings)
    try:
        known = not contract or await services.billing.account(contract) is not None
    except BillingUnavailable as exc:
        await services.close()
        raise UsageError(f"--contract {contract}: the billing does not answer ({exc})") from None
    if not known:
        await services.close()
        raise UsageError(f"--contract {contract}: no such contract in {settings.data_dir}")
    key = ConversationKey("cli", uuid.uuid4().hex[:12], "local")
    interactive = sys.stdin.isatty()
    buttons: list[str] = []
    if interactive:
        print(
            services.translator.render(services.translator.resolve_locale(locale), Text("cli.hint"))
        )
    try:
        while True:
            if interactive:
                try:
                    line = await asyncio.to_thread(input, "> ")
                except EOFError:
                    break
            else:
                raw = sys.stdin.readline()
                if not raw:
                    break
                line = raw.rstrip("\n")
                if line.strip():
                    print(f"> {line.strip()}")  # a transcript: who said what
            line = line.strip()
            if not line:
                continue
            try:
                inbound = _inbound(key, line, buttons, locale)
            except ValueError:
                inbound = Inbound(key, uuid.uuid4().hex, "text", text=line, locale=locale)
            handled = await services.gateway.handle(inbound, contract_number=contract)
            folder = getattr(services.files, "folder", None)
            _print_replies(handled.replies, buttons, folder if isinstance(folder, Path) else None)
    finally:
        await services.close()
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _setup_logging("WARNING")
    return asyncio.run(_chat(settings, args.contract, args.locale))


# --- retention ---------------------------------------------------------------------------
async def _retention(settings: Settings, days: int | None, dry_run: bool) -> int:
    from bot.retention import build_retention
    from bot.services import build_services

    services = build_services(settings)
    try:
        retention = build_retention(services, days=days)
        if retention is None:
            raise UsageError("set BOT_RETENTION_DAYS or give --days N: nothing is deleted")
        result = await retention.run(dry_run=dry_run)
    finally:
        await services.close()
    verb = "would delete" if dry_run else "deleted"
    print(f"retention {retention.days} days (before {result.cutoff:%Y-%m-%d %H:%M} UTC): {verb}")
    for kind, count in result.counts.items():
        print(f"  {kind:<18} {count}")
    if result.failed:
        print(f"failed (see the log): {', '.join(result.failed)}", file=sys.stderr)
    return 1 if result.failed else 0


def cmd_retention_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _setup_logging("WARNING")
    if args.days is not None and args.days < 1:
        raise UsageError("--days must be at least 1")
    return asyncio.run(_retention(settings, args.days, args.dry_run))


# --- nlu ---------------------------------------------------------------------------------
def _nlu(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from bot.catalog.catalog import load_catalog
    from bot.services import build_nlu

    settings = _settings(args)
    catalog = load_catalog(settings.data_dir)
    return build_nlu(catalog, flows_dir=settings.flows_dir, threshold=settings.nlu_threshold)


def cmd_nlu_predict(args: argparse.Namespace) -> int:
    nlu = _nlu(args)
    for raw in sys.stdin:
        text = raw.rstrip("\n")
        if not text.strip():
            continue
        result = nlu.understand(text)
        print(json.dumps(result.as_json(), ensure_ascii=False), flush=True)
    return 0


def cmd_nlu_eval(args: argparse.Namespace) -> int:
    from bot.nlu_eval import evaluate, fold_refined, read_tsv

    test = read_tsv(Path(args.file))
    texts = [ex.text for ex in test]
    if args.train:
        train = read_tsv(Path(args.train))
        print(f"trained on {len(train)} examples from {args.train}")
        classifier = LinearIntentClassifier(train)
        predicted = [m.name for m in classifier.classify_many(texts)]
    else:
        unknown = sorted({ex.intent for ex in test} - set(INTENTS))
        if unknown:
            raise EvalFileError(f"{args.file}: unknown intent(s) {', '.join(unknown)} (INTENTS.md)")
        nlu = _nlu(args)
        results = [nlu.understand(t) for t in texts]
        predicted = [r.intent for r in results]
    gold = [ex.intent for ex in test]
    raw = evaluate(gold, predicted)
    predicted, folded = fold_refined(gold, predicted)
    report = evaluate(gold, predicted)
    print(report.render())
    if folded:
        # A file labelled before these intents existed: say so, and what it scores unfolded.
        print(
            f"\nthis file has no {', '.join(folded)} label: counted as "
            f"{', '.join(REFINES[f] for f in folded)} (accuracy unfolded {raw.accuracy:.4f})"
        )
    if not args.train:
        # What the customer experiences: below the threshold the bot asks to rephrase.
        answered = [nlu.understood(r) for r in results]
        right = [a and p == ex.intent for a, p, ex in zip(answered, predicted, test, strict=True)]
        wrong = sum(answered) - sum(right)
        print(
            f"\nat the calibrated threshold {nlu.threshold:.2f}: answered {sum(answered)} "
            f"({sum(answered) / len(test):.1%}), of them wrong {wrong}; "
            f"asked to rephrase or sent to out_of_scope {len(test) - sum(answered)}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start the gateway")
    run.add_argument("--data", help="catalog directory (DATA_FORMAT.md); default: the demo")
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.add_argument(
        "--workers", type=int, default=1,
        help="N gateway processes sharing the port (Linux; needs REDIS_URL): docs/deploy.md",
    )  # fmt: skip
    run.set_defaults(func=cmd_run)

    chat = sub.add_parser("chat", help="talk to the bot in the terminal (scriptable from stdin)")
    chat.add_argument("--data", help="catalog directory")
    chat.add_argument("--contract", help="act as the identified customer of this contract")
    chat.add_argument("--locale", default="ru", choices=("ru", "en"), help="language of the bot")
    chat.set_defaults(func=cmd_chat)

    nlu = sub.add_parser("nlu", help="intent recognition tools")
    nlu_sub = nlu.add_subparsers(dest="nlu_command", required=True)
    predict = nlu_sub.add_parser("predict", help="stdin lines -> JSON predictions")
    predict.add_argument("--data", help="catalog directory (for city names)")
    predict.set_defaults(func=cmd_nlu_predict)
    ev = nlu_sub.add_parser("eval", help="score a labelled TSV file (intent<TAB>text)")
    ev.add_argument("file")
    ev.add_argument("--train", help="train the same pipeline on this TSV instead of flows/")
    ev.add_argument("--data", help="catalog directory")
    ev.set_defaults(func=cmd_nlu_eval)
    retention = sub.add_parser("retention", help="delete data older than BOT_RETENTION_DAYS")
    retention_sub = retention.add_subparsers(dest="retention_command", required=True)
    sweep = retention_sub.add_parser("run", help="one retention run now (it also runs daily)")
    sweep.add_argument("--days", type=int, help="instead of BOT_RETENTION_DAYS")
    sweep.add_argument("--dry-run", action="store_true", help="count only, delete nothing")
    sweep.add_argument("--data", help="catalog directory")
    sweep.set_defaults(func=cmd_retention_run)
    add_operator_commands(sub)  # operators add | list | passwd | disable | enable | remove
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except STARTUP_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
