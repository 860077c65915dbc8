"""Admission control for decision requests: a deadline per request and a byte budget shared by all bodies.

Why: a request that waits for a worker or runs past its deadline must neither be answered late nor leave a
record in the decision log (`Job` decides, under a lock, which of "answered" and "timed out" wins); and the
bodies held in memory at once must stay bounded however many clients upload at the same time (`ByteBudget`).
"""

from __future__ import annotations

import threading
import time
from typing import Any


class BudgetExhausted(Exception):
    """Taking these bytes would pass the budget: shed the request (503 busy)."""


class DeadlineExceeded(Exception):
    """The request's deadline passed before its work finished (answered 504)."""


class Job:
    """One decision request's claim on the answer: either the worker commits it, or the deadline cancels it.

    Exactly one of the two wins (under a lock), so a request that timed out never has decisions logged, and a
    request whose decisions were logged is always answered with them.
    """

    def __init__(self, deadline: float):
        self.deadline = deadline  # time.monotonic() value
        self._lock = threading.Lock()
        self.state = "pending"  # -> "committed" | "cancelled"

    def expired(self) -> bool:
        return self.state == "cancelled" or time.monotonic() >= self.deadline

    def commit(self) -> bool:
        with self._lock:
            if self.state == "pending" and time.monotonic() < self.deadline:
                self.state = "committed"
            return self.state == "committed"

    def cancel(self) -> bool:
        with self._lock:
            if self.state == "pending":
                self.state = "cancelled"
            return self.state == "cancelled"


class ByteBudget:
    """Bytes of request bodies held in memory across all requests (event-loop only, so no lock)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    def take(self, n: int) -> None:
        if self.used + n > self.limit:
            raise BudgetExhausted(f"{self.used} of {self.limit} request body bytes in flight")
        self.used += n

    def give(self, n: int) -> None:
        self.used -= n


class BodyHold:
    """The bytes one request holds in a ByteBudget; released once, when its body is no longer referenced."""

    def __init__(self, budget: ByteBudget):
        self.budget = budget
        self.bytes = 0

    def take(self, n: int) -> None:
        self.budget.take(n)
        self.bytes += n

    def release(self, future: Any = None) -> None:
        self.budget.give(self.bytes)
        self.bytes = 0
        if future is not None and not future.cancelled():
            future.exception()  # retrieved here: a request that timed out never awaits its worker's outcome
