"""The pure-Python path finds exactly what the Hyperscan path finds, on any input."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jitsec.scanner.engine import Scanner

from jitsec.kernel.records import StreamOrigin

from .test_stream import documents  # the same planted-secret generator

ORIGIN = StreamOrigin("agree")


def keys(scanner: Scanner, data: bytes) -> list[tuple]:
    return [(f.rule_id, f.line, f.column, f.offset, f.fingerprint, f.confidence)
            for f in scanner.scan_bytes(data, ORIGIN)]


@st.composite
def mixed(draw: st.DrawFn) -> bytes:
    """Planted documents spliced into arbitrary bytes (invalid UTF-8, NULs, long runs)."""
    parts = draw(st.lists(st.one_of(documents(), st.binary(max_size=200),
                                    st.text(max_size=80).map(str.encode)), min_size=1, max_size=6))
    return b"".join(parts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mixed())
def test_both_paths_agree(hs_scanner: Scanner, py_scanner: Scanner, data: bytes) -> None:
    assert keys(hs_scanner, data) == keys(py_scanner, data)


def test_both_paths_agree_on_invalid_utf8_and_nuls(hs_scanner: Scanner, py_scanner: Scanner) -> None:
    text = b"aws=AKIA2OGYBAH6STMMNXNN\n\xff\xfe password=Q9x7Lm2Vz8Kp\x00 tail \xe9AKIA2OGYBAH6STMMNXNN"
    assert keys(hs_scanner, text) == keys(py_scanner, text)
    assert len(keys(hs_scanner, text)) == 3
