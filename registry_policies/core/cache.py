"""The Redis cache, tolerant of a Redis outage: a cache miss instead of a 500.

The cache only holds what can be lost (sign-in throttling counters, memoised reads), so when Redis
is unreachable the request goes on as if the cache were empty; the outage is logged, and
`/-/readyz` reports the broker.
"""
from __future__ import annotations

import logging
from typing import Any

from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.ConnectionError, redis.TimeoutError)


class TolerantRedisCache(RedisCache):
    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        try:
            return super().get(key, default, version)
        except _redis_errors():
            logger.warning("cache unavailable (get %s)", key)
            return default

    def set(self, key: Any, value: Any, timeout: Any = ..., version: int | None = None) -> None:
        try:
            if timeout is ...:
                super().set(key, value, version=version)
            else:
                super().set(key, value, timeout, version)
        except _redis_errors():
            logger.warning("cache unavailable (set %s)", key)

    def add(self, key: Any, value: Any, timeout: Any = ..., version: int | None = None) -> bool:
        try:
            if timeout is ...:
                return bool(super().add(key, value, version=version))
            return bool(super().add(key, value, timeout, version))
        except _redis_errors():
            logger.warning("cache unavailable (add %s)", key)
            return True

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return int(super().incr(key, delta, version))
        except _redis_errors():
            logger.warning("cache unavailable (incr %s)", key)
            return delta

    def delete(self, key: Any, version: int | None = None) -> bool:
        try:
            return bool(super().delete(key, version))
        except _redis_errors():
            logger.warning("cache unavailable (delete %s)", key)
            return False
