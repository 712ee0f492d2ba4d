"""The sighting wire record: ids that name the secret and the place, and request-sized batches."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from jitsec.kernel.sightings import sighting_batches, sighting_id

FINGERPRINT = "hmac-sha256:" + "ab" * 32


def test_a_file_is_a_place_on_one_host_and_a_kafka_record_is_the_same_everywhere() -> None:
    def on(host: str, source: str = "file", where: str = "app.env:3", fingerprint: str = FINGERPRINT) -> str:
        return sighting_id(fingerprint, source, where, host)

    assert on("a") != on("b")
    assert on("a", "kafka", "kafka:t/0@9") == on("b", "kafka", "kafka:t/0@9")
    assert on("", "git", "abc:x") != on("", "git", "abc:x", "hmac-sha256:" + "cd" * 32)


items = st.lists(st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=300), max_size=6),
                 max_size=60)


@given(items, st.integers(min_value=200, max_value=5000), st.integers(min_value=1, max_value=20))
def test_batches_keep_every_item_in_order_within_both_limits(
        given_items: list[dict[str, str]], max_bytes: int, max_items: int) -> None:
    batches = sighting_batches(given_items, max_bytes=max_bytes, max_items=max_items)

    assert [item for batch in batches for item in batch] == given_items
    for batch in batches:
        assert 1 <= len(batch) <= max_items
        size = sum(len(json.dumps(i, ensure_ascii=False).encode()) + 2 for i in batch)
        assert len(batch) == 1 or size <= max_bytes
