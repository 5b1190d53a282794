"""A Redis lock that keeps two pollers off the same mailbox.

Only one process should follow a mailbox: two would fetch every email twice (the
database would refuse the second copy, but the work is wasted and the flags race). The
lock expires by itself if its holder dies, so a crashed poller's mailbox is picked up by
another within ``TTL_SECONDS``. Without a broker there is one process, and no lock.
"""

from __future__ import annotations

import contextlib

import redis
from redis.exceptions import LockError, RedisError

TTL_SECONDS = 60.0


class MailboxLock:
    def __init__(self, mailbox_name: str, *, broker_url: str) -> None:
        self._lock = (
            redis.Redis.from_url(broker_url, socket_timeout=5).lock(
                f"consultant:poller:{mailbox_name}", timeout=TTL_SECONDS, thread_local=False
            )
            if broker_url
            else None
        )

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; ``False`` when another poller does."""
        if self._lock is None:
            return True
        try:
            return bool(self._lock.acquire(blocking=False))
        except RedisError:
            return False

    def keep(self) -> bool:
        """Renew the lock; ``False`` when it was lost (expired and taken, or Redis gone)."""
        if self._lock is None:
            return True
        try:
            return bool(self._lock.reacquire())
        except (LockError, RedisError):
            return False

    def release(self) -> None:
        if self._lock is None:
            return
        with contextlib.suppress(LockError, RedisError):  # expired or unreachable: nothing held
            self._lock.release()
