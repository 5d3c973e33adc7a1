"""A token bucket per client, with bounded memory."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable


class RateLimiter:
    """Each client may make `burst` requests at once and `per_second` requests
    a second after that. At most `max_clients` buckets are kept; the least
    recently seen client is forgotten first (it starts again with a full bucket).
    """

    def __init__(
        self,
        per_second: float,
        burst: int,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not per_second > 0:
            raise ValueError(f"per_second must be positive, not {per_second!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.per_second = float(per_second)
        self.burst = int(burst)
        self._max_clients = max(1, int(max_clients))
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def acquire(self, client: str) -> float:
        """Takes one token for `client`: 0.0 when the request may go ahead, else
        the seconds until the next token (nothing taken)."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.per_second)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.per_second
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self._max_clients:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)
