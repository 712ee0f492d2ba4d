"""Coalescing: calls made at the same moment from many threads go to Kafka as one admin request.

Why: a KRaft cluster applies every admin change (an ACL, a SCRAM credential) as a record in its
metadata log and answers once it is committed. Measured on the test cluster, requests from many
threads do not overlap much: one SCRAM deletion per request gives ~37/s whatever the concurrency,
fifty per request ~1,850/s. Many changes in one request share the wait, so the engine's throughput
grows with its concurrency instead of being capped by one round trip per change.

``Coalescer.call(item)`` blocks until ``send`` has handled a batch holding ``item`` and returns that
item's own result (or raises its own exception). The first caller to find no batch in flight sends
what is queued (itself included); the others wait and queue up for the next batch. Once the sender's
own item is answered it hands the sending to the oldest waiter. No thread of its own, nothing to
close. Thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class _Slot(Generic[T, R]):
    item: T
    done: threading.Event = field(default_factory=threading.Event)
    result: R | None = None
    error: BaseException | None = None
    lead: bool = False  # woken to send, not answered


class Coalescer(Generic[T, R]):
    """``send`` takes a batch and returns one result or exception per item, in order."""

    def __init__(self, send: Callable[[Sequence[T]], Sequence[R | BaseException]], *,
                 max_batch: int = 500) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._send, self._max_batch = send, max_batch
        self._lock = threading.Lock()
        self._queue: list[_Slot[T, R]] = []
        self._sending = False

    def call(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            leader = not self._sending
            self._sending = True
        if leader:
            self._lead(slot)
        while True:
            slot.done.wait()
            if not slot.lead:
                break
            slot.lead = False  # handed the sending over by a leader whose own item was answered
            slot.done.clear()
            self._lead(slot)
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]  # set before done

    def _lead(self, own: _Slot[T, R]) -> None:
        """Send batches until the queue is empty, or until ``own`` is answered: then the oldest
        waiter takes over, so that no caller sends for others indefinitely."""
        while True:
            with self._lock:
                if own.done.is_set() and self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.done.set()
                    return
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                if not batch:
                    self._sending = False
                    return
            self._send_batch(batch)

    def _send_batch(self, batch: list[_Slot[T, R]]) -> None:
        try:
            outcomes = list(self._send([slot.item for slot in batch]))
            if len(outcomes) != len(batch):
                raise RuntimeError(f"coalesced send answered {len(outcomes)} of {len(batch)} items")
        except Exception as error:  # every waiter must wake, whatever went wrong
            outcomes = [error] * len(batch)
        for slot, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                slot.error = outcome
            else:
                slot.result = outcome
            slot.done.set()
