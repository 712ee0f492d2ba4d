"""Many whole chunks scanned in one pass find exactly what scanning each on its own finds."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jitsec.scanner.engine import Scanner
from jitsec.scanner.filters import PRAGMA, PRAGMA_NEXTLINE

from jitsec.kernel.records import Chunk, FileOrigin, KafkaOrigin

from .test_stream import PEM, noise, planted


def keys(findings: list) -> list[tuple]:
    return [(f.origin, f.rule_id, f.line, f.column, f.offset, f.fingerprint, f.confidence, f.read_at)
            for f in findings]


def alone(scanner: Scanner, chunk: Chunk) -> list[tuple]:
    stream = scanner.stream(chunk.origin)
    return keys(stream.feed(chunk) + stream.finish())


# What could leak from one record into the next if the pass did not keep them apart: a PEM block
# cut between records, a pragma on a record's last line, an assignment whose value starts the next.
edges = st.sampled_from([
    PEM.split("\n", 1)[0], PEM.split("\n", 1)[1], f"# {PRAGMA_NEXTLINE}", f"x=1 # {PRAGMA}", "password=",
    "aws_access_key_id=", "Authorization: Bearer",
])


@st.composite
def records(draw: st.DrawFn) -> list[Chunk]:
    chunks = []
    for offset in range(draw(st.integers(1, 12))):
        lines = draw(st.lists(st.one_of(noise, planted(), edges), min_size=1, max_size=4))
        data = ("\n".join(lines) + "\n").encode()
        origin = KafkaOrigin("logs", offset % 3, offset, draw(st.sampled_from([None, "message"])))
        chunks.append(Chunk(data, origin, offset=draw(st.sampled_from([0, 0, 4096])),
                            line=draw(st.sampled_from([1, 1, 7])), read_at=float(offset), whole=True))
    return chunks


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=records())
def test_one_pass_finds_what_each_chunk_alone_finds(scanner: Scanner, chunks: list[Chunk]) -> None:
    together = [keys(findings) for findings in scanner.scan_whole(chunks)]
    assert together == [alone(scanner, chunk) for chunk in chunks]


def test_a_secret_whose_context_ends_the_previous_record_is_not_joined_to_it(scanner: Scanner) -> None:
    head, body = PEM.split("\n", 1)
    chunks = [Chunk(f"{head}\n".encode(), KafkaOrigin("t", 0, 1), whole=True),
              Chunk(f"{body}\n".encode(), KafkaOrigin("t", 0, 2), whole=True),
              Chunk(f"{PEM}\n".encode(), KafkaOrigin("t", 0, 3), whole=True)]
    found = scanner.scan_whole(chunks)
    assert [len(f) for f in found] == [0, 0, 1]
    assert (found[2][0].rule_id, found[2][0].line, found[2][0].offset) == ("sample-private-key", 1, 0)


def test_a_pragma_in_one_hunk_does_not_excuse_the_next(scanner: Scanner) -> None:
    secret = "aws_access_key_id=AKIA2OGYBAH6STMMNXNN\n"
    chunks = [Chunk(f"# {PRAGMA_NEXTLINE}\n".encode(), FileOrigin("a.env"), line=1, whole=True),
              Chunk(secret.encode(), FileOrigin("a.env"), line=9, whole=True),
              Chunk(f"# {PRAGMA_NEXTLINE}\n{secret}".encode(), FileOrigin("b.env"), whole=True)]
    assert [len(f) for f in scanner.scan_whole(chunks)] == [0, 1, 0]


def test_a_pragma_in_a_stream_record_excuses_nothing(scanner: Scanner) -> None:
    secret = "aws_access_key_id=AKIA2OGYBAH6STMMNXNN\n"
    chunks = [Chunk(f"# {PRAGMA_NEXTLINE}\n{secret}".encode(), KafkaOrigin("t", 0, 3), whole=True),
              Chunk(f"# {PRAGMA_NEXTLINE}\n{secret}".encode(), FileOrigin("b.env"), whole=True)]
    found = scanner.scan_whole(chunks)
    assert [len(f) for f in found] == [1, 0]  # the log writer's pragma is ignored, the reviewer's kept
    assert [keys(f) for f in found] == [alone(scanner, chunk) for chunk in chunks]


def test_chunks_that_are_not_whole_are_refused(scanner: Scanner) -> None:
    with pytest.raises(ValueError, match="not a whole"):
        scanner.scan_whole([Chunk(b"a\n", KafkaOrigin("t", 0, 1))])
    with pytest.raises(ValueError, match="not a whole"):
        scanner.scan_whole([Chunk(b"no newline", KafkaOrigin("t", 0, 1), whole=True)])


def test_lock_files_keep_their_leniency(scanner: Scanner) -> None:
    text = b"password=Zq8#vR2!mK9pL4w\n"
    chunks = [Chunk(text, FileOrigin("package-lock.json"), whole=True),
              Chunk(text, KafkaOrigin("t", 0, 1), whole=True)]
    found = scanner.scan_whole(chunks)
    assert [len(f) for f in found] == [0, 1]
    assert [keys(f) for f in found] == [alone(scanner, chunk) for chunk in chunks]


@st.composite
def runs(draw: st.DrawFn) -> list[Chunk]:
    """Chunks that each join several records of one partition (and fields of them) as ``parts``."""
    chunks = []
    offset = 0
    for partition in range(draw(st.integers(1, 3))):
        texts, parts, cursor, first = [], [], 0, offset
        for _ in range(draw(st.integers(1, 6))):
            for field in draw(st.lists(st.sampled_from([None, "message", "ctx.headers[0]"]), min_size=1,
                                       max_size=3, unique=True)):
                lines = draw(st.lists(st.one_of(noise, planted(), edges), min_size=1, max_size=3))
                text = ("\n".join(lines) + "\n").encode()
                parts.append((cursor, offset, field))
                texts.append(text)
                cursor += len(text)
            offset += 1
        chunks.append(Chunk(b"".join(texts), KafkaOrigin("logs", partition, first), read_at=float(partition),
                            whole=True, parts=tuple(parts)))
    return chunks


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=runs())
def test_parts_are_scanned_and_located_as_if_each_were_a_chunk_alone(scanner: Scanner,
                                                                    chunks: list[Chunk]) -> None:
    together = [keys(findings) for findings in scanner.scan_whole(chunks)]
    assert together == [[key for part in chunk.split_parts() for key in alone(scanner, part)]
                        for chunk in chunks]


def test_a_finding_in_a_part_is_located_by_its_record_and_field(scanner: Scanner) -> None:
    texts = [b"user=alice\n", b"message: starting\nkey=AKIA2OGYBAH6STMMNXNN\n", b"level: info\n"]
    parts = ((0, 7, None), (11, 8, "message"), (11 + len(texts[1]), 8, "level"))
    chunk = Chunk(b"".join(texts), KafkaOrigin("logs", 2, 7), whole=True, parts=parts)
    [found] = scanner.scan_whole([chunk])
    assert [(f.origin, f.line, f.offset, f.column) for f in found] == [
        (KafkaOrigin("logs", 2, 8, "message"), 2, texts[1].index(b"AKIA"), 5)]


def test_a_chunk_of_parts_is_refused_by_a_stream_and_must_start_its_first_part_at_zero(
        scanner: Scanner) -> None:
    chunk = Chunk(b"a\nb\n", KafkaOrigin("t", 0, 1), whole=True, parts=((0, 1, None), (2, 2, None)))
    with pytest.raises(ValueError, match="several parts"):
        scanner.stream(chunk.origin).feed(chunk)
    with pytest.raises(ValueError, match="first part"):
        scanner.scan_whole([Chunk(b"a\nb\n", KafkaOrigin("t", 0, 1), whole=True, parts=((2, 2, None),))])
