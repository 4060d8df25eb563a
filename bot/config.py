"""Settings from environment variables (names are part of CONTRACTS.md), with defaults that let
the gateway start with no configuration at all: SQLite under ./var/, the bundled demo catalog."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

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


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None


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
    identity_secret: str | None = field(default=None, repr=False)
    nlu_threshold: float | None = None  # None: the threshold calibrated at training
    turn_timeout: float = 10.0
    log_level: str = "INFO"

    @property
    def sqlite_path(self) -> Path:
        return self.var_dir / "gateway.sqlite3"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        base = cls()
        return replace(
            base,
            data_dir=Path(env.get("BOT_DATA_DIR") or base.data_dir),
            var_dir=Path(env.get("BOT_VAR_DIR") or base.var_dir),
            flows_dir=Path(env.get("BOT_FLOWS_DIR") or base.flows_dir),
            locales_dir=Path(env.get("BOT_LOCALES_DIR") or base.locales_dir),
            host=env.get("BOT_HOST") or base.host,
            port=_int(env, "BOT_PORT", base.port),
            default_locale=env.get("BOT_LOCALE") or base.default_locale,
            rest_token=env.get("BOT_REST_TOKEN") or None,
            identity_secret=env.get("BOT_IDENTITY_SECRET") or None,
            nlu_threshold=_optional_float(env, "BOT_NLU_THRESHOLD"),
            turn_timeout=_float(env, "BOT_TURN_TIMEOUT", base.turn_timeout),
            log_level=(env.get("BOT_LOG_LEVEL") or base.log_level).upper(),
        )
