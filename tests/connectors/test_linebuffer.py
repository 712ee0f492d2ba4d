from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from jitsec.connectors.sources.linebuffer import LineAssembler, Piece

reads = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"\n")), max_size=30)


@given(reads, st.integers(min_value=1, max_value=64))
def test_pieces_reassemble_the_stream_exactly(parts: list[bytes], max_partial: int) -> None:
    assembler = LineAssembler(partial_timeout=10.0, max_partial=max_partial)
    pieces: list[Piece] = []
    for now, part in enumerate(parts):
        piece = assembler.feed(part, float(now))
        if piece is not None:
            pieces.append(piece)
    last = assembler.flush(1e9, force=True)
    if last is not None:
        pieces.append(last)
    stream = b"".join(parts)
    assert b"".join(piece.data for piece in pieces) == stream
    for piece in pieces:
        assert stream[piece.offset : piece.offset + len(piece.data)] == piece.data
        assert piece.line == stream[: piece.offset].count(b"\n") + 1
    for piece in pieces[:-1]:  # all but the forced last piece end at a newline or are oversized
        assert piece.data.endswith(b"\n") or len(piece.data) >= max_partial


def test_partial_line_is_held_then_released_when_overdue() -> None:
    assembler = LineAssembler(partial_timeout=0.5)
    assert assembler.feed(b"token=abc", 10.0) is None
    assert assembler.flush(10.4) is None
    piece = assembler.flush(10.5)
    assert piece == Piece(b"token=abc", 0, 1, 10.0)
    assert assembler.feed(b"def\nnext", 11.0) == Piece(b"def\n", 9, 1, 11.0)
    assert assembler.pending == 4
    assert assembler.line == 2


def test_read_time_is_that_of_the_earliest_byte() -> None:
    assembler = LineAssembler()
    assembler.feed(b"half", 1.0)
    piece = assembler.feed(b" line\n", 2.0)
    assert piece is not None and piece.read_at == 1.0
