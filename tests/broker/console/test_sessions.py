"""Console sessions and the sign-in throttle, on a clock the test moves."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from jitsec.broker.console.sessions import Session, SessionBook, SessionPolicy
from jitsec.broker.console.throttle import SignInThrottle, ThrottlePolicy

from jitsec.testing import ManualClock


def one_session(max_seconds: float = 3600) -> tuple[ManualClock, SessionBook, str, Session]:
    """A book with a 60 s idle time, on a manual clock, holding one session."""
    clock = ManualClock()
    book = SessionBook(SessionPolicy(idle_seconds=60, max_seconds=max_seconds), clock=clock)
    session_id, opened = book.open("analyst-1", "analyst", "ab" * 32)
    return clock, book, session_id, opened


def test_a_session_ends_after_its_idle_time_and_each_request_restarts_that_clock() -> None:
    clock, book, session_id, opened = one_session()
    for _ in range(5):
        clock.advance(59)
        found = book.find(session_id)
        assert found is not None and found.csrf == opened.csrf
    clock.advance(61)
    assert book.find(session_id) is None
    assert len(book) == 0


def test_polling_without_touching_does_not_keep_a_session_alive() -> None:
    clock, book, session_id, _ = one_session()
    for _ in range(5):
        clock.advance(10)
        assert book.find(session_id, touch=False) is not None
    clock.advance(11)  # 61 s since the last real request
    assert book.find(session_id, touch=False) is None


def test_a_session_ends_at_its_maximum_age_however_busy() -> None:
    clock, book, session_id, _ = one_session(max_seconds=300)
    alive = []
    for _ in range(12):
        clock.advance(30)  # well within the idle time each time
        alive.append(book.find(session_id) is not None)
    assert alive == [True] * 10 + [False] * 2


def test_sign_out_ends_only_that_session_and_ids_are_not_guessable_from_each_other() -> None:
    book = SessionBook()
    first, one = book.open("analyst-1", "analyst", "ab" * 32)
    second, two = book.open("analyst-1", "analyst", "ab" * 32)
    assert first != second and one.csrf != two.csrf and len(first) >= 40
    book.end(first)
    assert book.find(first) is None and book.find(second) is not None


def test_the_table_is_bounded_by_ending_the_least_recently_used() -> None:
    book = SessionBook(SessionPolicy(max_sessions=3))
    ids = [book.open(f"a{n}", "analyst", "ab" * 32)[0] for n in range(3)]
    assert book.find(ids[0]) is not None  # now the most recently used
    newest, _ = book.open("a3", "analyst", "ab" * 32)
    assert len(book) == 3
    assert book.find(ids[1]) is None
    assert all(book.find(i) is not None for i in (ids[0], ids[2], newest))


@given(st.one_of(st.none(), st.text(max_size=300)))
def test_an_unknown_or_odd_cookie_value_finds_no_session(value: str | None) -> None:
    book = SessionBook()
    book.open("analyst-1", "analyst", "ab" * 32)
    assert book.find(value) is None


def test_the_throttle_refuses_after_the_limit_until_the_oldest_failure_leaves_the_window() -> None:
    clock = ManualClock(start=1000.0)
    throttle = SignInThrottle(ThrottlePolicy(max_failures=3, window_seconds=60), clock=clock)
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
        clock.advance(10)
    assert throttle.retry_after("10.0.0.1") == 30  # the first failure leaves the window in 30 s
    assert throttle.retry_after("10.0.0.2") == 0  # other addresses are not held back
    clock.advance(30)
    assert throttle.retry_after("10.0.0.1") == 0


def test_the_throttle_forgets_the_address_seen_longest_ago_beyond_its_bound() -> None:
    clock = ManualClock(start=0.0)
    throttle = SignInThrottle(ThrottlePolicy(max_failures=1, window_seconds=60, max_addresses=2), clock=clock)
    for address in ("a", "b", "c"):
        throttle.failed(address)
    assert throttle.retry_after("a") == 0
    assert throttle.retry_after("b") > 0 and throttle.retry_after("c") > 0
