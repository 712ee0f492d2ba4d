"""Helpers for following sources (run one on a thread and wait for what it yields), git repositories
and the Kafka test broker."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jitsec.kernel.ports import Source
from jitsec.kernel.records import Chunk


class Follower:
    """Reads a source on a background thread, acknowledging each chunk as it arrives."""

    def __init__(self, source: Source, *, acknowledge: bool = True) -> None:
        self.source = source
        self.chunks: list[Chunk] = []
        self.failure: BaseException | None = None
        self._acknowledge = acknowledge
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for chunk in self.source.chunks():
                self.chunks.append(chunk)
                if self._acknowledge:
                    self.source.acknowledge(chunk)
        except BaseException as exc:
            self.failure = exc

    @property
    def data(self) -> bytes:
        return b"".join(chunk.data for chunk in self.chunks)

    def wait_for(self, predicate: Callable[[Follower], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if self.failure is not None:
                raise AssertionError("source failed") from self.failure
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; got {self.data!r}")
            time.sleep(0.01)

    def wait_for_data(self, expected: bytes, timeout: float = 10.0) -> None:
        self.wait_for(lambda follower: expected in follower.data, timeout)

    def stop(self) -> None:
        self.source.close()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "source did not stop after close()"
        if self.failure is not None:
            raise AssertionError("source failed") from self.failure


@pytest.fixture
def follow() -> Iterator[Callable[..., Follower]]:
    started: list[Follower] = []

    def start(source: Source, **options: bool) -> Follower:
        follower = Follower(source, **options)
        started.append(follower)
        return follower

    yield start
    for follower in started:
        follower.source.close()




class KafkaTools:
    """Topics, records and committed group offsets on the test broker, shared by the Kafka tests.
    kafka-python is imported on first use, so the other connector tests do not load it."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def topic(self, partitions: int) -> str:
        """A new topic with a unique name, returned once a fresh client sees all its partitions.

        A consumer group that joins before the topic's metadata has spread gets no partitions and
        waits for the next metadata refresh (minutes): a loaded machine made such tests read nothing.
        """
        from kafka import KafkaConsumer  # noqa: PLC0415
        from kafka.admin import KafkaAdminClient, NewTopic  # noqa: PLC0415

        name = f"jitsec-test-{uuid.uuid4().hex[:12]}"
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        finally:
            admin.close()
        probe = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            deadline = time.monotonic() + 60
            while len(probe.partitions_for_topic(name) or ()) < partitions:
                if time.monotonic() > deadline:
                    pytest.fail(f"topic {name}: {partitions} partitions not visible after 60 s")
                time.sleep(0.1)  # partitions_for_topic fetches fresh metadata when the topic is unknown
        finally:
            probe.close()
        return name

    def produce(self, topic: str, values: list[bytes], *, partition: int | None = None) -> None:
        """Every value acknowledged by the broker (``acks=all``) before this returns."""
        from kafka import KafkaProducer  # noqa: PLC0415

        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                 max_request_size=60 * 1024 * 1024, linger_ms=5)
        try:
            for value in values:
                producer.send(topic, value, partition=partition)
            producer.flush(timeout=60)
        finally:
            producer.close()

    def committed(self, topic: str, group: str, partitions: int) -> list[int | None]:
        """The group's committed offset per partition (None: nothing committed)."""
        from kafka import KafkaConsumer, TopicPartition  # noqa: PLC0415

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False)
        try:
            return [consumer.committed(TopicPartition(topic, p)) for p in range(partitions)]
        finally:
            consumer.close(autocommit=False)

    def committed_total(self, topic: str, group: str, partitions: int) -> int:
        """The group's committed offsets summed over the partitions (a partition with none counts 0)."""
        return sum(offset or 0 for offset in self.committed(topic, group, partitions))


@pytest.fixture
def kafka_tools(kafka_bootstrap: str) -> KafkaTools:
    return KafkaTools(kafka_bootstrap)


class Lines:
    """A pipe's lines collected on a thread, so that a test can wait for one without blocking forever."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if (match := re.search(pattern, line)) is not None:
                    return match
            time.sleep(0.02)
        raise AssertionError(f"no line matching {pattern!r} in {self.lines!r}")

    def rows(self) -> list[dict]:
        """The JSON lines printed so far (``-f jsonl``)."""
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]


StartWatch = Callable[..., tuple[subprocess.Popen, Lines, Lines]]


@pytest.fixture
def watch_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a ``jitsec watch`` process: its own state directory and fingerprint key,
    unbuffered output (tests read it line by line) and quick git polls."""
    return {
        **os.environ,
        "JITSEC_FINGERPRINT_KEY": "11" * 32,
        "JITSEC_STATE_DIR": str(tmp_path / "state"),
        "JITSEC_GIT_POLL_INTERVAL": "0.2",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def start_watch() -> Iterator[StartWatch]:
    """Starts ``jitsec watch ARGUMENTS`` as a real process: ``(process, stdout lines, stderr lines)``.
    Processes still running when the test ends are killed."""
    started: list[subprocess.Popen] = []

    def start(
        arguments: list[str], env: dict[str, str], **options: object
    ) -> tuple[subprocess.Popen, Lines, Lines]:
        process = subprocess.Popen(  # type: ignore[call-overload]
            ["jitsec", "watch", *arguments],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **options,
        )
        started.append(process)
        return process, Lines(process.stdout), Lines(process.stderr)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Caches shared by the session's throwaway repositories (compiled rules, pre-commit's store):
    each repository gets its own home, yet the rules are compiled once."""
    return tmp_path_factory.mktemp("caches")
