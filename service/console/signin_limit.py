"""How many wrong keys the console's sign-in hears: token buckets per client address and overall.

A sign-in form that answers every guess at once lets anyone who reaches it try keys as
fast as the service answers. Each failed sign-in takes a token from its client address's
bucket and from one shared by all addresses; with either bucket empty the form answers
429 with ``Retry-After`` and does not look at the key at all, so a guess made then tells
nothing. Buckets refill continuously (``PER_ADDRESS`` failures a minute per address,
``OVERALL`` for everyone), so an operator who mistyped waits seconds, not a lockout
period. At most ``MAX_ADDRESSES`` addresses are remembered, least recently seen forgotten
first: an attacker who spreads over more addresses than that meets the overall bucket.
State is per worker process (docs/security.md says what that means with several).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask

__all__ = ["MAX_ADDRESSES", "OVERALL", "PER_ADDRESS", "SignInLimit", "limit_of"]

PER_ADDRESS = 5  # failed sign-ins a minute from one address, and its burst
OVERALL = 30  # failed sign-ins a minute from all addresses together
MAX_ADDRESSES = 10_000  # buckets kept (about 100 bytes each)
WINDOW_SECONDS = 60.0


@dataclass(slots=True)
class _Bucket:
    capacity: float
    tokens: float
    updated_at: float

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated_at)  # a clock set back refills nothing
        self.tokens = min(self.capacity, self.tokens + elapsed * self.capacity / WINDOW_SECONDS)
        self.updated_at = now

    def wait_seconds(self) -> float:
        """Seconds until one token is there (0 if one is)."""
        return max(0.0, (1.0 - self.tokens) * WINDOW_SECONDS / self.capacity)


class SignInLimit:
    """Failed sign-ins allowed per client address and overall, refilled continuously."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        per_address: int = PER_ADDRESS,
        overall: int = OVERALL,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self._clock = clock
        self._per_address = per_address
        self._max_addresses = max_addresses
        self._overall = _Bucket(overall, overall, clock())
        self._addresses: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()  # a worker may run several threads (XSELL_THREADS)

    def retry_after(self, address: str) -> int | None:
        """Return whole seconds to wait before `address` may try a key, or None if it may now."""
        with self._lock:
            now = self._clock()
            self._overall.refill(now)
            wait = self._overall.wait_seconds()
            bucket = self._addresses.get(address)
            if bucket is not None:
                bucket.refill(now)
                self._addresses.move_to_end(address)
                wait = max(wait, bucket.wait_seconds())
        return math.ceil(wait) if wait > 0 else None

    def failed(self, address: str) -> None:
        """Count a wrong key from `address` against its bucket and the overall one."""
        with self._lock:
            now = self._clock()
            bucket = self._addresses.get(address)
            if bucket is None:
                bucket = self._addresses[address] = _Bucket(self._per_address, self._per_address, now)
                while len(self._addresses) > self._max_addresses:
                    self._addresses.popitem(last=False)
            self._addresses.move_to_end(address)
            for found in (bucket, self._overall):
                found.refill(now)
                found.tokens = max(0.0, found.tokens - 1.0)

    def __len__(self) -> int:
        """Return how many addresses are remembered."""
        return len(self._addresses)


def limit_of(app: Flask, clock: Callable[[], float]) -> SignInLimit:
    """Return this app's (this worker's) sign-in limit, made on first use."""
    found = app.extensions.get("xsell_signin_limit")
    if found is None:
        found = app.extensions["xsell_signin_limit"] = SignInLimit(clock)
    return found  # type: ignore[no-any-return]
