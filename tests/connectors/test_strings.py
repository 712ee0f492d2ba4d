"""``jitsec scan --binary strings``: the printable runs of a binary file (ASCII and UTF-16LE) are
scanned, whatever the pieces the file is read in; without the flag a binary file is still skipped."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from jitsec.connectors.sources.strings import MIN_RUN, StringsExtractor

from jitsec.kernel.credential_format import mint

binary_bytes = st.lists(st.one_of(
    st.binary(max_size=40),
    st.text(alphabet="abcdefgh:=/ _-0123456789", min_size=1, max_size=30).map(str.encode),
    st.text(alphabet="WXYZ wide=", min_size=1, max_size=20).map(lambda s: s.encode("utf-16-le")),
), max_size=30).map(b"".join)


def extract(data: bytes, cuts: list[int]) -> bytes:
    extractor = StringsExtractor()
    edges = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    out = b"".join(extractor.feed(data[start:end]) for start, end in itertools.pairwise(edges))
    return out + extractor.feed(b"", final=True)


@settings(max_examples=200, deadline=None)
@given(data=binary_bytes, cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_pieces_do_not_change_the_runs(data: bytes, cuts: list[int]) -> None:
    whole = extract(data, [])
    assert extract(data, cuts) == whole
    for line in whole.splitlines():
        assert len(line) >= MIN_RUN and all(0x20 <= byte < 0x7F or byte == 9 for byte in line)


def test_ascii_and_utf16_runs_each_on_a_line() -> None:
    data = (b"\x7fELF\x02\x01\x00\x00short\x00" + b"token=abcdefgh\x00\xff"
            + "Password=wide-one".encode("utf-16-le") + b"\x00\x00\x01")
    assert extract(data, []) == b"token=abcdefgh\nPassword=wide-one\n"


def binary_with_secrets(path: Path) -> tuple[str, str]:
    """A real executable (this interpreter) with one secret written into it as ASCII and one as
    UTF-16LE, in its middle, as a program's memory or a core dump would hold them."""
    ascii_secret, wide_secret = mint("jit_"), mint("jit_")
    body = Path(os.path.realpath(sys.executable)).read_bytes()
    middle = len(body) // 2
    path.write_bytes(body[:middle] + b"\x00Authorization: Bearer " + ascii_secret.encode() + b"\x00"
                     + f"token={wide_secret}".encode("utf-16-le") + b"\x00\x00" + body[middle:])
    return ascii_secret, wide_secret


def scan(arguments: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JITSEC_FINGERPRINT_KEY": "44" * 32}
    return subprocess.run([shutil.which("jitsec") or "jitsec", "scan", "-f", "jsonl", *arguments],
                          capture_output=True, text=True, env=env, check=False, cwd=tmp_path)


def test_secrets_in_a_real_binary_are_found_with_binary_strings(tmp_path: Path) -> None:
    core = tmp_path / "core.4242"
    ascii_secret, wide_secret = binary_with_secrets(core)
    skipped = scan([str(core)], tmp_path)
    assert skipped.returncode == 0 and skipped.stdout == ""
    assert "1 binary skipped" in skipped.stderr
    found = scan(["--binary", "strings", str(core)], tmp_path)
    assert found.returncode == 1, found.stderr
    rows = [json.loads(line) for line in found.stdout.splitlines()]
    assert [row["rule"] for row in rows].count("broker-engine-token") == 2  # the ASCII one and the wide one
    assert all(secret not in found.stdout + found.stderr for secret in (ascii_secret, wide_secret))


def test_binary_strings_is_checked(tmp_path: Path) -> None:
    bad = scan(["--binary", "hex", str(tmp_path)], tmp_path)
    assert bad.returncode == 2 and "--binary" in bad.stderr
