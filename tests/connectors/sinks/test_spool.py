from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from jitsec.connectors.sinks.spool import Backoff, DeliveryError, PermanentDeliveryError, Spool


def test_payloads_are_delivered_once_in_order_after_failures(
    tmp_path: Path, fast_backoff: Backoff, wait_for: Callable[..., bool]
) -> None:
    delivered: list[bytes] = []
    up = threading.Event()

    def deliver(payload: bytes) -> None:
        if not up.is_set():
            raise DeliveryError("receiver down")
        delivered.append(payload)

    spool = Spool(tmp_path / "s.sqlite", deliver, backoff=fast_backoff)
    for number in range(20):
        spool.put(f"alert-{number}".encode())
    assert spool.stats().pending == 20
    up.set()
    assert spool.wait_empty(10)
    spool.close()
    assert delivered == [f"alert-{number}".encode() for number in range(20)]


def test_a_restart_delivers_what_the_previous_process_left(tmp_path: Path, fast_backoff: Backoff) -> None:
    def refuse(payload: bytes) -> None:
        raise DeliveryError("down")

    first = Spool(tmp_path / "s.sqlite", refuse, backoff=fast_backoff)
    for number in range(5):
        first.put(b"%d" % number)
    first.close(timeout=0.05)

    delivered: list[bytes] = []
    second = Spool(tmp_path / "s.sqlite", delivered.append, backoff=fast_backoff)
    assert second.wait_empty(10)
    second.close()
    assert delivered == [b"0", b"1", b"2", b"3", b"4"]


def test_a_payload_refused_for_good_is_kept_aside_and_does_not_stall_the_queue(
    tmp_path: Path, fast_backoff: Backoff
) -> None:
    delivered: list[bytes] = []

    def deliver(payload: bytes) -> None:
        if payload == b"bad":
            raise PermanentDeliveryError("400")
        delivered.append(payload)

    spool = Spool(tmp_path / "s.sqlite", deliver, backoff=fast_backoff)
    for payload in (b"a", b"bad", b"b"):
        spool.put(payload)
    assert spool.wait_empty(10)
    assert spool.stats().dead == 1
    spool.close()
    assert delivered == [b"a", b"b"]


def test_put_returns_while_the_receiver_hangs(tmp_path: Path, fast_backoff: Backoff) -> None:
    release = threading.Event()
    spool = Spool(tmp_path / "s.sqlite", lambda payload: release.wait(10) and None, backoff=fast_backoff)
    for number in range(50):  # the first delivery blocks; every put still returns
        spool.put(b"%d" % number)
    assert spool.stats().pending == 50
    release.set()
    assert spool.wait_empty(10)
    spool.close()


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0)
    assert backoff.delay(1, rand=lambda: 1.0) == 0.2
    assert backoff.delay(50, rand=lambda: 1.0) == 1.0
    assert backoff.delay(50, rand=lambda: 0.0) == 0.5
