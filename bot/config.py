"""Settings from environment variables (names are part of CONTRACTS.md), with defaults that let
the gateway start with no configuration at all: SQLite under ./var/, the bundled demo catalog."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

IPNetwork = IPv4Network | IPv6Network

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_CATALOG = Path(__file__).resolve().parent / "demo_catalog"


class ConfigError(ValueError):
    pass


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


def _optional_float(env: Mapping[str, str], name: str) -> float | None:
    if not env.get(name):
        return None
    value = _float(env, name, 0.0)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name}={value} must be between 0 and 1")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name}={raw!r} is not a yes/no value")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None


def _networks(env: Mapping[str, str], name: str) -> tuple[IPNetwork, ...]:
    found: list[IPNetwork] = []
    for part in (env.get(name) or "").replace(";", ",").split(","):
        if not part.strip():
            continue
        try:
            found.append(ip_network(part.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"{name}: {part.strip()!r} is not an IP address or network") from None
    return tuple(found)


def _addresses(env: Mapping[str, str], name: str) -> tuple[tuple[str, int], ...]:
    """``host:port,host:port`` (an IPv6 host in brackets: ``[::1]:26379``)."""
    found: list[tuple[str, int]] = []
    for part in (env.get(name) or "").split(","):
        part = part.strip()
        if not part:
            continue
        host, _, port = part.rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{name}: {part!r} is not host:port")
        found.append((host, int(port)))
    return tuple(found)


def _optional_days(env: Mapping[str, str], name: str) -> int | None:
    if not env.get(name):
        return None
    days = _int(env, name, 0)
    if days < 1:
        raise ConfigError(f"{name}={days} must be at least 1 day (unset keeps everything)")
    return days


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = DEMO_CATALOG
    var_dir: Path = Path("var")
    flows_dir: Path = PROJECT_ROOT / "flows"
    locales_dir: Path = PROJECT_ROOT / "locales"
    host: str = "127.0.0.1"
    port: int = 8080
    default_locale: str = "ru"
    rest_token: str | None = field(default=None, repr=False)
    # The outage API of the network operations centre; unset = loopback only, like REST.
    admin_token: str | None = field(default=None, repr=False)
    identity_secret: str | None = field(default=None, repr=False)
    nlu_threshold: float | None = None  # None: the threshold calibrated at training
    public_url: str | None = None  # where platforms reach us (webhook registration)
    # Telegram (on when TELEGRAM_BOT_TOKEN is set)
    telegram_token: str | None = field(default=None, repr=False)
    telegram_webhook_secret: str | None = field(default=None, repr=False)
    telegram_api_base: str = "https://api.telegram.org"
    telegram_polling: bool = False
    # VK (on when VK_GROUP_TOKEN and VK_GROUP_ID are set)
    vk_group_token: str | None = field(default=None, repr=False)
    vk_group_id: str | None = None
    vk_secret: str | None = field(default=None, repr=False)
    vk_confirmation: str | None = None
    vk_api_base: str = "https://api.vk.com/method"
    vk_longpoll: bool = False
    # Viber (on when VIBER_AUTH_TOKEN is set)
    viber_auth_token: str | None = field(default=None, repr=False)
    viber_api_base: str = "https://chatapi.viber.com/pa"
    viber_bot_name: str = "Support"
    viber_avatar: str | None = None
    turn_timeout: float = 10.0
    # SIGTERM: how long in-flight turns and queued replies get before the process exits (what
    # is left stays in the store and is picked up at the next start).
    shutdown_timeout: float = 20.0
    log_level: str = "INFO"
    # Billing: the embedded ledger unless BILLING_URL points at a bridge (docs/billing-api.md)
    billing_url: str | None = None
    billing_token: str | None = field(default=None, repr=False)
    # A turn makes at most two billing calls (read the account, apply): 2 × 4 s stays below
    # BOT_TURN_TIMEOUT (10 s), so the customer hears the apology, not a timeout hand-off.
    billing_timeout: float = 4.0
    billing_webhook_secret: str | None = field(default=None, repr=False)
    # The provider's CRM hears of every new or changed request (docs/requests.md)
    requests_webhook_url: str | None = None
    requests_webhook_secret: str | None = field(default=None, repr=False)
    # Reverse proxies whose X-Forwarded-For we believe (addresses or networks). Empty: we believe
    # no forwarding header, the client address is the TCP peer (docs/security: SECURITY.md).
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # Transcripts, files and records older than this many days are deleted daily; None keeps all.
    retention_days: int | None = None
    # Redis shared by every gateway process (redis://host:6379/0); unset = embedded, in memory.
    # Today it holds the abuse-limit counters (bot/abuse.py); repr hides a password in the URL.
    redis_url: str | None = field(default=None, repr=False)
    # With REDIS_URL: how long a killed process keeps long polling's lease (bot/leases.py), i.e.
    # how long no process polls after a SIGKILL; a clean stop hands it over at once.
    polling_lease_ttl: float = 15.0
    # With REDIS_URL: how long a killed process keeps a conversation's leases (its turn, its
    # inbox, its sends: bot/storage/redis/locks.py), i.e. how long its conversations wait
    # before another process takes them over; stream entries idle this long are claimed.
    conversation_lease_ttl: float = 15.0
    # Instead of REDIS_URL: the Sentinels that know which server is the master now (host:port
    # each) and the name they watch it under; a failover then needs no change of settings.
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str | None = None

    @property
    def uses_redis(self) -> bool:
        """Several processes share one Redis (REDIS_URL or the Sentinels); False: embedded."""
        return bool(self.redis_url or self.redis_sentinels)

    @property
    def sqlite_path(self) -> Path:
        return self.var_dir / "gateway.sqlite3"

    @property
    def outages_path(self) -> Path:
        return self.var_dir / "outages.sqlite3"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        base = cls()
        settings = replace(
            base,
            data_dir=Path(env.get("BOT_DATA_DIR") or base.data_dir),
            var_dir=Path(env.get("BOT_VAR_DIR") or base.var_dir),
            flows_dir=Path(env.get("BOT_FLOWS_DIR") or base.flows_dir),
            locales_dir=Path(env.get("BOT_LOCALES_DIR") or base.locales_dir),
            host=env.get("BOT_HOST") or base.host,
            port=_int(env, "BOT_PORT", base.port),
            default_locale=env.get("BOT_LOCALE") or base.default_locale,
            rest_token=env.get("BOT_REST_TOKEN") or None,
            admin_token=env.get("BOT_ADMIN_TOKEN") or None,
            identity_secret=env.get("BOT_IDENTITY_SECRET") or None,
            nlu_threshold=_optional_float(env, "BOT_NLU_THRESHOLD"),
            public_url=(env.get("BOT_PUBLIC_URL") or "").rstrip("/") or None,
            telegram_token=env.get("TELEGRAM_BOT_TOKEN") or None,
            telegram_webhook_secret=env.get("TELEGRAM_WEBHOOK_SECRET") or None,
            telegram_api_base=(env.get("TELEGRAM_API_BASE") or base.telegram_api_base).rstrip("/"),
            telegram_polling=_flag(env, "TELEGRAM_POLLING"),
            vk_group_token=env.get("VK_GROUP_TOKEN") or None,
            vk_group_id=env.get("VK_GROUP_ID") or None,
            vk_secret=env.get("VK_SECRET") or None,
            vk_confirmation=env.get("VK_CONFIRMATION") or None,
            vk_api_base=(env.get("VK_API_BASE") or base.vk_api_base).rstrip("/"),
            vk_longpoll=_flag(env, "VK_LONGPOLL"),
            viber_auth_token=env.get("VIBER_AUTH_TOKEN") or None,
            viber_api_base=(env.get("VIBER_API_BASE") or base.viber_api_base).rstrip("/"),
            viber_bot_name=env.get("VIBER_BOT_NAME") or base.viber_bot_name,
            viber_avatar=env.get("VIBER_AVATAR") or None,
            billing_url=(env.get("BILLING_URL") or "").rstrip("/") or None,
            billing_token=env.get("BILLING_TOKEN") or None,
            billing_timeout=_float(env, "BILLING_TIMEOUT", base.billing_timeout),
            billing_webhook_secret=env.get("BILLING_WEBHOOK_SECRET") or None,
            requests_webhook_url=env.get("REQUESTS_WEBHOOK_URL") or None,
            requests_webhook_secret=env.get("REQUESTS_WEBHOOK_SECRET") or None,
            trusted_proxies=_networks(env, "BOT_TRUSTED_PROXIES"),
            retention_days=_optional_days(env, "BOT_RETENTION_DAYS"),
            redis_url=env.get("REDIS_URL") or None,
            polling_lease_ttl=_float(env, "BOT_POLLING_LEASE_TTL", base.polling_lease_ttl),
            conversation_lease_ttl=_float(
                env, "BOT_CONVERSATION_LEASE_TTL", base.conversation_lease_ttl
            ),
            redis_sentinels=_addresses(env, "REDIS_SENTINELS"),
            redis_sentinel_master=env.get("REDIS_SENTINEL_MASTER") or None,
            turn_timeout=_float(env, "BOT_TURN_TIMEOUT", base.turn_timeout),
            shutdown_timeout=_float(env, "BOT_SHUTDOWN_TIMEOUT", base.shutdown_timeout),
            log_level=(env.get("BOT_LOG_LEVEL") or base.log_level).upper(),
        )
        if bool(settings.redis_sentinels) != bool(settings.redis_sentinel_master):
            raise ConfigError("REDIS_SENTINELS and REDIS_SENTINEL_MASTER must be set together")
        if settings.redis_sentinels and settings.redis_url:
            # Two answers to "which Redis": the gateway would have to guess which one is meant.
            raise ConfigError("set REDIS_URL or REDIS_SENTINELS, not both")
        return settings
