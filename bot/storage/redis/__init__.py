"""The gateway's store on Redis (REDIS_URL): several gateway processes share one store.

``RedisStore`` (store.py) is every interface of ``bot.storage.base`` on one Redis, one mixin per
interface; ``keys.py`` names every key, ``client.py`` connects and reports failures."""
