"""The Elasticsearch node started by scripts/services answers the 9.x Python client (same major), with
security off on loopback, and supports what the connectors rely on: bulk, point in time, search_after."""

from __future__ import annotations

import uuid

import pytest
from elasticsearch import Elasticsearch, helpers

pytestmark = pytest.mark.elasticsearch


def test_elasticsearch_pages_a_point_in_time_with_search_after(elasticsearch_url: str) -> None:
    assert elasticsearch_url.startswith("http://127.0.0.1:")
    index = f"jitsec-smoke-{uuid.uuid4().hex[:12]}"
    client = Elasticsearch(elasticsearch_url, request_timeout=30)
    try:
        assert client.cluster.health(wait_for_status="yellow", timeout="30s")["status"] in {"green", "yellow"}
        helpers.bulk(client, ({"_index": index, "_id": str(i), "n": i} for i in range(5)), refresh=True)
        pit = client.open_point_in_time(index=index, keep_alive="1m")["id"]
        seen: list[str] = []
        after = None
        while True:
            page = client.search(pit={"id": pit, "keep_alive": "1m"}, sort=["_shard_doc"], size=2,
                                 search_after=after)
            hits = page["hits"]["hits"]
            if not hits:
                break
            seen.extend(hit["_id"] for hit in hits)
            after = hits[-1]["sort"]
        client.close_point_in_time(id=pit)
        assert sorted(seen) == ["0", "1", "2", "3", "4"]
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
        client.close()
