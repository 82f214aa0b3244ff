"""Live job status in Redis, for fast polling; the database stays the record.

Workers report progress many times a second; writing each tick to the
database would make every poll and every worker contend for it. Ticks go to
Redis (a hash per job, expiring after a day); stage changes, counts and
errors go to the database as well. When Redis is not configured or is down,
reads fall back to the database and writes to it are skipped, so the API
keeps answering.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .config import Settings

__all__ = ["StatusBoard"]

log = logging.getLogger(__name__)
KEY = "astrohunter:job:{}"
#: Delete a lock only if it still holds our token (another holder may have it after expiry).
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
TTL_S = 86400


class StatusBoard:
    """Read and write live job status (state, percent, stage, message)."""

    def __init__(self, settings: Settings) -> None:
        self._client = (
            redis.Redis(
                host=settings.redis_host,
                port=settings.redis_port,
                socket_timeout=1.0,
                socket_connect_timeout=1.0,
                retry=Retry(NoBackoff(), 0),  # one try: a status read must not stall for seconds
                decode_responses=True,
            )
            if settings.redis_host
            else None
        )
        self._down_until = 0.0

    @property
    def configured(self) -> bool:
        return self._client is not None

    def _usable(self) -> redis.Redis | None:
        """The client, unless Redis is not configured or was found down a moment ago."""
        if self._client is None or time.monotonic() < self._down_until:
            return None
        return self._client

    def _failed(self, exc: Exception) -> None:
        # Do not retry a dead Redis on every tick: back off for a few seconds.
        log.warning("Redis unavailable (%s); live status falls back to the database", exc)
        self._down_until = time.monotonic() + 5.0

    def set(self, job_id: str, **fields: Any) -> None:
        """Merge ``fields`` into the job's live status."""
        client = self._usable()
        if client is None:
            return
        try:
            key = KEY.format(job_id)
            pipe = client.pipeline()
            pipe.hset(key, mapping={k: str(v) for k, v in fields.items()})
            pipe.expire(key, TTL_S)
            pipe.execute()
        except redis.RedisError as exc:
            self._failed(exc)

    def forget(self, job_id: str) -> None:
        """Drop the job's live status (it was deleted)."""
        client = self._usable()
        if client is None:
            return
        try:
            client.delete(KEY.format(job_id))
        except redis.RedisError as exc:
            self._failed(exc)

    def get(self, job_id: str) -> dict[str, str] | None:
        """The job's live status, or None when Redis has none or is unreachable."""
        client = self._usable()
        if client is None:
            return None
        try:
            found = cast(dict[str, str], client.hgetall(KEY.format(job_id)))
            return found or None
        except redis.RedisError as exc:
            self._failed(exc)
            return None

    def acquire(self, name: str, *, ttl_s: int) -> str | None:
        """Take the named lock for ``ttl_s`` seconds; a token, or None when held elsewhere."""
        token = uuid.uuid4().hex
        if self._client is None:
            return None
        try:
            taken = self._client.set(f"astrohunter:lock:{name}", token, nx=True, ex=ttl_s)
        except redis.RedisError:
            return None
        return token if taken else None

    def release(self, name: str, token: str) -> None:
        """Give back a lock taken with :meth:`acquire` (only if still ours)."""
        if self._client is None:
            return
        try:
            self._client.eval(_RELEASE, 1, f"astrohunter:lock:{name}", token)
        except redis.RedisError as exc:
            self._failed(exc)

    def ping(self) -> bool:
        """True when Redis answers."""
        if self._client is None:
            return False
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False
