"""Wiring: builds every backend from ``Settings`` once, for the server and the terminal chat."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from bot.abuse import EXTRA as ABUSE
from bot.abuse import AbuseLimits, attach_abuse
from bot.billing import Billing
from bot.billing.ledger import ledger_path, open_ledger
from bot.billing.redis_ledger import RedisLedgerStorage
from bot.catalog.catalog import Catalog, load_catalog
from bot.channels.base import Channel
from bot.channels.registry import ChannelDeps, build_channels
from bot.channels.widget_relay import attach_relay
from bot.config import ConfigError, Settings
from bot.dialog.actions import ACTIONS
from bot.dialog.actions.callback import DEPARTMENTS, departments_lookup
from bot.dialog.actions.invoice import FILES, INVOICE_LABELS, MONEY
from bot.dialog.actions.troubleshoot import TROUBLESHOOTING, load_trees
from bot.dialog.engine import INFORM, MENU, DialogEngine
from bot.dialog.flows import DialogConfig, load_dialog
from bot.dialog.slots import HINTS, SUGGESTERS, VALIDATORS
from bot.files import files_folder
from bot.gateway import Gateway, register_metrics
from bot.handoff.audit import AuditLog, open_audit_log
from bot.handoff.config import load_handoff_config
from bot.handoff.events import EventHub
from bot.handoff.operators import OperatorStore, open_operator_store
from bot.handoff.presence import RedisPresence
from bot.handoff.redis_events import RedisEventHub
from bot.handoff.service import HandoffService
from bot.handoff.service import register_metrics as register_handoff_metrics
from bot.i18n import LocaleError, Translator, load_translator
from bot.ingress import Ingress
from bot.ingress import register_metrics as register_ingress_metrics
from bot.intents.classifier import LinearIntentClassifier, load_examples
from bot.intents.entities import EntityExtractor
from bot.intents.names import INTENTS
from bot.intents.nlu import Nlu
from bot.leases import REDIS_OPTIONS as LEASE_REDIS_OPTIONS
from bot.leases import Leases
from bot.metrics import Metrics
from bot.models import Text
from bot.notify import FileNotifier
from bot.outages.csv_file import load_outages
from bot.outages.lookup import OUTAGES
from bot.outages.notices import OutageNotices
from bot.outages.redis_store import RedisOutageStore
from bot.outages.service import OutageService
from bot.outages.store import OutageStore, SqliteOutageStore
from bot.outbox import Outbox
from bot.outbox import register_metrics as register_outbox_metrics
from bot.requests.desk import REQUESTS, RequestDesk, notice_keys
from bot.requests.redis_board import RedisRequestBoard
from bot.requests.sqlite import SqliteRequestBoard
from bot.requests.store import RequestBoard
from bot.requests.webhook import RequestWebhook
from bot.retention import Retention, build_retention
from bot.selfservice.invoice import INVOICE_LABEL_KEYS
from bot.selfservice.notices import CustomerNotices
from bot.selfservice.oplog import OperationLog, SqliteOperationLog
from bot.selfservice.redis_oplog import RedisOperationLog
from bot.selfservice.service import AccountActions
from bot.storage.base import Locks, Store
from bot.storage.files import FileStore, FilesystemFileStore
from bot.storage.health import StoreHealth
from bot.storage.memory_locks import MemoryLocks
from bot.storage.redis.client import connect_from_settings, limits_uri
from bot.storage.redis.files import RedisFileStore
from bot.storage.redis.locks import RedisLocks
from bot.storage.redis.store import RedisStore
from bot.storage.redis.streams import WorkConfig
from bot.storage.sqlite import SqliteStore
from bot.visits.redis_store import RedisVisitStore
from bot.visits.schedule import load_visit_slots
from bot.visits.service import VISITS, VisitService
from bot.visits.store import SqliteVisitStore, VisitStore

log = logging.getLogger(__name__)


def build_nlu(catalog: Catalog, *, flows_dir: Path, threshold: float | None = None) -> Nlu:
    """Train and calibrate on ``flows/nlu`` (under a second); ``threshold`` overrides the
    calibrated one (BOT_NLU_THRESHOLD)."""
    examples = load_examples(flows_dir / "nlu")
    classifier = LinearIntentClassifier.trained(examples)
    calibration = classifier.calibration
    log.info(
        "intent model: %d examples, cross-validated accuracy %.3f, temperature %.2f, "
        "threshold %.2f", len(examples), calibration.cv_accuracy, calibration.temperature,
        calibration.threshold,
    )  # fmt: skip
    extractor = EntityExtractor(list(catalog.cities.values()))
    return Nlu(
        classifier=classifier,
        extractor=extractor,
        threshold=calibration.threshold if threshold is None else threshold,
    )


def build_dialog(flows_dir: Path, translator: Translator) -> DialogConfig:
    return load_dialog(
        flows_dir / "dialog.yml",
        intents=(*INTENTS, INFORM, MENU),
        actions=ACTIONS.keys(),
        validators=VALIDATORS.keys(),
        suggesters=SUGGESTERS.keys(),
        hints=HINTS.keys(),
        messages=translator.catalogs["ru"].keys(),
    )


def build_billing(
    settings: Settings,
    catalog: Catalog,
    translator: Translator,
    redis: Redis | None = None,
    health: StoreHealth | None = None,
) -> Billing:
    """``BILLING_URL`` set: the provider's billing through the HTTP bridge; otherwise the embedded
    ledger seeded from the catalog (its CSV files are checked here, at start-up), in ``redis``
    when given (one ledger for every process), else in a SQLite file."""
    if settings.billing_url:
        from bot.billing.http import http_billing_from_settings

        remote = http_billing_from_settings(settings)
        if remote is not None:
            return remote
    locale = settings.default_locale
    return open_ledger(
        settings.data_dir,
        catalog,
        path=ledger_path(settings.var_dir, settings.data_dir),
        storage=RedisLedgerStorage(redis, health=health) if redis is not None else None,
        describe=lambda kind: translator.render(locale, Text(f"ledger.{kind}")),
    )


def build_requests(
    settings: Settings,
    events: EventHub,
    redis: Redis | None = None,
    health: StoreHealth | None = None,
) -> tuple[RequestDesk, RequestWebhook | None]:
    """The request board (in ``redis`` when given, its outages reported to ``health``, else
    under ``./var/``) and, with ``REQUESTS_WEBHOOK_URL``, its CRM mirror."""
    url, secret = settings.requests_webhook_url, settings.requests_webhook_secret
    if url and not secret:
        raise ConfigError("REQUESTS_WEBHOOK_URL is set: set REQUESTS_WEBHOOK_SECRET as well")
    board: RequestBoard = (
        RedisRequestBoard(redis, webhooks=bool(url), health=health)
        if redis is not None
        else SqliteRequestBoard(settings.var_dir / "requests.sqlite3", webhooks=bool(url))
    )
    webhook = RequestWebhook(board=board, url=url, secret=secret) if url and secret else None
    desk = RequestDesk(
        board=board, events=events, wake_webhook=webhook.notify if webhook else lambda: None
    )
    return desk, webhook


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    billing: Billing
    store: Store
    locks: Locks
    translator: Translator
    nlu: Nlu
    engine: DialogEngine
    metrics: Metrics
    gateway: Gateway
    outbox: Outbox
    ingress: Ingress
    channels: dict[str, Channel]
    operators: OperatorStore
    handoff: HandoffService
    files: FileStore  # files sent to customers (invoices)
    account_actions: AccountActions  # promised payment, pause … for the bot and the console
    oplog: OperationLog
    notices: CustomerNotices  # messages outside a turn (payment received)
    requests: RequestDesk  # leads, call-backs … that people act on
    requests_webhook: RequestWebhook | None = None  # their mirror in the provider's CRM
    outages: OutageService | None = None  # outages and planned works (bot/outages)
    visits: VisitService | None = None  # technician visits and their reminders (bot/visits)
    audit: AuditLog | None = None  # what operators did (bot/handoff/audit.py), for supervisors
    abuse: AbuseLimits | None = None  # limits across conversations (bot/abuse.py), maybe on Redis
    retention: Retention | None = None  # BOT_RETENTION_DAYS: old data deleted daily (start())
    leases: Leases | None = None  # long polling in one process at a time (REDIS_URL)
    redis: Redis | None = None  # the one client every Redis-backed part shares (REDIS_URL)

    async def start(self) -> None:
        """Background work: channels (long polling), unanswered inbounds, unsent replies."""
        for channel in self.channels.values():
            await channel.start()
        await self.ingress.start()
        await self.outbox.start()
        await self.handoff.start()
        if self.outages is not None:
            await self.outages.start()
        # Requests older versions kept in the conversation store: taken over once, so none is
        # lost (and the CRM hears of them too).
        imported = await self.requests.board.import_legacy(await self.store.requests())
        if imported:
            log.info("request board: %d earlier requests taken over", imported)
        if self.requests_webhook is not None:
            await self.requests_webhook.start()
        if self.visits is not None:
            await self.visits.start()
        self.retention = build_retention(self)  # after the take-over above: nothing is lost
        if self.retention is not None:
            await self.retention.start()

    async def close(self) -> None:
        if self.retention is not None:
            await self.retention.close()
        if self.visits is not None:
            await self.visits.close()
        if self.outages is not None:
            await self.outages.close()
            await self.outages.store.close()
        await self.handoff.close()
        if self.requests_webhook is not None:
            await self.requests_webhook.close()
        await self.requests.board.close()
        for channel in self.channels.values():
            await channel.close()  # a poller still holding its lease releases it here
        if self.leases is not None:
            await self.leases.aclose()
        await self.ingress.close()
        await self.outbox.close()
        await self.locks.close()
        await self.operators.close()
        if self.audit is not None:
            await self.audit.close()
        if self.abuse is not None:
            await self.abuse.aclose()
        await self.billing.close()
        await self.oplog.close()
        await self.store.close()
        await self.handoff.events.close()
        if self.redis is not None:
            await self.redis.aclose()  # last: every Redis-backed part above used it


def build_services(settings: Settings, *, nlu: Nlu | None = None) -> Services:
    """Load and check everything up front: a broken catalog, flow or locale stops start-up with
    a message naming the file, instead of failing later in a customer's conversation.

    ``nlu`` lets tests share one trained model between many short-lived service sets."""
    translator = load_translator(settings.locales_dir)
    lacking = [key for key in notice_keys() if key not in translator.catalogs["ru"]]
    if lacking:
        raise LocaleError(f"{settings.locales_dir}: no message for {', '.join(lacking)}")
    dialog = build_dialog(settings.flows_dir, translator)
    messages = translator.catalogs["ru"].keys()
    trees = load_trees(settings.flows_dir / "troubleshooting.yml", messages=messages)
    catalog = load_catalog(settings.data_dir)
    known_outages = load_outages(settings.data_dir, catalog)  # checked at start-up, file:line
    if nlu is None:
        nlu = build_nlu(catalog, flows_dir=settings.flows_dir, threshold=settings.nlu_threshold)
    # One client (one connection pool) for every Redis-backed part; None: embedded defaults.
    redis = connect_from_settings(settings)  # REDIS_URL or REDIS_SENTINELS
    # One store every process shares on Redis; without it the embedded SQLite file.
    store: Store = (
        RedisStore(redis) if redis is not None else SqliteStore(path=settings.sqlite_path)
    )
    billing = build_billing(settings, catalog, translator, redis, store.health)
    # On Redis every process serves every file (bot/storage/redis/files.py); its failures count
    # against the store's health, so a file that cannot be kept refuses the request with 503.
    files: FileStore = (
        RedisFileStore(redis, store.health)
        if redis is not None
        else FilesystemFileStore(files_folder(settings))
    )
    metrics = Metrics()
    # On Redis every process shares each conversation's lock, inbox and outbox (issue 11).
    locks: Locks = (
        RedisLocks(redis, ttl=settings.conversation_lease_ttl, metrics=metrics)
        if redis is not None
        else MemoryLocks()
    )
    work = (
        WorkConfig(redis, lease_ttl=settings.conversation_lease_ttl, metrics=metrics)
        if redis is not None
        else None
    )
    register_metrics(metrics)
    register_outbox_metrics(metrics)
    register_ingress_metrics(metrics)
    store.health.attach(metrics)  # store_failing, store_errors_total
    abuse = AbuseLimits(  # across conversations, and across processes on REDIS_URL
        metrics=metrics, secret=settings.identity_secret, storage_uri=limits_uri(settings)
    )
    notifier = FileNotifier(folder=settings.var_dir / "notifications")
    # With Redis, the records every process must share live there (bot/*/redis_*.py).
    oplog: OperationLog = (
        RedisOperationLog(redis, health=store.health)
        if redis is not None
        else SqliteOperationLog(settings.var_dir / "operations.sqlite3")
    )
    account_actions = AccountActions(billing=billing, catalog=catalog, oplog=oplog, locks=locks)
    outage_store: OutageStore = (
        RedisOutageStore(redis, catalog=catalog, health=store.health)
        if redis is not None
        else SqliteOutageStore(settings.outages_path, catalog=catalog)
    )
    outages = OutageService(store=outage_store, notices=None, seed=known_outages)
    # Consoles hear of conversations and of requests; on Redis, those of every process.
    events = EventHub() if redis is None else RedisEventHub(redis)
    requests, requests_webhook = build_requests(settings, events, redis, store.health)
    visit_store: VisitStore = (
        RedisVisitStore(redis, health=store.health)
        if redis is not None
        else SqliteVisitStore(settings.var_dir / "visits.sqlite3")
    )
    visits = VisitService(
        store=visit_store,
        slots=load_visit_slots(settings.data_dir, catalog.cities),  # optional file, file:line
        desk=requests,
        events=events,
        wake_webhook=requests_webhook.notify if requests_webhook else lambda: None,
    )
    engine = DialogEngine(
        config=dialog,
        nlu=nlu,
        actions=ACTIONS,
        catalog=catalog,
        billing=billing,
        store=store,
        notifier=notifier,
        translator=translator,
        account_actions=account_actions,
        extras={
            FILES: files,
            INVOICE_LABELS: lambda locale: {
                key: str(translator.message(locale, f"invoice.{key}")) for key in INVOICE_LABEL_KEYS
            },
            MONEY: translator.money,
            REQUESTS: requests,
            # Call-backs fit the calling department's hours, read live from the handoff service.
            DEPARTMENTS: departments_lookup(lambda: handoff.config),
            OUTAGES: outages,
            TROUBLESHOOTING: trees,  # flows/troubleshooting.yml, checked above
            VISITS: visits,
            ABUSE: abuse,  # one-time codes and identification attempts across conversations
        },
    )
    gateway = Gateway(
        store=store,
        locks=locks,
        engine=engine,
        translator=translator,
        metrics=metrics,
        default_locale=settings.default_locale,
        turn_timeout=settings.turn_timeout,
    )
    channels: dict[str, Channel] = {}  # filled below; the outbox reads it when sending
    outbox = Outbox(store=store, channels=channels, metrics=metrics, work=work)
    ingress = Ingress(store=store, gateway=gateway, outbox=outbox, metrics=metrics, work=work)
    leases = Leases(
        None,  # its own client: lease commands have a tighter timeout than the store's
        client=connect_from_settings(settings, **LEASE_REDIS_OPTIONS),
        ttl=settings.polling_lease_ttl,
        metrics=metrics,
    )
    channels.update(
        build_channels(ChannelDeps(settings, ingress, store, translator, files, leases=leases))
    )
    attach_abuse(channels.values(), abuse)  # the widget's sockets, frames and uploads
    if redis is not None:  # a reply sent by any process reaches the tab wherever it is open
        attach_relay(channels.values(), redis)
    operators = open_operator_store(settings, redis, health=store.health)  # shared on Redis
    register_handoff_metrics(metrics)
    handoff = HandoffService(
        store=store,
        locks=locks,
        translator=translator,
        metrics=metrics,
        config=load_handoff_config(settings.flows_dir / "handoff.yml"),
        operators=operators,
        events=events,
        catalog=catalog,
        billing=billing,
        delivers=lambda channel: channel in channels,
        notify_outbox=outbox.notify,
        presence=RedisPresence(redis) if redis is not None else None,  # shared by processes
    )
    gateway.attach_handoff(handoff)
    log.info(
        "catalog %s: %d cities, %d tariffs, %d offices, %d houses",
        settings.data_dir, len(catalog.cities), len(catalog.tariffs), len(catalog.offices),
        len(catalog.coverage),
    )  # fmt: skip
    notices = CustomerNotices(store=store, locks=locks, translator=translator,
                              delivers=lambda channel: channel in channels,
                              notify_outbox=outbox.notify)  # fmt: skip
    requests.attach_tell(notices.tell_conversation)
    visits.attach_tell(notices.tell_conversation)
    outages.attach_notices(
        OutageNotices(outages=outage_store, notices=notices, billing=billing, store=store,
                      catalog=catalog, clock=outages.now)
    )  # fmt: skip
    return Services(
        settings, catalog, billing, store, locks, translator, nlu, engine, metrics, gateway,
        outbox, ingress, channels, operators, handoff, files, account_actions, oplog, notices,
        requests, requests_webhook, outages, visits,
        audit=open_audit_log(settings, redis, health=store.health), abuse=abuse, leases=leases,
        redis=redis,
    )  # fmt: skip
