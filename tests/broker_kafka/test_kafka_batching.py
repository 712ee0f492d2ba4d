"""The coalescer: every caller gets its own item's answer, concurrent callers share batches, and a
failing send wakes everyone with the error."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
from jitsec.broker.engines.kafka_batching import Coalescer


def test_each_caller_gets_its_own_answer_and_concurrent_calls_share_batches() -> None:
    batches: list[int] = []
    gate = threading.Event()

    def send(items: Sequence[int]) -> list[int | BaseException]:
        gate.wait(5)  # the first batch waits for the others to queue behind it
        batches.append(len(items))
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    coalescer: Coalescer[int, int] = Coalescer(send, max_batch=8)

    def call(i: int) -> int | str:
        try:
            return coalescer.call(i)
        except ValueError as error:
            return str(error)

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(call, i) for i in range(20)]
        threading.Timer(0.3, gate.set).start()
        results = [f.result(timeout=30) for f in futures]
    assert results == [f"odd {i}" if i % 2 else i * 10 for i in range(20)]
    assert sum(batches) == 20 and max(batches) <= 8 and len(batches) < 20


def test_a_send_that_raises_reaches_every_caller_of_the_batch() -> None:
    def send(items: Sequence[int]) -> list[int | BaseException]:
        raise RuntimeError("cluster gone")

    coalescer: Coalescer[int, int] = Coalescer(send)
    with pytest.raises(RuntimeError, match="cluster gone"):
        coalescer.call(1)
    with pytest.raises(RuntimeError, match="cluster gone"):  # and the next call is not stuck
        coalescer.call(2)


def test_a_send_that_answers_the_wrong_number_of_items_is_an_error() -> None:
    coalescer: Coalescer[int, int] = Coalescer(lambda items: [])
    with pytest.raises(RuntimeError, match="answered 0 of 1"):
        coalescer.call(1)
