"""Which Redis the settings name: REDIS_URL or the Sentinels, never both, never half of one."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, Settings
from bot.storage.redis.client import limits_uri


def test_sentinels_are_read_as_addresses_and_make_a_limits_uri() -> None:
    settings = Settings.from_env(
        {"REDIS_SENTINELS": "10.0.0.1:26379, [fd00::2]:26380", "REDIS_SENTINEL_MASTER": "isp-bot"}
    )
    assert settings.redis_sentinels == (("10.0.0.1", 26379), ("fd00::2", 26380))
    assert settings.uses_redis
    assert limits_uri(settings) == "redis+sentinel://10.0.0.1:26379,[fd00::2]:26380/isp-bot"
    assert not Settings.from_env({}).uses_redis  # the embedded default


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_SENTINELS": "10.0.0.1:26379"}, "must be set together"),
        ({"REDIS_SENTINEL_MASTER": "isp-bot"}, "must be set together"),
        (
            {"REDIS_URL": "redis://x", "REDIS_SENTINELS": "a:1", "REDIS_SENTINEL_MASTER": "m"},
            "not both",
        ),
        ({"REDIS_SENTINELS": "10.0.0.1", "REDIS_SENTINEL_MASTER": "m"}, "is not host:port"),
        ({"REDIS_SENTINELS": "h:70000", "REDIS_SENTINEL_MASTER": "m"}, "is not host:port"),
    ],
)
def test_a_wrong_combination_stops_the_start_saying_what(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
